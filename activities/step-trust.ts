/**
 * The executor's own check, just before a step runs: the step is exactly what was approved, and
 * its approvals authorise it under the one rule (core/approval/authorize.ts), with devices and
 * standing approvals judged by the executor's own chain (its pinned root, and the longest chain
 * from it this host has seen: records cut short before a revocation do not fool it). A standing
 * approval limited to N uses is counted here too, on this host's own ledger.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { authorizeStep, type StepAuthority } from '../core/approval/authorize.js';
import type { Envelope } from '../core/approval/dsse.js';
import { verifyProposedStep, type VerifiedProposal } from '../core/approval/proposal.js';
import type { DeviceRegistry } from '../core/devices/registry.js';
import { ChainRefused, type TrustAnchorFile } from '../services/trust-anchor.js';
import { FAILURE_TYPES, workspaceBelongsTo } from '../core/names.js';
import { attestationSha256, resultClaims, signResult } from '../core/approval/attestation.js';
import type { KeyPair } from '../core/keys.js';
import type { StepResult } from '../core/plan/state.js';
import { peekApprovalPayload } from '../core/approval/approval.js';
import { stepDigest } from '../core/plan/digest.js';
import type { McpPin } from '../core/mcp/catalog.js';
import type { StepNode } from '../core/plan/types.js';
import { GrantUsesExceeded, type GrantUseLedger } from './grant-uses.js';
import { LedgerRefusal, type ExecutionLedger } from './execution-ledger.js';

/** What the once-only ledger does, whatever keeps it (ExecutionLedger, on this host's disk). */
export type OnceOnlyLedger = Pick<ExecutionLedger, keyof ExecutionLedger>;

/** How a step's result leaves this host. */
export type ResultAttestor = (
  input: ApprovedStep,
  result: StepResult,
  trust: ExecutorTrust,
) => Promise<StepResult>;

/** What the executor trusts and counts on its own host. */
export interface ExecutorTrust {
  /** The pinned root and the longest chain from it seen here. */
  chain: TrustAnchorFile;
  grantUses: GrantUseLedger;
  /** Nonces spent and plans ended: what a reset history forgets, this does not. */
  ledger: OnceOnlyLedger;
  /** This host's key: it signs each result and each plan's close (introduced by the root, role executor). */
  key: KeyPair;
  /**
   * Seals each step's result: `signedResult` in every executor (bench/trust.ts composes a baseline
   * without it, to measure what signing costs).
   */
  attest: ResultAttestor;
}

/** The result as this host's trust seals it (`trust.attest`). */
export function attested(input: ApprovedStep, result: StepResult, trust: ExecutorTrust): Promise<StepResult> {
  return trust.attest(input, result, trust);
}

/** The result, signed by this host, its hash kept in the ledger (a close must name it). */
export const signedResult: ResultAttestor = async (input, result, trust) => {
  const attestation = signResult(
    resultClaims(
      { workflowId: input.workflowId, runId: input.runId, stepPath: input.step.path, digest: input.digest },
      result,
    ),
    trust.key,
  );
  await trust.ledger.recordResult(input.workflowId, input.step.path, attestationSha256(attestation));
  return { ...result, attestation };
};

export interface ApprovedStep {
  workflowId: string;
  runId: string;
  step: StepNode;
  workspaceId: string;
  /** The plan's `egress: true` (absent in histories recorded before egress existed). */
  egress?: boolean | undefined;
  /** The plan's `workspaceSize` (absent: the executor's default); a limit, not part of what is signed. */
  workspaceSize?: string | undefined;
  /** An `mcp` step's call as matched to the catalog when the plan started. */
  mcpPin?: McpPin | undefined;
  digest: string;
  approvals: Envelope[];
  trustRecords: Envelope[];
  /** The plan's signed proposal: whose plan it is, for standing approvals scoped to a proposer. */
  proposal?: Envelope | undefined;
  /** With a proposal: the plan (or sub-plan) as written, which the proposal signed and the step is part of. */
  plan?: unknown;
}

function notApproved(message: string): never {
  throw ApplicationFailure.nonRetryable(message, FAILURE_TYPES.stepNotApproved);
}

/**
 * The authority the step's approvals give, with this host's chain; grant uses are spent. Throws a
 * non-retryable failure that says why it is not enough.
 */
