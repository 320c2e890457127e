/**
 * The one rule for "do these approvals authorise this step?", used by the workflow (its gate
 * verdict), the executor (just before it runs a step) and the history and audit (after the fact).
 * Every approval is verified again; a deny by any device denies; a standing approval a person
 * signed approves a step that asked for one; otherwise distinct people's devices must reach the
 * quorum. What does not count is said, with its reason.
 */
import type { Envelope } from './dsse.js';
import type { DeviceRegistry, Grant } from '../devices/registry.js';
import type { StepNode } from '../plan/types.js';
import {
  ApprovalRefused,
  peekApprovalPayload,
  verifyApproval,
  type ApprovalRefusal,
  type ExpectedStep,
} from './approval.js';

export interface StepAuthorityInput {
  workflowId: string;
  runId: string;
  step: StepNode;
  /** The step as this verifier computed it (digest from the step itself). */
  expected: ExpectedStep;
  /** Every decision recorded for the step, in the order they were accepted. */
  approvals: readonly Envelope[];
  registry: DeviceRegistry;
  /** See ApprovalExpectation.revokedAsOfMs. */
  revokedAsOfMs?: number | undefined;
  /** See ApprovalExpectation.legacyPlanRules. */
  legacyPlanRules?: boolean | undefined;
  /** See ApprovalExpectation.grantsAtMs. */
  grantsAtMs?: number | undefined;
}

export interface Decider {
  keyId: string;
  /** The device's name, or the grant's name when a grant approved. */
  name: string;
  decision: 'approve' | 'deny';
  reason: string;
  /** A person's device, a standing approval a person signed, or (old histories) a plan's own rule. */
  via: 'device' | 'grant' | 'plan-rule';
  grant?: Grant | undefined;
}

export interface VoidApproval {
  /** Position in `approvals`. */
  index: number;
  keyId: string;
  code: ApprovalRefusal | 'malformed_envelope';
  message: string;
}

export interface StepAuthority {
  verdict: 'approved' | 'denied' | 'pending';
  /** The decisions that count, in order. */
  deciders: Decider[];
  /** Decisions that do not count (any longer), with why. */
  voided: VoidApproval[];
  /** Distinct people's devices that approved. */
  people: number;
  quorum: number;
  /** One sentence: "approved by Ana's phone", "1 of 2 approvals", "denied by laptop", … */
  summary: string;
}

export function authorizeStep(input: StepAuthorityInput): StepAuthority {
  const { step, expected } = input;
  const quorum = step.approval.quorum;
  const nonces = new Set<string>();
  const deciders: Decider[] = [];
  const voided: VoidApproval[] = [];
  const seenDevices = new Set<string>();
  input.approvals.forEach((envelope, index) => {
    try {
      const { payload, device, grant } = verifyApproval(envelope, {
        workflowId: input.workflowId,
        runId: input.runId,
        step: (path) => (path === step.path ? expected : undefined),
        nowMs: 0,
        ignoreTime: true,
        nonceUsed: (nonce) => nonces.has(nonce),
        registry: input.registry,
        revokedAsOfMs: input.revokedAsOfMs,
        legacyPlanRules: input.legacyPlanRules ?? false,
        grantsAtMs: input.grantsAtMs,
      });
      nonces.add(payload.nonce);
      // One device, one voice: a second decision by the same device adds nothing.
      if (device.role !== 'policy' && seenDevices.has(device.keyId)) return;
      seenDevices.add(device.keyId);
      deciders.push({
        keyId: device.keyId,
        name: grant ? grant.record.name : device.name,
        decision: payload.decision,
        reason: payload.reason,
        via: device.role !== 'policy' ? 'device' : grant ? 'grant' : 'plan-rule',
        ...(grant ? { grant } : {}),
      });
    } catch (error) {
      const claimed = peekApprovalPayload(envelope)?.keyId;
      voided.push({
        index,
        keyId: typeof claimed === 'string' ? claimed : '',
        code: error instanceof ApprovalRefused ? error.code : 'malformed_envelope',
        message: (error as Error).message,
      });
    }
  });
  const denial = deciders.find((d) => d.decision === 'deny');
  const people = deciders.filter((d) => d.via === 'device' && d.decision === 'approve');
  const standing = deciders.find((d) => d.via !== 'device' && d.decision === 'approve');
  let verdict: StepAuthority['verdict'] = 'pending';
  let summary: string;
  if (denial) {
    verdict = 'denied';
    summary = `denied by ${denial.name}${denial.reason ? `: ${denial.reason}` : ''}`;
  } else if (standing && expected.auto) {
    verdict = 'approved';
    summary =
      standing.via === 'grant'
        ? `approved by standing approval "${standing.name}" (${standing.grant!.grantId})`
        : `approved by the plan's own rule (before standing approvals)`;
  } else if (people.length >= quorum) {
    verdict = 'approved';
    summary = `approved by ${people.map((p) => p.name).join(', ')}`;
  } else {
    summary = `${people.length} of ${quorum} approval${quorum === 1 ? '' : 's'}`;
  }
  if (verdict !== 'approved' && voided.length)
    summary += `; not counted: ${voided.map((v) => `[${v.code}] ${v.message}`).join('; ')}`;
  return { verdict, deciders, voided, people: people.length, quorum, summary };
}
