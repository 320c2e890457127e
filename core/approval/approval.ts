/**
 * Approval envelopes: creation (on a device) and verification (API, workflow, executor, audit).
 * Every refusal has a distinct code and a sentence that says what was wrong.
 */
import { z } from 'zod';
import { utf8Decode } from '../bytes.js';
import type { DeviceRegistry, Device } from '../devices/registry.js';
import type { KeyPair } from '../keys.js';
import { approvalPayloadBytes, type ApprovalRequest } from './payload.js';
import { openEnvelope, PAYLOAD_TYPES, signEnvelope, verifyEnvelopeSignature, type Envelope } from './dsse.js';

export const APPROVAL_LIMITS = {
  /** An envelope may live at most this long. */
  maxLifetimeMs: 24 * 3_600_000,
  /** Tolerated clock skew between a device and the workflow clock. */
  clockSkewMs: 5 * 60_000,
} as const;

const isoTime = z
  .string()
  .max(40)
  .refine((s) => !Number.isNaN(Date.parse(s)), 'expected an ISO 8601 time');
export const approvalPayloadSchema = z
  .object({
    workflowId: z.string().min(1).max(400),
    runId: z.string().min(1).max(100),
    stepPath: z.string().min(1).max(400),
    stepDigest: z.string().regex(/^[0-9a-f]{64}$/),
    decision: z.enum(['approve', 'deny']),
    reason: z.string().max(1000),
    issuedAt: isoTime,
    expiresAt: isoTime,
    nonce: z.string().regex(/^[A-Za-z0-9_-]{16,64}$/),
    keyId: z.string().regex(/^[0-9a-f]{32}$/),
  })
  .strict();
export type ApprovalPayload = z.infer<typeof approvalPayloadSchema>;

export type ApprovalRefusal =
  | 'malformed_envelope'
  | 'malformed_payload'
  | 'key_mismatch'
  | 'unknown_device'
  | 'revoked_device'
  | 'bad_signature'
  | 'wrong_workflow'
  | 'wrong_run'
  | 'unknown_step'
  | 'wrong_digest'
  | 'not_yet_valid'
  | 'expired'
  | 'lifetime_too_long'
  | 'nonce_reused'
  | 'policy_key_not_allowed'
  | 'not_awaiting'
  | 'deadline_passed'
  | 'duplicate_approver';

export class ApprovalRefused extends Error {
  constructor(
    readonly code: ApprovalRefusal,
    message: string,
  ) {
    super(message);
    this.name = 'ApprovalRefused';
  }
}

export interface ApprovalExpectation {
  workflowId: string;
  runId: string;
  /** Looks up the step the envelope names; undefined when the plan has no such step. */
  step: (stepPath: string) => { digest: string; auto: boolean } | undefined;
  nowMs: number;
  nonceUsed: (nonce: string) => boolean;
  registry: DeviceRegistry;
  /** Skip time checks: the executor re-checks an envelope the workflow already accepted in time. */
  ignoreTime?: boolean;
}

export interface VerifiedApproval {
  payload: ApprovalPayload;
  device: Device;
}

/** Verifies an approval envelope against what the verifier expects. Throws ApprovalRefused. */
export function verifyApproval(envelope: unknown, expect: ApprovalExpectation): VerifiedApproval {
  const opened = openEnvelope(envelope, PAYLOAD_TYPES.approval);
  if (typeof opened === 'string') throw new ApprovalRefused('malformed_envelope', opened);
  let raw: unknown;
  try {
    raw = JSON.parse(utf8Decode(opened.payloadBytes));
  } catch {
    throw new ApprovalRefused('malformed_payload', 'approval payload is not UTF-8 JSON');
  }
  const parsed = approvalPayloadSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ApprovalRefused(
      'malformed_payload',
      `approval payload is malformed at ${issue?.path.join('.') || '(root)'}: ${issue?.message}`,
    );
  }
  const payload = parsed.data;
  if (payload.keyId !== opened.keyId) {
    throw new ApprovalRefused(
      'key_mismatch',
      `payload names key ${payload.keyId} but the signature is by ${opened.keyId}`,
    );
  }
  const device = expect.registry.get(payload.keyId);
  if (!device) throw new ApprovalRefused('unknown_device', `key ${payload.keyId} is not a paired device`);
  if (device.revoked) {
    throw new ApprovalRefused(
      'revoked_device',
      `device "${device.name}" (${device.keyId}) was revoked at ${device.revoked.at}`,
    );
  }
  if (!verifyEnvelopeSignature(opened, PAYLOAD_TYPES.approval, device.publicKey)) {
    throw new ApprovalRefused(
      'bad_signature',
      `signature does not verify against device "${device.name}" (${device.keyId})`,
    );
  }
  if (payload.workflowId !== expect.workflowId) {
    throw new ApprovalRefused(
      'wrong_workflow',
      `approval is for plan ${payload.workflowId}, not ${expect.workflowId}`,
    );
  }
  if (payload.runId !== expect.runId) {
    throw new ApprovalRefused(
      'wrong_run',
      `approval is for run ${payload.runId}, not the current run ${expect.runId}`,
    );
  }
  const step = expect.step(payload.stepPath);
  if (!step) throw new ApprovalRefused('unknown_step', `plan has no step "${payload.stepPath}"`);
  if (payload.stepDigest !== step.digest) {
    throw new ApprovalRefused(
      'wrong_digest',
      `step "${payload.stepPath}" has digest ${step.digest.slice(0, 16)}…; the approval signed ${payload.stepDigest.slice(0, 16)}… (the step changed, or the approval is for another step)`,
    );
  }
  if (!expect.ignoreTime) {
    const issued = Date.parse(payload.issuedAt);
    const expires = Date.parse(payload.expiresAt);
    if (issued > expect.nowMs + APPROVAL_LIMITS.clockSkewMs) {
      throw new ApprovalRefused(
        'not_yet_valid',
        `approval is issued at ${payload.issuedAt}, in the future (check the device clock)`,
      );
    }
    if (expires <= expect.nowMs)
      throw new ApprovalRefused('expired', `approval expired at ${payload.expiresAt}`);
    if (expires - issued > APPROVAL_LIMITS.maxLifetimeMs) {
      throw new ApprovalRefused('lifetime_too_long', 'approval lives longer than 24 hours; sign a fresh one');
    }
  }
  if (expect.nonceUsed(payload.nonce)) {
    throw new ApprovalRefused(
      'nonce_reused',
      `nonce ${payload.nonce} was already used: this approval was replayed`,
    );
  }
  if (device.role === 'policy' && !step.auto) {
    throw new ApprovalRefused(
      'policy_key_not_allowed',
      `step "${payload.stepPath}" needs a human approval; the policy key may only sign auto steps`,
    );
  }
  return { payload, device };
}

export { approvalPayload, type ApprovalRequest } from './payload.js';

/** Signs an approval on a device. The nonce comes from the caller (workflows may not use randomness). */
export function signApproval(request: ApprovalRequest, key: KeyPair): Envelope {
  return signEnvelope(
    PAYLOAD_TYPES.approval,
    approvalPayloadBytes(request, key.keyId),
    key.secretKey,
    key.keyId,
  );
}
