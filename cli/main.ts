/**
 * The `countersign` command. Every failure prints what happened and what to do next;
 * internals are shown only with COUNTERSIGN_DEBUG=1.
 */
import { parseArgs } from 'node:util';
import { PlanValidationError } from '../core/plan/validate.js';
import { UserFacingError } from '../services/errors.js';
import { ConfigError } from '../workers/config.js';
import { agentConfig, issueAgent, listAgents, revokeAgent, serveAgent } from './commands/agents.js';
import { notifyNtfy, notifyStatus, notifyTest } from './commands/notify.js';
import { auditExport, auditVerify } from './commands/audit.js';
import { addDevice, introduceExecutorCommand, join, listDevices, pair, revoke } from './commands/devices.js';
import { cancelCommand, decideCommand, listPlansCommand, runPlan, showPlan } from './commands/plans.js';
import { addGrant, listGrants, revokeGrantCommand } from './commands/grants.js';
import { restoreRegistryCommand } from './commands/registry.js';
import { historyCommand } from './commands/history.js';
import { catalogCommand, pinCommand } from './commands/mcp.js';
import { down, status, up } from './commands/stack.js';
import { CliContext } from './context.js';
import { red } from './format.js';
import { clean } from '../services/history/render.js';

/** A message may quote a plan, a device or a server: each line cleaned of terminal escapes. */
const cleanLines = (message: string) => message.split('\n').map(clean).join('\n');

const USAGE = `countersign — durable agent plans, countersigned step by step

  countersign up [--example FILE]     start the embedded stack (Temporal, workers, API and web app);
                                      print the pairing code, link and QR code
  countersign down | status           stop the stack (plans resume on the next up) | show what runs
  countersign pair CODE [--name N]    pair this CLI as the root device with the code from \`up\`
  countersign join CODE [--name N] [--api URL]   join as a further device with an invitation code
                                      from a paired device (its Devices screen); it confirms the fingerprint
  countersign devices                 list devices
  countersign devices add NAME --public-key B64    introduce a device (signed by this CLI)
  countersign devices revoke KEYID [--reason R]   revoke a device (signed by this CLI)
  countersign plan run FILE [--wait]  validate and start a plan (YAML or JSON)
  countersign plan ls [--awaiting]    list plans (from search attributes, no history reads)
  countersign plan show ID [--watch|--json]   the live plan tree (--watch follows it, with output, to the end)
  countersign plan cancel ID          cancel a plan (running steps are stopped)
  countersign approve ID STEP [--reason R]   sign and submit an approval (STEP may be sub/step)
  countersign deny ID STEP [--reason R]      sign and submit a denial
  countersign history ID [--json]     timeline with approvals re-verified from the raw history
  countersign audit export ID [--out FILE]   the plan's histories, approvals and device records in one file
  countersign audit verify FILE [--root KEYID] [--json]   check a bundle offline: a verdict per step
  countersign executor introduce [--public-key B64]   introduce an executor host's result key (this
                                      machine's by default): results are signed and checked from then on
  countersign registry restore        put back a device registry that was replaced or rolled back, from
                                      the longest chain from the pinned root held here
  countersign agents                  list agent tokens
  countersign agents issue NAME [--grant CMD]... [--grant-prefix WORDS]...   issue an agent token (shown
                                      once; signed by this CLI's device key), with standing approvals for it
  countersign grants                  standing approvals: what each allows, for whom, until when, uses left
  countersign grants add --run CMD [--prefix [--option -v]...] | --mcp SERVER/TOOL [--arg N=V]... [--arg-glob N=GLOB]...
        [--arg-any N]... [--allow-writes]
      --agent ID | --all-agents | --mine | --device KEYID     whose plans may use it (one of these)
      [--plan NAME]... [--cwd DIR] [--env NAME[=VALUE]]... [--expires 30d] [--uses N]
      [--max-risk low|medium|high] [--egress] [--name LABEL]
                                      sign a standing approval: steps marked \`approval: auto\` that it
                                      covers exactly run without asking; shows what it would and would not allow
  countersign grants revoke ID [--reason R]   revoke one; a step waiting to run on it goes to a person
  countersign agents revoke ID [--reason R]   revoke an agent token
  countersign notify                  which channels this installation sends by, and each device's
  countersign notify test [DEVICE]    send a test notice to a device's channels (default: every device
                                      with one) and print what each channel answered
  countersign notify ntfy on|off      ntfy for this CLI's device; prints the topic to subscribe to
  countersign mcp serve               Countersign as an MCP server on stdio, for the agent whose
                                      token is in COUNTERSIGN_AGENT_TOKEN (HTTP: POST <web app>/mcp)
  countersign mcp config opencode|claude|codex   the configuration snippet for that agent
  countersign mcp catalog [--json]    the MCP servers plans may call, with their allowed tools
  countersign mcp pin SERVER [--allow T1,T2] [--dry-run]   re-read a server's tools after an
                                      upgrade, show what changed, and pin them (and its image)

Environment: COUNTERSIGN_HOME (state folder, default ./.countersign), TEMPORAL_ADDRESS (127.0.0.1:7233), TEMPORAL_NAMESPACE.`;

