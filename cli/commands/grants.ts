/**
 * `countersign grants`, `grants add …`, `grants revoke ID`: standing approvals signed by this
 * CLI's device key. Before anything is signed, the grant is shown with commands it would and
 * would not allow, computed by the same matcher the workflow and the executor use.
 */
import { parseDuration } from '../../core/duration.js';
import { previewGrant } from '../../core/grants/examples.js';
import { grantRecordSchema } from '../../core/grants/schema.js';
import {
  grantText,
  type ArgumentRule,
  type GrantRecord,
  type GrantScope,
  type JsonValue,
} from '../../core/grants/grant.js';
import { registryView } from '../../services/devices.js';
import { UserFacingError } from '../../services/errors.js';
import { grantRecordOf, issueGrant, revokeGrant, type GrantDraft } from '../../services/grants.js';
import { clean } from '../../services/history/render.js';
import type { GrantView, RegistryView } from '../../workflows/messages.js';
import type { CliContext } from '../context.js';
import { bold, dim, green, red, yellow } from '../format.js';

export interface GrantOptions {
  run?: string | undefined;
  prefix?: boolean | undefined;
  option?: string[] | undefined;
  mcp?: string | undefined;
  arg?: string[] | undefined;
  'arg-glob'?: string[] | undefined;
  'arg-any'?: string[] | undefined;
  'allow-writes'?: boolean | undefined;
  agent?: string | undefined;
  'all-agents'?: boolean | undefined;
  mine?: boolean | undefined;
  device?: string | undefined;
  plan?: string[] | undefined;
  cwd?: string | undefined;
  env?: string[] | undefined;
  expires?: string | undefined;
  uses?: string | undefined;
  'max-risk'?: string | undefined;
  egress?: boolean | undefined;
  name?: string | undefined;
}

function usage(message: string): never {
  throw new UserFacingError(message, 'usage');
}

function nameOf(view: RegistryView): (id: string) => string {
  return (id) =>
    view.devices.find((d) => d.keyId === id)?.name ?? view.agents?.find((a) => a.agentId === id)?.name ?? id;
}

function stateOf(grant: GrantView, nowMs: number): string {
  if (grant.revoked) return red(`revoked ${grant.revoked.at} (${clean(grant.revoked.reason)})`);
  if (Date.parse(grant.record.expiresAt) <= nowMs) return dim(`expired ${grant.record.expiresAt}`);
  const max = grant.record.maxUses;
  if (max !== undefined && grant.uses >= max) return dim(`used up (${grant.uses} of ${max})`);
  return green(max !== undefined ? `active, ${max - grant.uses} of ${max} uses left` : 'active');
}

export async function listGrants(ctx: CliContext): Promise<void> {
  const view = await registryView(await ctx.client(), ctx.anchor);
  if (!view.grants?.length) {
    console.log('no standing approvals: countersign grants add --run "npm test" --agent ID (see --help)');
    return;
  }
  const now = Date.now();
  const names = nameOf(view);
  for (const grant of view.grants) {
    console.log(`${grant.grantId}  ${bold(clean(grant.record.name))}  ${stateOf(grant, now)}`);
    console.log(`    ${clean(grantText(grant.record, names))}`);
    console.log(dim(`    signed by ${clean(names(grant.issuedBy))} on ${grant.record.at}`));
  }
}

function parseScope(options: GrantOptions, deviceKeyId: string): GrantScope {
  const given = [options.agent, options['all-agents'], options.mine, options.device].filter(Boolean).length;
  if (given !== 1)
    usage(
      'say whose plans the grant is for, once: --agent AGENT_ID, --all-agents, --mine (plans this CLI proposes) or --device KEY_ID',
    );
  if (options.agent) return { agent: options.agent };
  if (options['all-agents']) return { agents: 'all' };
  return { device: options.device ?? deviceKeyId };
}

