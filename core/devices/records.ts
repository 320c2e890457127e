/**
 * Device records: the signed history of who may approve. Root enrolment is self-signed,
 * introductions are signed by an existing device, revocations are signed too.
 */
import { z } from 'zod';
import { fromBase64, utf8Decode } from '../bytes.js';
import { deviceRecordBytes } from '../approval/payload.js';
import { PAYLOAD_TYPES, signEnvelope, type Envelope } from '../approval/dsse.js';
import type { KeyPair } from '../keys.js';
import { grantRecordSchema, grantRevocationSchema } from '../grants/schema.js';

/** People's devices (root, approver); the control worker's policy key; an executor host's result key. */
export type DeviceRole = 'root' | 'approver' | 'policy' | 'executor';

const publicKey = z.string().refine((s) => {
  try {
    return fromBase64(s).length === 32;
  } catch {
    return false;
  }
}, 'publicKey must be base64 of 32 bytes');
const name = z.string().min(1).max(100);
const isoTime = z
  .string()
  .max(40)
  .refine((s) => !Number.isNaN(Date.parse(s)), 'expected an ISO 8601 time');

export const deviceRecordSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('enroll-root'), publicKey, name, at: isoTime }).strict(),
  z
    .object({
      type: z.literal('introduce'),
      publicKey,
      name,
      role: z.enum(['approver', 'policy', 'executor']),
      at: isoTime,
    })
    .strict(),
  z
    .object({
      type: z.literal('revoke'),
      keyId: z.string().regex(/^[0-9a-f]{32}$/),
      reason: z.string().max(500),
      at: isoTime,
    })
    .strict(),
  // An agent token: the device made its secret and keeps only a hash here, so the registry's
  // history (readable by the server) can check a token but never mint one.
  z
    .object({
      type: z.literal('issue-agent'),
      agentId: z.string().regex(/^[0-9a-f]{16}$/),
      name,
      secretSha256: z.string().regex(/^[0-9a-f]{64}$/),
      // The public half of the key the token derives for signing proposals (core/agents.ts).
      // Tokens issued before signed proposals lack it: their plans match no grant.
      proposalKey: publicKey.optional(),
      at: isoTime,
    })
    .strict(),
  z
    .object({
      type: z.literal('revoke-agent'),
      agentId: z.string().regex(/^[0-9a-f]{16}$/),
      reason: z.string().max(500),
      at: isoTime,
    })
    .strict(),
  // Standing approvals (core/grants/grant.ts): signed by a person's device, revocable by any.
  grantRecordSchema,
  grantRevocationSchema,
]);
export type DeviceRecord = z.infer<typeof deviceRecordSchema>;

export function signDeviceRecord(record: DeviceRecord, signer: KeyPair): Envelope {
  return signEnvelope(PAYLOAD_TYPES.device, deviceRecordBytes(record), signer.secretKey, signer.keyId);
}

export function decodeDeviceRecord(payloadBytes: Uint8Array): DeviceRecord | string {
  let raw: unknown;
  try {
    raw = JSON.parse(utf8Decode(payloadBytes));
  } catch {
    return 'device record payload is not UTF-8 JSON';
  }
  const parsed = deviceRecordSchema.safeParse(raw);
  return parsed.success
    ? parsed.data
    : `device record is malformed: ${describeIssue(parsed.error.issues[0])}`;
}

function describeIssue(issue: z.core.$ZodIssue | undefined): string {
  if (!issue) return 'unknown';
  const path = issue.path.join('.');
  return path ? `${path}: ${issue.message}` : issue.message;
}
