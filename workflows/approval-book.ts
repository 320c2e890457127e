/**
 * The plan's ledger of approvals: which steps await a decision, which nonces were spent,
 * and which device records the plan trusts. Plain class, no Temporal APIs, so the rules
 * are unit-tested directly; the workflow only wires it to the Update handler.
 */
import { fromBase64, utf8Decode } from '../core/bytes.js';
import { ApprovalRefused, verifyApproval, type VerifiedApproval } from '../core/approval/approval.js';
import type { Envelope } from '../core/approval/dsse.js';
import { DeviceRegistry } from '../core/devices/registry.js';
import type { ApprovalRecord, StepRecord } from '../core/plan/state.js';

export class ApprovalBook {
  private registry: DeviceRegistry;
  private readonly usedNonces: Set<string>;

  constructor(
    private readonly workflowId: string,
    private readonly runId: string,
    private readonly steps: Map<string, StepRecord>,
    private readonly autoSteps: Set<string>,
    trustRecords: Envelope[],
    usedNonces: string[],
  ) {
    this.registry = DeviceRegistry.fromRecords(trustRecords);
    this.usedNonces = new Set(usedNonces);
  }

  get trustRecords(): Envelope[] {
    return [...this.registry.records];
  }

  get nonces(): string[] {
    return [...this.usedNonces];
  }

  /**
   * Registry records only ever grow. A submission whose records extend ours (same prefix,
   * more records) is adopted; anything else keeps what we have. Returns the registry to use.
   */
  private registryWith(records: Envelope[]): DeviceRegistry {
    const known = this.registry.records;
    if (records.length <= known.length) return this.registry;
    for (let i = 0; i < known.length; i++) {
      if (records[i]?.signatures[0].sig !== known[i]!.signatures[0].sig) return this.registry;
    }
    try {
      return DeviceRegistry.fromRecords(records);
    } catch {
      return this.registry;
    }
  }

  /** Throws ApprovalRefused with the reason; returns what would be recorded. Does not change state. */
  check(envelope: Envelope, deviceRecords: Envelope[], nowMs: number): VerifiedApproval {
    const registry = this.registryWith(deviceRecords);
    const verified = verifyApproval(envelope, {
      workflowId: this.workflowId,
      runId: this.runId,
      nowMs,
      registry,
      nonceUsed: (nonce) => this.usedNonces.has(nonce),
      step: (path) => {
        const record = this.steps.get(path);
        return record && { digest: record.digest, auto: this.autoSteps.has(path) };
      },
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
    if (record.approvals.some((a) => a.keyId === verified.device.keyId)) {
      throw new ApprovalRefused(
        'duplicate_approver',
        `device "${verified.device.name}" already decided on step "${record.path}"`,
      );
    }
    return verified;
  }

  /** Records an approval that `check` accepted in the same workflow activation. */
  accept(envelope: Envelope, deviceRecords: Envelope[], acceptedAt: string): ApprovalRecord {
    this.registry = this.registryWith(deviceRecords);
    const payload = JSON.parse(utf8Decode(fromBase64(envelope.payload))) as VerifiedApproval['payload'];
    const device = this.registry.get(payload.keyId)!;
    this.usedNonces.add(payload.nonce);
    const approval: ApprovalRecord = {
      keyId: device.keyId,
      deviceName: device.name,
      role: device.role,
      decision: payload.decision,
      reason: payload.reason,
      acceptedAt,
      auto: device.role === 'policy',
      envelope,
    };
    this.steps.get(payload.stepPath)!.approvals.push(approval);
    return approval;
  }
}
