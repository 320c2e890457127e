/**
 * The executor's own check, just before a step runs: the step is exactly what was approved,
 * and enough approvals from devices chained to the executor's pinned root say so.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { ApprovalRefused, verifyApproval } from '../core/approval/approval.js';
import type { Envelope } from '../core/approval/dsse.js';
import { DeviceRecordError, DeviceRegistry } from '../core/devices/registry.js';
import { FAILURE_TYPES } from '../core/names.js';
import { stepDigest } from '../core/plan/digest.js';
import type { McpPin } from '../core/mcp/catalog.js';
import type { StepNode } from '../core/plan/types.js';

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
}

/**
 * Rebuilding a registry verifies every record's signature (~3 ms each in pure JS); plans share
 * the same few records, so registries are remembered by their exact record signatures and pin.
 */
const registryCache = new Map<string, DeviceRegistry>();
function trustedRegistry(records: Envelope[], pinnedRootKeyId: string): DeviceRegistry {
  const key = `${pinnedRootKeyId}|${records.map((r) => `${r.signatures[0].sig}:${r.payload}`).join('|')}`;
  let registry = registryCache.get(key);
  if (!registry) {
    registry = DeviceRegistry.fromRecords(records, pinnedRootKeyId);
    if (registryCache.size >= 32) registryCache.delete(registryCache.keys().next().value!);
    registryCache.set(key, registry);
  }
  return registry;
}

/** Returns the approving devices' names; throws a non-retryable failure that says why not. */
export function assertStepApproved(input: ApprovedStep, pinnedRootKeyId: string | undefined): string[] {
  if (!pinnedRootKeyId) {
    throw ApplicationFailure.nonRetryable(
      'executor has no pinned root device: pair a device (`countersign pair`) so the executor can trust approvals',
      FAILURE_TYPES.executorUntrusted,
    );
  }
  let registry: DeviceRegistry;
  try {
    registry = trustedRegistry(input.trustRecords, pinnedRootKeyId);
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
    throw ApplicationFailure.nonRetryable((error as Error).message, FAILURE_TYPES.stepNotApproved);
  }
  if (digest !== input.digest) {
    throw ApplicationFailure.nonRetryable(
      `step "${input.step.path}" differs from the step that was approved (digest ${digest.slice(0, 16)}… ≠ ${input.digest.slice(0, 16)}…)`,
      FAILURE_TYPES.stepNotApproved,
    );
  }
  const auto = input.step.approval.mode === 'auto';
  const seenNonces = new Set<string>();
  const approvers = new Map<string, { name: string; policy: boolean }>();
  for (const envelope of input.approvals) {
    try {
      const { payload, device } = verifyApproval(envelope, {
        workflowId: input.workflowId,
        runId: input.runId,
        step: (path) => (path === input.step.path ? { digest, auto } : undefined),
        nowMs: Date.now(),
        nonceUsed: (nonce) => seenNonces.has(nonce),
        registry,
        // The workflow checked expiry on arrival; a step re-attached after a crash must not fail for lateness.
        ignoreTime: true,
      });
      seenNonces.add(payload.nonce);
      if (payload.decision !== 'approve')
        throw new ApprovalRefused('not_awaiting', `device "${device.name}" denied this step`);
      approvers.set(device.keyId, { name: device.name, policy: device.role === 'policy' });
    } catch (error) {
      const reason = error instanceof ApprovalRefused ? `[${error.code}] ${error.message}` : String(error);
      throw ApplicationFailure.nonRetryable(
        `executor refused an approval for step "${input.step.path}": ${reason}`,
        FAILURE_TYPES.stepNotApproved,
      );
    }
  }
  const humans = [...approvers.values()].filter((a) => !a.policy).length;
  const policy = [...approvers.values()].some((a) => a.policy);
  if (!(humans >= input.step.approval.quorum || (auto && policy))) {
    throw ApplicationFailure.nonRetryable(
      `step "${input.step.path}" has ${humans} of ${input.step.approval.quorum} required approvals`,
      FAILURE_TYPES.stepNotApproved,
    );
  }
  return [...approvers.values()].map((a) => a.name);
}
