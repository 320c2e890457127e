/** Standing approvals in tests: signed by a device of the stack, exactly as the CLI signs them. */
import type { Client } from '@temporalio/client';
import type { GrantRecord } from '../../core/grants/grant.js';
import type { KeyPair } from '../../core/keys.js';
import type { PlanSpec } from '../../core/plan/types.js';
import { validatePlan } from '../../core/plan/validate.js';
import { planSteps, subPlans } from '../../core/plan/walk.js';
import { grantRecordOf, issueGrant, type GrantDraft } from '../../services/grants.js';
import { submitPlan, type SubmittedPlan } from '../../services/plans.js';

/** Signs a grant (a shell command, exact unless said) for plans `by` proposes, unless the draft says otherwise. */
export async function grantFor(
  client: Client,
  by: KeyPair,
  draft: Partial<GrantDraft> & Pick<GrantDraft, 'covers'>,
): Promise<GrantRecord> {
  const record = grantRecordOf(
    { name: draft.name ?? 'test grant', scope: draft.scope ?? { device: by.keyId }, ...draft },
    Date.now(),
  );
  await issueGrant(client, by, record);
  return record;
}

export const shell = (command: string, match: 'exact' | 'prefix' = 'exact') =>
  ({ kind: 'shell', command, match }) as const;

/** A plan proposed, and signed, by `by` (as `countersign plan run` does with the CLI's key). */
export function submitSigned(
  client: Client,
  by: KeyPair,
  plan: Record<string, unknown>,
): Promise<SubmittedPlan> {
  return submitPlan(client, plan, { proposer: 'test', signer: { key: by, proposer: { device: by.keyId } } });
}

/**
 * The `approval: auto` shell steps of `plan` (and of its sub-plans), each with what an exact grant
 * must allow for it: its command, the environment it sets, and network when its plan has egress.
 * A plan that does not validate has none (submitting it is refused anyway).
 */
export function autoShellSteps(
  plan: Record<string, unknown>,
): { run: string; env: Record<string, string>; egress: boolean }[] {
  let spec: PlanSpec;
  try {
    spec = validatePlan(plan);
  } catch {
    return [];
  }
  const out: { run: string; env: Record<string, string>; egress: boolean }[] = [];
  const visit = (p: PlanSpec): void => {
    for (const step of planSteps(p))
      if (step.kind === 'shell' && step.approval.mode === 'auto')
        out.push({ run: step.run, env: step.env, egress: p.egress });
    for (const sub of subPlans(p)) visit(sub.plan);
  };
  visit(spec);
  return out;
}

/**
 * Signs, as `by`, one exact grant for each distinct `approval: auto` shell step of `plan` (its
 * command, environment and network as written), for plans `by` proposes: what a person does
 * before letting those steps run unattended.
 */
export async function grantAutoSteps(
  client: Client,
  by: KeyPair,
  plan: Record<string, unknown>,
  draft: Partial<Omit<GrantDraft, 'covers'>> = {},
): Promise<GrantRecord[]> {
  const seen = new Set<string>();
  const grants: GrantRecord[] = [];
  for (const { run, env, egress } of autoShellSteps(plan)) {
    const key = JSON.stringify([run, env, egress]);
    if (seen.has(key)) continue;
    seen.add(key);
    const covers = {
      ...shell(run),
      ...(Object.keys(env).length ? { env: env as Record<string, string | null> } : {}),
    };
    grants.push(
      await grantFor(client, by, {
        name: `run ${run}`.slice(0, 100),
        ...(egress ? { egress: true } : {}),
        ...draft,
        covers,
      }),
    );
  }
  return grants;
}

/**
 * Grants `plan`'s `approval: auto` shell steps exactly (grantAutoSteps) and submits the plan signed
 * by `by`: those steps run on the standing approvals, without a person; any other step waits for one.
 */
export async function submitGranted(
  client: Client,
  by: KeyPair,
  plan: Record<string, unknown>,
): Promise<SubmittedPlan> {
  await grantAutoSteps(client, by, plan);
  return submitSigned(client, by, plan);
}
