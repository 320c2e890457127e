/**
 * Approval envelopes: creation (on a device) and verification (API, workflow, executor, audit).
 * Every refusal has a distinct code and a sentence that says what was wrong.
 */
import { z } from 'zod';
import { fromBase64, utf8Decode } from '../bytes.js';
import { isPerson, type DeviceRegistry, type Device, type Grant } from '../devices/registry.js';
import { grantCovers, type GrantedStep } from '../grants/match.js';
import type { KeyPair } from '../keys.js';
import { approvalPayloadBytes, type ApprovalRequest } from './payload.js';
import { openEnvelope, PAYLOAD_TYPES, signEnvelope, verifyEnvelopeSignature, type Envelope } from './dsse.js';

export const APPROVAL_LIMITS = {
  /** An envelope may live at most this long. */
  maxLifetimeMs: 24 * 3_600_000,
  /** Tolerated clock skew between a device and the workflow clock. */
  clockSkewMs: 5 * 60_000,
} as const;

/**
 * A date-time as Date.toISOString writes it (a four-digit year, a zone or Z): not one of the
 * looser forms Date.parse also reads, some in the local time zone of whoever checks.
 */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;
const isoTime = z
  .string()
  .max(40)
  .refine((s) => ISO_TIME.test(s) && !Number.isNaN(Date.parse(s)), 'expected an ISO 8601 time');
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
    grant: z
      .object({ id: z.string().regex(/^[0-9a-f]{16}$/), sig: z.string().min(1).max(200) })
      .strict()
      .optional(),
    use: z.int().min(1).max(1_000_000).optional(),
  })
  .strict()
  // Checked whatever `ignoreTime` says: an approval that expires before it is issued was never valid.
  .refine((p) => Date.parse(p.expiresAt) > Date.parse(p.issuedAt), {
    path: ['expiresAt'],
    message: 'must be after issuedAt',
  });
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
  | 'not_a_person'
  | 'grant_required'
  | 'unknown_grant'
  | 'grant_revoked'
  | 'grant_expired'
  | 'grant_used_up'
  | 'grant_does_not_cover'
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

/** What a verifier knows of the step an envelope names. */
export interface ExpectedStep {
  digest: string;
  /** The plan asked for a standing approval (`approval: auto`). */
  auto: boolean;
  /** The step with what a grant's scope and limits look at; without it, no grant can be checked (and none counts). */
  granted?: GrantedStep | undefined;
}

export interface ApprovalExpectation {
  workflowId: string;
  runId: string;
  /** Looks up the step the envelope names; undefined when the plan has no such step. */
  step: (stepPath: string) => ExpectedStep | undefined;
  nowMs: number;
  nonceUsed: (nonce: string) => boolean;
  registry: DeviceRegistry;
  /** Skip time checks: the executor re-checks an envelope the workflow already accepted in time. */
  ignoreTime?: boolean;
  /**
   * A standing approval must still be in force at this time, whatever `ignoreTime` says: the
   * executor's own clock when it launches a step (an `issuedAt` is only the policy key's word).
   */
  grantsAtMs?: number | undefined;
  /**
   * Revocations count only if made at or before this time (an audit asks "was it revoked before the
   * step ran?"). Live checks leave it out: every revocation they know of counts.
   */
  revokedAsOfMs?: number | undefined;
  /**
   * Histories recorded before standing approvals: the policy key approved `auto` steps by the
   * plan's own rules, without a grant. Only the replay of such plans may pass this.
   */
  legacyPlanRules?: boolean;
}

export interface VerifiedApproval {
  payload: ApprovalPayload;
  device: Device;
  /** The standing approval the policy key applied, when it applied one. */
  grant?: Grant | undefined;
}