function parseJson(text: string, what: string): JsonValue {
  try {
    return JSON.parse(text) as JsonValue;
  } catch {
    // A bare word is a string: --arg path=/workspace/a.txt
    if (/^[^\s"{[]/.test(text)) return text;
    usage(`${what}: not JSON and not a plain word: ${text}`);
  }
}

function splitPair(text: string, what: string): [string, string] {
  const at = text.indexOf('=');
  if (at <= 0) usage(`${what} takes NAME=VALUE, got "${text}"`);
  return [text.slice(0, at), text.slice(at + 1)];
}

/** The draft a person described on the command line. */
export function draftFromOptions(options: GrantOptions, deviceKeyId: string, nowMs: number): GrantDraft {
  if (Boolean(options.run) === Boolean(options.mcp))
    usage('give what the grant allows: --run COMMAND or --mcp SERVER/TOOL');
  let covers: GrantRecord['covers'];
  if (options.run) {
    const env: Record<string, string | null> = {};
    for (const entry of options.env ?? []) {
      const at = entry.indexOf('=');
      if (at < 0) env[entry] = null;
      else env[entry.slice(0, at)] = entry.slice(at + 1);
    }
    covers = {
      kind: 'shell',
      command: options.run,
      match: options.prefix ? 'prefix' : 'exact',
      ...(options.option?.length ? { options: options.option } : {}),
      ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
      ...(Object.keys(env).length ? { env } : {}),
    };
  } else {
    const [server, ...rest] = options.mcp!.split('/');
    if (!server || rest.length === 0) usage('--mcp takes SERVER/TOOL, as in filesystem/read_text_file');
    const args: Record<string, ArgumentRule> = {};
    for (const entry of options.arg ?? []) {
      const [name, value] = splitPair(entry, '--arg');
      const parsed = parseJson(value, `--arg ${name}`);
      const earlier = args[name];
      // --arg path=a --arg path=b: one of them.
      args[name] =
        earlier && 'equals' in earlier
          ? { oneOf: [earlier.equals, parsed] }
          : earlier && 'oneOf' in earlier
            ? { oneOf: [...earlier.oneOf, parsed] }
            : { equals: parsed };
    }
    for (const entry of options['arg-glob'] ?? []) {
      const [name, glob] = splitPair(entry, '--arg-glob');
      args[name] = { glob };
    }
    for (const name of options['arg-any'] ?? []) args[name] = { any: true };
    covers = {
      kind: 'mcp',
      server,
      tool: rest.join('/'),
      arguments: args,
      ...(options['allow-writes'] ? { allowWrites: true } : {}),
    };
  }
  const risk = options['max-risk'];
  if (risk !== undefined && !['low', 'medium', 'high'].includes(risk))
    usage('--max-risk is low, medium or high');
  const uses = options.uses === undefined ? undefined : Number(options.uses);
  if (uses !== undefined && !(Number.isInteger(uses) && uses >= 1))
    usage('--uses takes a whole number of 1 or more');
  let expiresAt: string | undefined;
  if (options.expires !== undefined) {
    try {
      expiresAt = new Date(nowMs + parseDuration(options.expires)).toISOString();
    } catch {
      usage('--expires takes a duration such as 8h, 7d or 30d');
    }
  }
  return {
    name: options.name ?? (options.run ? options.run.slice(0, 100) : options.mcp!.slice(0, 100)),
    scope: parseScope(options, deviceKeyId),
    ...(options.plan?.length ? { plans: options.plan } : {}),
    covers,
    ...(options.egress ? { egress: true } : {}),
    ...(uses !== undefined ? { maxUses: uses } : {}),
    ...(risk ? { maxRisk: risk as 'low' | 'medium' | 'high' } : {}),
    ...(expiresAt ? { expiresAt } : {}),
  };
}

/** The registry refuses a bad record too; checking first says which option was wrong before anything is signed. */
export function assertValidGrant(record: GrantRecord): void {
  const checked = grantRecordSchema.safeParse(record);
  if (checked.success) return;
  const issue = checked.error.issues[0]!;
  usage(`the grant is not valid: ${issue.path.join('.') || '(grant)'}: ${issue.message}`);
}

/** Prints what the grant allows, with examples it would and would not match, and any warnings. */
export function printPreview(record: GrantRecord, names: (id: string) => string): void {
  console.log(`${bold('standing approval')} ${clean(record.name)}`);
  console.log(`  allows ${clean(grantText(record, names))}`);
  const preview = previewGrant(record);
  for (const example of preview.examples)
    console.log(
      example.allowed
        ? green(`  ✓ ${clean(example.text)}`)
        : `${red(`  ✗ ${clean(example.text)}`)}${dim(`  (${clean(example.why ?? '')})`)}`,
    );
  for (const warning of preview.warnings) console.log(yellow(`  ! ${warning}`));
}

export async function addGrant(ctx: CliContext, options: GrantOptions): Promise<void> {
  const key = await ctx.deviceKey();
  const client = await ctx.client();
  const view = await registryView(client, ctx.anchor);
  const draft = draftFromOptions(options, key.keyId, Date.now());
  const record = grantRecordOf(draft, Date.now());
  assertValidGrant(record);
  printPreview(record, nameOf(view));
  await issueGrant(client, key, record);
  console.log(
    `${green('signed')} standing approval ${bold(record.grantId)} with ${key.name}; revoke: countersign grants revoke ${record.grantId}`,
  );
}

export async function revokeGrantCommand(ctx: CliContext, grantId: string, reason: string): Promise<void> {
  await revokeGrant(await ctx.client(), await ctx.deviceKey(), grantId, reason);
  console.log(
    `${red('revoked')} standing approval ${grantId}: open plans are told, and a step waiting to run on it goes to a person`,
  );
}
