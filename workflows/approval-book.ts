/**
 * The plan's ledger of approvals: the device records it trusts (a chain that only grows), the
 * nonces it has spent, who proposed the plan, and for each step whether its approvals authorise
 * it now (core/approval/authorize.ts: the same rule the executor and the audit apply). Plain
 * class, no Temporal APIs: the workflow wires it to its Update, Signal and gates.
 */
import {
  ApprovalRefused,
  peekApprovalPayload,
  verifyApproval,
  type ExpectedStep,
  type VerifiedApproval,
} from '../core/approval/approval.js';
import { authorizeStep, type StepAuthority } from '../core/approval/authorize.js';
import type { Envelope } from '../core/approval/dsse.js';
import { verifyProposal, type VerifiedProposal } from '../core/approval/proposal.js';
import { DeviceRegistry } from '../core/devices/registry.js';
import type { McpPin } from '../core/mcp/catalog.js';
import { expectsAttestations, resultProblem } from '../core/approval/attestation.js';
import type { ApprovalRecord, StepRecord, StepResult } from '../core/plan/state.js';
import type { StepNode } from '../core/plan/types.js';

export interface BookContext {
  workflowId: string;
  /** The first run's id: approvals bind it, and it stays across continue-as-new. */
  runId: string;
  egress: boolean;
  /** The plan's own name (a proposal's signed name wins for grant scopes). */
  planName: string;
  /** The plan's signed proposal, if it came with one. */
  proposal?: Envelope | undefined;
  /** The plan as submitted, to check the proposal's hash (top-level plans only). */
  raw?: unknown;
  /** Replay of a plan recorded before standing approvals (see ApprovalExpectation.legacyPlanRules). */
  legacyPlanRules: boolean;
}

export class ApprovalBook {
  private registry: DeviceRegistry;
  private readonly usedNonces: Set<string>;
  private readonly authorities = new Map<string, { key: string; authority: StepAuthority }>();
  private proposalOf?: { records: number; verified: VerifiedProposal | string };

  constructor(
    private readonly context: BookContext,
    private readonly steps: Map<string, StepRecord>,
    private readonly nodes: Map<string, StepNode>,
    trustRecords: Envelope[],
    usedNonces: string[],
  ) {
    this.registry = DeviceRegistry.fromRecords(trustRecords);
    this.usedNonces = new Set(usedNonces);
  }

  /** Whether results must come signed by an executor key (one is introduced in the records held). */
  expectsAttestations(): boolean {
    return expectsAttestations(this.registry);
  }

  /** Why a step's result is not what an executor signed for it; undefined when it is, or none is expected. */
  resultProblem(path: string, result: StepResult): string | undefined {
    if (!this.expectsAttestations()) return undefined;
    const record = this.steps.get(path)!;
    return resultProblem(
      result.attestation,
      {
        workflowId: this.context.workflowId,
        runId: this.context.runId,
        stepPath: path,
        digest: record.digest,
      },
      result,
      this.registry,
    );
  }

  get trustRecords(): Envelope[] {
    return [...this.registry.records];
  }

  get nonces(): string[] {
    return [...this.usedNonces];
  }

  /**
   * Registry records only ever grow. Records that extend ours (same prefix, more records, every
   * one valid) are adopted; anything else keeps what we have. Returns true when the chain grew.
   */
  adopt(records: Envelope[]): boolean {
    const next = this.registryWith(records);
    if (next === this.registry) return false;
    this.registry = next;
    return true;
  }

  private registryWith(records: Envelope[]): DeviceRegistry {
    if (!Array.isArray(records) || records.length <= this.registry.records.length) return this.registry;
    try {
      return this.registry.extendedWith(records) ?? this.registry;
    } catch {
      return this.registry;
    }
  }

  /** Who proposed the plan, as the records verify it; a string says why nobody verifiably did. */
  proposal(registry = this.registry): VerifiedProposal | string {
    const mine = registry === this.registry;
    if (mine && this.proposalOf?.records === registry.records.length) return this.proposalOf.verified;
    let verified: VerifiedProposal | string;
    if (!this.context.proposal) verified = 'the plan came without a signed proposal';
    else
      try {
        verified = verifyProposal(this.context.proposal, {
          workflowId: this.context.workflowId,
          registry,
          raw: this.context.raw,
        });
      } catch (error) {
        verified = (error as Error).message;
      }
    if (mine) this.proposalOf = { records: registry.records.length, verified };
    return verified;
  }