/** Whether a revocation counts for a check made as of `asOfMs` (undefined: every known revocation counts). */
export function revokedBy(revoked: { at: string } | undefined, asOfMs: number | undefined): boolean {
  if (!revoked) return false;
  return asOfMs === undefined || Date.parse(revoked.at) <= asOfMs;
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
  if (revokedBy(device.revoked, expect.revokedAsOfMs)) {
    throw new ApprovalRefused(
      'revoked_device',
      `device "${device.name}" (${device.keyId}) was revoked at ${device.revoked!.at}`,
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
  if (device.role === 'executor')
    throw new ApprovalRefused(
      'not_a_person',
      `key ${device.keyId} is an executor host's key: it signs what ran, never what may run`,
    );
  if (device.role !== 'policy') {
    if (payload.grant || payload.use !== undefined)
      throw new ApprovalRefused(
        'malformed_payload',
        "a person's approval does not name a standing approval: only the control worker applies those",
      );
    return { payload, device };
  }
  if (!step.auto) {
    throw new ApprovalRefused(
      'policy_key_not_allowed',
      `step "${payload.stepPath}" needs a human approval; the policy key may only sign auto steps`,
    );
  }
  if (!payload.grant) {
    if (expect.legacyPlanRules) return { payload, device };
    throw new ApprovalRefused(
      'grant_required',
      `the policy key applies standing approvals a person signed; this approval of "${payload.stepPath}" names none, so it counts for nothing`,
    );
  }
  const grant = checkGrant(payload, step, expect);
  return { payload, device, grant };
}

/** The standing approval a policy envelope names: signed by a person, in force, in scope, covering this step. */
function checkGrant(payload: ApprovalPayload, step: ExpectedStep, expect: ApprovalExpectation): Grant {
  const named = payload.grant!;
  const grant = expect.registry.grant(named.id);
  if (!grant || grant.sig !== named.sig)
    throw new ApprovalRefused(
      'unknown_grant',
      `the approval names standing approval ${named.id}, which ${grant ? 'was signed differently (a record replayed under another id?)' : 'is not in the device records'}`,
    );
  const label = `standing approval "${grant.record.name}" (${grant.grantId})`;
  if (payload.decision !== 'approve')
    throw new ApprovalRefused('malformed_payload', `${label} can only approve, never deny`);
  const issuer = expect.registry.get(grant.issuedBy);
  if (!issuer || !isPerson(issuer) || revokedBy(issuer.revoked, expect.revokedAsOfMs))
    throw new ApprovalRefused(
      'grant_revoked',
      `${label} was signed by device "${issuer?.name ?? grant.issuedBy}", which was revoked${issuer?.revoked ? ` at ${issuer.revoked.at}` : ''}`,
    );
  if (revokedBy(grant.revoked, expect.revokedAsOfMs))
    throw new ApprovalRefused('grant_revoked', `${label} was revoked at ${grant.revoked!.at}`);
  const expires = Date.parse(grant.record.expiresAt);
  const checkedAt = expect.grantsAtMs ?? (expect.ignoreTime ? undefined : expect.nowMs);
  if (Date.parse(payload.issuedAt) >= expires || (checkedAt !== undefined && checkedAt >= expires))
    throw new ApprovalRefused('grant_expired', `${label} expired at ${grant.record.expiresAt}`);
  if (grant.record.maxUses !== undefined && (payload.use === undefined || payload.use > grant.record.maxUses))
    throw new ApprovalRefused(
      'grant_used_up',
      `${label} allows ${grant.record.maxUses} use${grant.record.maxUses === 1 ? '' : 's'}; this would be ${payload.use === undefined ? 'an uncounted one' : `use ${payload.use}`}`,
    );
  if (!step.granted)
    throw new ApprovalRefused(
      'grant_does_not_cover',
      `${label}: the step it would approve is not known here`,
    );
  const covers = grantCovers(grant.record, step.granted);
  if (!covers.ok)
    throw new ApprovalRefused(
      'grant_does_not_cover',
      `${label} does not cover "${payload.stepPath}": ${covers.reason}`,
    );
  return grant;
}

export { approvalPayload, type ApprovalRequest } from './payload.js';

/**
 * What an approval envelope's payload claims, read without verifying anything: for labelling
 * and indexing only (which step, which key), never for deciding.
 */
export function peekApprovalPayload(envelope: unknown): Partial<ApprovalPayload> | undefined {
  try {
    const raw = (envelope as { payload?: unknown } | undefined)?.payload;
    if (typeof raw !== 'string') return undefined;
    const value: unknown = JSON.parse(utf8Decode(fromBase64(raw)));
    return typeof value === 'object' && value !== null ? (value as Partial<ApprovalPayload>) : undefined;
  } catch {
    return undefined;
  }
}

/** Signs an approval on a device. The nonce comes from the caller (workflows may not use randomness). */
export function signApproval(request: ApprovalRequest, key: KeyPair): Envelope {
  return signEnvelope(
    PAYLOAD_TYPES.approval,
    approvalPayloadBytes(request, key.keyId),
    key.secretKey,
    key.keyId,
  );
}
