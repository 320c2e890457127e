/** `countersign agents`, `agents issue NAME`, `agents revoke ID`; `countersign mcp serve` and `mcp config CLIENT`. */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { catalogReader } from '../../agent/catalog.js';
import { createAgentServer } from '../../agent/server.js';
import { loadApiConfig } from '../../api/config.js';
import { agentSession, issueAgentToken, revokeAgentToken } from '../../services/agents.js';
import { registryView } from '../../services/devices.js';
import { UserFacingError } from '../../services/errors.js';
import { grantRecordOf, issueGrant } from '../../services/grants.js';
import { clean } from '../../services/history/render.js';
import type { CliContext } from '../context.js';
import { assertValidGrant, printPreview } from './grants.js';
import { bold, dim, green, red } from '../format.js';

export async function listAgents(ctx: CliContext): Promise<void> {
  const view = await registryView(await ctx.client(), ctx.anchor);
  if (!view.agents?.length) {
    console.log('no agent tokens yet: countersign agents issue NAME');
    return;
  }
  for (const a of view.agents) {
    const state = a.revoked ? red(`revoked ${a.revoked.at} (${clean(a.revoked.reason)})`) : green('active');
    console.log(
      `${a.agentId}  ${bold(clean(a.name).padEnd(24))} ${state}  ${dim(`issued by ${a.issuedBy.slice(0, 12)}… at ${a.issuedAt}`)}`,
    );
  }
}

/**
 * Issues a token, and with `grants`, standing approvals for it: each an exact command (or, from
 * `grantPrefixes`, a plain-word prefix), signed by the same device right after the token.
 */
export async function issueAgent(
  ctx: CliContext,
  name: string,
  options: { grants?: string[] | undefined; grantPrefixes?: string[] | undefined } = {},
): Promise<void> {
  const client = await ctx.client();
  const key = await ctx.deviceKey();
  const commands = [
    ...(options.grants ?? []).map((command) => ({ command, match: 'exact' as const })),
    ...(options.grantPrefixes ?? []).map((command) => ({ command, match: 'prefix' as const })),
  ];
  const now = Date.now();
  const recordFor = (agentId: string, covers: (typeof commands)[number]) =>
    grantRecordOf(
      { name: covers.command.slice(0, 100), scope: { agent: agentId }, covers: { kind: 'shell', ...covers } },
      now,
    );
  // Checked before the token exists, so a bad grant leaves no token half set up.
  for (const covers of commands) assertValidGrant(recordFor('0'.repeat(16), covers));
  const { agentId, token, view } = await issueAgentToken(client, key, name);
  console.log(
    `${green('issued')} agent token ${bold(name)} ${dim(`(id ${agentId})`)}; shown once, kept nowhere:`,
  );
  console.log(`\n  ${token}\n`);
  for (const covers of commands) {
    const record = recordFor(agentId, covers);
    printPreview(record, (id) =>
      id === agentId ? name : (view.devices.find((d) => d.keyId === id)?.name ?? id),
    );
    await issueGrant(client, key, record);
    console.log(`${green('signed')} standing approval ${bold(record.grantId)} for ${bold(name)}`);
  }
  console.log(
    dim(
      'It may propose plans and read its own; it can never approve. Revoke: countersign agents revoke ' +
        agentId,
    ),
  );
}

export async function revokeAgent(ctx: CliContext, agentId: string, reason: string): Promise<void> {
  await revokeAgentToken(await ctx.client(), await ctx.deviceKey(), agentId, reason);
  console.log(
    `${red('revoked')} agent ${agentId}: its token is refused from now on; its plans stay in history`,
  );
}

/** The agent's MCP server over stdio. stdout belongs to the protocol: nothing else is printed there. */
export async function serveAgent(ctx: CliContext, options: { token?: string }): Promise<void> {
  const token = options.token ?? process.env.COUNTERSIGN_AGENT_TOKEN;
  if (!token)
    throw new UserFacingError(
      'no agent token: set COUNTERSIGN_AGENT_TOKEN (a paired device issues one: countersign agents issue NAME)',
      'agent_token_missing',
    );
  const client = await ctx.client();
  const session = agentSession(await registryView(client, ctx.anchor), token);
  const { agent } = session;
  const server = createAgentServer({
    client,
    ...session,
    readCatalog: catalogReader(ctx.config.home),
    anchor: ctx.anchor,
  });
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => (transport.onclose = resolve));
  process.stdin.once('end', () => void transport.close());
  await server.connect(transport);
  process.stderr.write(`countersign: MCP server for agent "${agent.name}" on stdio\n`);
  await closed;
}

const CLIENTS = ['opencode', 'claude', 'codex'] as const;

/** Configuration snippets for agents that speak MCP: stdio (local) and streamable HTTP (remote). */
export function agentConfig(client: string): void {
  const bin = `${process.cwd()}/bin/countersign`;
  const url = `${loadApiConfig().publicUrl}/mcp`;
  const env = { COUNTERSIGN_AGENT_TOKEN: '<token from countersign agents issue>' };
  switch (client) {
    case 'opencode':
      console.log(
        JSON.stringify(
          {
            $schema: 'https://opencode.ai/config.json',
            mcp: {
              countersign: { type: 'local', command: [bin, 'mcp', 'serve'], environment: env, enabled: true },
            },
          },
          null,
          2,
        ),
      );
      console.log(
        dim(
          `\n# opencode.json. Remote instead: { "type": "remote", "url": "${url}", "headers": { "Authorization": "Bearer <token>" } }`,
        ),
      );
      return;
    case 'claude':
      console.log(`claude mcp add countersign --env COUNTERSIGN_AGENT_TOKEN=<token> -- ${bin} mcp serve`);
      console.log(
        dim(
          `\n# or over HTTP: claude mcp add --transport http countersign ${url} --header "Authorization: Bearer <token>"`,
        ),
      );
      return;
    case 'codex':
      console.log(
        `# ~/.codex/config.toml\n[mcp_servers.countersign]\ncommand = "${bin}"\nargs = ["mcp", "serve"]\nenv = { COUNTERSIGN_AGENT_TOKEN = "<token>" }`,
      );
      return;
  }
  throw new UserFacingError(`no configuration for "${client}": choose one of ${CLIENTS.join(', ')}`, 'usage');
}