  /** What verifiers know of a step: its digest, whether it asked for a grant, and what a grant looks at. */
  expected(path: string, registry = this.registry): ExpectedStep | undefined {
    const record = this.steps.get(path);
    const node = this.nodes.get(path);
    if (!record || !node) return undefined;
    const proposal = this.proposal(registry);
    const verified = typeof proposal === 'object' ? proposal : undefined;
    return {
      digest: record.digest,
      auto: node.approval.mode === 'auto',
      granted: {
        step: node,
        egress: this.context.egress,
        mcpPin: record.mcpPin as McpPin | undefined,
        planName: verified?.planName ?? this.context.planName,
        proposer: verified?.proposer,
      },
    };
  }

  /** Whether the step's approvals authorise it, with the records known now (cached until either changes). */
  authority(path: string): StepAuthority {
    const record = this.steps.get(path)!;
    const key = `${record.approvals.length}|${this.registry.records.length}|${record.digest}`;
    const cached = this.authorities.get(path);
    if (cached?.key === key) return cached.authority;
    const authority = authorizeStep({
      workflowId: this.context.workflowId,
      runId: this.context.runId,
      step: this.nodes.get(path)!,
      expected: this.expected(path)!,
      approvals: record.approvals.map((a) => a.envelope),
      registry: this.registry,
      legacyPlanRules: this.context.legacyPlanRules,
    });
    this.authorities.set(path, { key, authority });
    return authority;
  }

  /** Throws ApprovalRefused with the reason; returns what would be recorded. Does not change state. */
  check(envelope: Envelope, deviceRecords: Envelope[], nowMs: number): VerifiedApproval {
    const registry = this.registryWith(deviceRecords);
    const verified = verifyApproval(envelope, {
      workflowId: this.context.workflowId,
      runId: this.context.runId,
      nowMs,
      registry,
      nonceUsed: (nonce) => this.usedNonces.has(nonce),
      step: (path) => this.expected(path, registry),
      legacyPlanRules: this.context.legacyPlanRules,
    });
    const record = this.steps.get(verified.payload.stepPath)!;
    if (record.status !== 'awaiting_approval') {
      throw new ApprovalRefused(
        'not_awaiting',
        `step "${record.path}" is ${record.status.replace('_', ' ')}; it is not waiting for a decision`,
      );
    }
    if (record.deadlineMs !== undefined && nowMs >= record.deadlineMs) {
      throw new ApprovalRefused(
        'deadline_passed',
        `the deadline for step "${record.path}" passed at ${new Date(record.deadlineMs).toISOString()}; it is denied (fail-closed)`,
      );
    }
    if (
      verified.device.role !== 'policy' &&
      record.approvals.some((a) => a.keyId === verified.device.keyId)
    ) {
      throw new ApprovalRefused(
        'duplicate_approver',
        `device "${verified.device.name}" already decided on step "${record.path}"`,
      );
    }
    return verified;
  }

  /** Records an approval that `check` accepted in the same workflow activation. */
  accept(envelope: Envelope, deviceRecords: Envelope[], acceptedAt: string): ApprovalRecord {
    this.adopt(deviceRecords);
    const payload = peekApprovalPayload(envelope)!;
    const device = this.registry.get(payload.keyId!)!;
    this.usedNonces.add(payload.nonce!);
    const grant = payload.grant ? this.registry.grant(payload.grant.id) : undefined;
    const approval: ApprovalRecord = {
      keyId: device.keyId,
      deviceName: device.name,
      role: device.role,
      decision: payload.decision!,
      reason: payload.reason ?? '',
      acceptedAt,
      auto: device.role === 'policy',
      ...(grant
        ? {
            grant: {
              grantId: grant.grantId,
              name: grant.record.name,
              issuedBy: this.registry.get(grant.issuedBy)?.name ?? grant.issuedBy,
              expiresAt: grant.record.expiresAt,
            },
          }
        : {}),
      envelope,
    };
    this.steps.get(payload.stepPath!)!.approvals.push(approval);
    return approval;
  }
}
