/** Standing approvals in tests: signed by a device of the stack, exactly as the CLI signs them. */
import type { Client } from '@temporalio/client';
import type { GrantRecord } from '../../core/grants/grant.js';
import type { KeyPair } from '../../core/keys.js';
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
