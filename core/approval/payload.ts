/**
 * The bytes a device signs, built without any validation library so the web app can import
 * them: approvals, device records and session logins. Verification lives in approval.ts,
 * records.ts and login.ts.
 */
import { utf8ToBytes } from '../bytes.js';
import type { DeviceRecord } from '../devices/records.js';
import type { ApprovalPayload } from './approval.js';

export interface ApprovalRequest {
  workflowId: string;
  runId: string;
  stepPath: string;
  stepDigest: string;
  decision: 'approve' | 'deny';
  reason?: string;
  nowMs: number;
  ttlMs?: number;
  nonce: string;
  /** Only the policy key's approvals: the standing approval it applies (its record's id and signature), and which use. */
  grant?: { id: string; sig: string } | undefined;
  use?: number | undefined;
}

/** The payload a device signs for `request`. */
export function approvalPayload(request: ApprovalRequest, keyId: string): ApprovalPayload {
  return {
    workflowId: request.workflowId,
    runId: request.runId,
    stepPath: request.stepPath,
    stepDigest: request.stepDigest,
    decision: request.decision,
    reason: request.reason ?? '',
    issuedAt: new Date(request.nowMs).toISOString(),
    expiresAt: new Date(request.nowMs + (request.ttlMs ?? 15 * 60_000)).toISOString(),
    nonce: request.nonce,
    keyId,
    // Only when applying a grant: a person's approval keeps exactly the fields it always had.
    ...(request.grant ? { grant: { id: request.grant.id, sig: request.grant.sig } } : {}),
    ...(request.use !== undefined ? { use: request.use } : {}),
  };
}

export function approvalPayloadBytes(request: ApprovalRequest, keyId: string): Uint8Array {
  return utf8ToBytes(JSON.stringify(approvalPayload(request, keyId)));
}

export function deviceRecordBytes(record: DeviceRecord): Uint8Array {
  return utf8ToBytes(JSON.stringify(record));
}

/**
 * What a device signs to open a session: the server's one-time challenge, bound to the key and
 * to the origin the device believes it talks to (a phishing origin gets a useless signature).
 */
export interface LoginPayload {
  type: 'login';
  challenge: string;
  keyId: string;
  origin: string;
}

export function loginPayloadBytes(payload: Omit<LoginPayload, 'type'>): Uint8Array {
  const ordered: LoginPayload = {
    type: 'login',
    challenge: payload.challenge,
    keyId: payload.keyId,
    origin: payload.origin,
  };
  return utf8ToBytes(JSON.stringify(ordered));
}
