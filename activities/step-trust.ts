/**
 * The executor's own check, just before a step runs: the step is exactly what was approved, and
 * its approvals authorise it under the one rule (core/approval/authorize.ts), with devices and
 * standing approvals chained to the executor's pinned root. A standing approval limited to N uses
 * is counted here too, on this host's own ledger.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { authorizeStep, type StepAuthority } from '../core/approval/authorize.js';
import type { Envelope } from '../core/approval/dsse.js';
import { verifyProposedStep, type VerifiedProposal } from '../core/approval/proposal.js';
import { cachedRegistry } from '../core/devices/registry-cache.js';
import { DeviceRecordError, type DeviceRegistry } from '../core/devices/registry.js';
import { FAILURE_TYPES } from '../core/names.js';
import { stepDigest } from '../core/plan/digest.js';
import type { McpPin } from '../core/mcp/catalog.js';
import type { StepNode } from '../core/plan/types.js';
import { GrantUsesExceeded, type GrantUseLedger } from './grant-uses.js';

export interface ApprovedStep {
  workflowId: string;
  runId: string;
  step: StepNode;
  workspaceId: string;
  /** The plan's `egress: true` (absent in histories recorded before egress existed). */
  egress?: boolean | undefined;
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

/** The authority the step's approvals give; throws a non-retryable failure that says why it is not enough. */
export function assertStepApproved(
  input: ApprovedStep,
  pinnedRootKeyId: string | undefined,
  /** When the step was (or is being) launched, by this host's clock: grants must be in force then. */
  launchedAtMs: number,
): StepAuthority {
  if (!pinnedRootKeyId) {
    throw ApplicationFailure.nonRetryable(
      'executor has no pinned root device: pair a device (`countersign pair`) so the executor can trust approvals',
      FAILURE_TYPES.executorUntrusted,
    );
  }
  let registry: DeviceRegistry;
  try {
    registry = cachedRegistry(input.trustRecords, pinnedRootKeyId);
  } catch (error) {
    const reason = error instanceof DeviceRecordError ? `[${error.code}] ${error.message}` : String(error);
    throw ApplicationFailure.nonRetryable(
      `device records do not chain to the executor's pinned root: ${reason}`,
      FAILURE_TYPES.executorUntrusted,
    );
  }
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
export async function spendGrantUses(
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