function need(value: string | undefined, what: string): string {
  if (!value) throw new UserFacingError(`missing ${what}\n\n${USAGE}`, 'usage');
  return value;
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      example: { type: 'string' },
      name: { type: 'string' },
      reason: { type: 'string' },
      'public-key': { type: 'string' },
      wait: { type: 'boolean' },
      awaiting: { type: 'boolean' },
      json: { type: 'boolean' },
      watch: { type: 'boolean' },
      allow: { type: 'string' },
      'dry-run': { type: 'boolean' },
      template: { type: 'boolean' },
      out: { type: 'string' },
      root: { type: 'string' },
      api: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      grant: { type: 'string', multiple: true },
      'grant-prefix': { type: 'string', multiple: true },
      run: { type: 'string' },
      prefix: { type: 'boolean' },
      option: { type: 'string', multiple: true },
      mcp: { type: 'string' },
      arg: { type: 'string', multiple: true },
      'arg-glob': { type: 'string', multiple: true },
      'arg-any': { type: 'string', multiple: true },
      'allow-writes': { type: 'boolean' },
      agent: { type: 'string' },
      'all-agents': { type: 'boolean' },
      mine: { type: 'boolean' },
      device: { type: 'string' },
      plan: { type: 'string', multiple: true },
      cwd: { type: 'string' },
      env: { type: 'string', multiple: true },
      expires: { type: 'string' },
      uses: { type: 'string' },
      'max-risk': { type: 'string' },
      egress: { type: 'boolean' },
    },
  });
  const [command, sub, third] = positionals;
  if (!command || values.help || command === 'help') {
    console.log(USAGE);
    return;
  }
  const ctx = new CliContext();
  try {
    switch (command) {
      case 'up':
        return await up(ctx, { example: values.example });
      case 'down':
        return await down(ctx);
      case 'status':
        return await status(ctx);
      case 'pair':
        return await pair(ctx, need(sub, 'pairing code'), { name: values.name });
      case 'join':
        return await join(ctx, need(sub, 'invitation code'), { name: values.name, api: values.api });
      case 'devices':
        if (!sub || sub === 'ls' || sub === 'list') return await listDevices(ctx);
        if (sub === 'add')
          return await addDevice(ctx, need(third, 'device name'), need(values['public-key'], '--public-key'));
        if (sub === 'revoke')
          return await revoke(ctx, need(third, 'key id'), values.reason ?? 'revoked from the CLI');
        break;
      case 'plan':
        if (sub === 'run') return await runPlan(ctx, need(third, 'plan file'), { wait: values.wait });
        if (sub === 'ls' || sub === 'list') return await listPlansCommand(ctx, { awaiting: values.awaiting });
        if (sub === 'show')
          return await showPlan(ctx, need(third, 'plan id'), { json: values.json, watch: values.watch });
        if (sub === 'cancel') return await cancelCommand(ctx, need(third, 'plan id'));
        break;
      case 'approve':
      case 'deny':
        return await decideCommand(ctx, command, need(sub, 'plan id'), need(third, 'step'), {
          reason: values.reason,
        });
      case 'history':
        return await historyCommand(ctx, need(sub, 'plan id'), { json: values.json });
      case 'audit':
        if (sub === 'export') return await auditExport(ctx, need(third, 'plan id'), { out: values.out });
        if (sub === 'verify')
          return await auditVerify(ctx, need(third, 'bundle file'), { root: values.root, json: values.json });
        break;
      case 'agents':
        if (!sub || sub === 'ls' || sub === 'list') return await listAgents(ctx);
        if (sub === 'issue')
          return await issueAgent(ctx, need(third, 'agent name'), {
            grants: values.grant,
            grantPrefixes: values['grant-prefix'],
          });
        if (sub === 'revoke')
          return await revokeAgent(ctx, need(third, 'agent id'), values.reason ?? 'revoked from the CLI');
        break;
      case 'executor':
        if (sub === 'introduce') return await introduceExecutorCommand(ctx, values['public-key']);
        break;
      case 'registry':
        if (sub === 'restore') return await restoreRegistryCommand(ctx);
        break;
      case 'grants':
        if (!sub || sub === 'ls' || sub === 'list') return await listGrants(ctx);
        if (sub === 'add') return await addGrant(ctx, values);
        if (sub === 'revoke')
          return await revokeGrantCommand(
            ctx,
            need(third, 'grant id'),
            values.reason ?? 'revoked from the CLI',
          );
        break;
      case 'notify':
        if (!sub) return await notifyStatus(ctx);
        if (sub === 'test') return await notifyTest(ctx, third);
        if (sub === 'ntfy') return await notifyNtfy(ctx, need(third, 'on or off'));
        break;
      case 'mcp':
        if (sub === 'serve') return await serveAgent(ctx, {});
        if (sub === 'config') return agentConfig(need(third, 'client (opencode, claude or codex)'));
        if (sub === 'catalog') return await catalogCommand(ctx, { json: values.json });
        if (sub === 'pin')
          return await pinCommand(ctx, need(third, 'server id'), {
            allow: values.allow,
            dryRun: values['dry-run'],
            template: values.template,
          });
        break;
    }
    throw new UserFacingError(`unknown command: ${positionals.join(' ')}\n\n${USAGE}`, 'usage');
  } finally {
    await ctx.close();
  }
}

main(process.argv.slice(2)).then(
  () => process.exit(process.exitCode ?? 0),
  (error: unknown) => {
    if (
      error instanceof UserFacingError ||
      error instanceof PlanValidationError ||
      error instanceof ConfigError
    ) {
      console.error(red(`countersign: ${cleanLines(error.message)}`));
    } else {
      console.error(red(`countersign: ${cleanLines(String((error as Error).message ?? error))}`));
      if (process.env.COUNTERSIGN_DEBUG) console.error(error);
    }
    process.exit(error instanceof UserFacingError && error.code === 'usage' ? 64 : 1);
  },
);