export async function authorizeExecution(
  input: ApprovedStep,
  trust: ExecutorTrust,
  /** When the step was (or is being) launched, by this host's clock: grants must be in force then. */
  launchedAtMs: number,
): Promise<StepAuthority> {
  if (!workspaceBelongsTo(input.workspaceId, input.workflowId))
    notApproved(
      `plan ${input.workflowId} may not use workspace ${input.workspaceId}: a plan runs in its own workspace (or, as a sub-plan, its parent's)`,
    );
  const registry = await trustedChain(trust.chain, input.trustRecords);
  // A plan that ended here runs nothing more on approvals given before its end: a reset history
  // can revive the plan, not its approvals.
  const ended = await trust.ledger.endOf(input.workflowId);
  const approvals = ended
    ? input.approvals.filter((e) => Date.parse(String(peekApprovalPayload(e)?.issuedAt)) > ended.atMs)
    : input.approvals;
  let authority: StepAuthority;
  try {
    authority = assertStepApproved({ ...input, approvals }, registry, launchedAtMs);
  } catch (error) {
    if (!ended) throw error;
    notApproved(
      `plan ${ended.workflowId} ended here at ${new Date(ended.atMs).toISOString()} (${ended.how}); approvals given before then count for nothing in a reset or revived run, and none was given since: ${(error as Error).message}`,
    );
  }
  await spendGrantUses(authority, input, trust.grantUses);
  try {
    await trust.ledger.spendNonces(
      approvals.map((e) => String(peekApprovalPayload(e)?.nonce)),
      `${input.workflowId}/${input.runId}/${input.step.path}/${input.digest}`,
    );
  } catch (error) {
    if (error instanceof LedgerRefusal)
      notApproved(`executor refused step "${input.step.path}": ${error.message}`);
    throw error;
  }
  return authority;
}

/** The registry to judge by: this host's chain, extended by the records given when they extend it. */
export async function trustedChain(chain: TrustAnchorFile, records: Envelope[]): Promise<DeviceRegistry> {
  try {
    return (await chain.reconcile(records)).registry;
  } catch (error) {
    if (!(error instanceof ChainRefused)) throw error;
    throw ApplicationFailure.nonRetryable(
      error.code === 'no_root'
        ? 'executor has no pinned root device: pair a device (`countersign pair`) so the executor can trust approvals'
        : `device records are not the executor's chain: [${error.code}] ${error.message}`,
      FAILURE_TYPES.executorUntrusted,
    );
  }
}

/** The authority the step's approvals give under `registry`; throws a non-retryable failure that says why not. */
export function assertStepApproved(
  input: ApprovedStep,
  registry: DeviceRegistry,
  launchedAtMs: number,
): StepAuthority {
  let digest: string;
  try {
    digest = stepDigest(input.step, input.workspaceId, input.egress ?? false, input.mcpPin);
  } catch (error) {
    notApproved((error as Error).message);
  }
  if (digest !== input.digest) {
    notApproved(
      `step "${input.step.path}" differs from the step that was approved (digest ${digest.slice(0, 16)}… ≠ ${input.digest.slice(0, 16)}…)`,
    );
  }
  let proposal: VerifiedProposal | undefined;
  if (input.proposal) {
    try {
      proposal = verifyProposedStep(input.proposal, {
        workflowId: input.workflowId,
        registry,
        raw: input.plan,
        step: input.step,
      });
    } catch {
      // Unverified: no grant scoped to a proposer can apply, which the verdict below will say.
    }
  }
  const authority = authorizeStep({
    workflowId: input.workflowId,
    runId: input.runId,
    step: input.step,
    expected: {
      digest,
      auto: input.step.approval.mode === 'auto',
      granted: {
        step: input.step,
        egress: input.egress ?? false,
        mcpPin: input.mcpPin,
        planName: proposal?.planName ?? '',
        proposer: proposal?.proposer,
      },
    },
    approvals: input.approvals,
    registry,
    // The executor never runs a step on a plan's own rule, whatever the plan says it is.
    legacyPlanRules: false,
    grantsAtMs: launchedAtMs,
  });
  if (authority.verdict !== 'approved')
    notApproved(`executor refused step "${input.step.path}": ${authority.summary}`);
  return authority;
}

/** Spends this host's uses of the limited standing approvals that approved the step (once per step). */
async function spendGrantUses(
  authority: StepAuthority,
  input: Pick<ApprovedStep, 'workflowId' | 'digest'> & { step: { path: string } },
  ledger: GrantUseLedger,
): Promise<void> {
  for (const decider of authority.deciders) {
    const max = decider.grant?.record.maxUses;
    if (max === undefined) continue;
    try {
      await ledger.spend(
        decider.grant!.grantId,
        max,
        `${input.workflowId}/${input.step.path}/${input.digest}`,
      );
    } catch (error) {
      if (error instanceof GrantUsesExceeded)
        notApproved(`executor refused step "${input.step.path}": ${error.message}`);
      throw error;
    }
  }
}
