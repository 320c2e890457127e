/** Checks a signed login: the right envelope type, a challenge this server issued, an allowed origin, a live device. */
import { openEnvelope, PAYLOAD_TYPES, verifyEnvelopeSignature } from '../../core/approval/dsse.js';
import type { LoginPayload } from '../../core/approval/payload.js';
import { utf8Decode } from '../../core/bytes.js';
import type { Device, DeviceRegistry } from '../../core/devices/registry.js';
import { ApiError } from '../errors.js';
import type { ChallengeStore } from './sessions.js';

const refuse = (code: string, message: string) => new ApiError(401, code, message);

function decodeLogin(bytes: Uint8Array): LoginPayload {
  let raw: unknown;
  try {
    raw = JSON.parse(utf8Decode(bytes));
  } catch {
    throw refuse('malformed_login', 'the login payload is not UTF-8 JSON');
  }
  const value = raw as Partial<LoginPayload> | null;
  const keys = value && typeof value === 'object' ? Object.keys(value).sort().join(',') : '';
  if (
    keys !== 'challenge,keyId,origin,type' ||
    value!.type !== 'login' ||
    typeof value!.challenge !== 'string' ||
    typeof value!.keyId !== 'string' ||
    typeof value!.origin !== 'string'
  )
    throw refuse('malformed_login', 'the login payload must be { type: "login", challenge, keyId, origin }');
  return value as LoginPayload;
}

export function verifyLogin(
  envelope: unknown,
  context: { challenges: ChallengeStore; registry: DeviceRegistry; allowedOrigins: readonly string[] },
): Device {
  const opened = openEnvelope(envelope, PAYLOAD_TYPES.login);
  if (typeof opened === 'string') throw refuse('malformed_login', opened);
  const payload = decodeLogin(opened.payloadBytes);
  if (payload.keyId !== opened.keyId)
    throw refuse('malformed_login', 'the login names one key and is signed by another');
  // Used up before anything else can fail, so a signature can never be tried twice.
  if (!context.challenges.consume(payload.challenge, payload.keyId))
    throw refuse('bad_challenge', 'the challenge is unknown, expired or already used: ask for a new one');
  if (!context.allowedOrigins.includes(payload.origin))
    throw refuse(
      'wrong_origin',
      `the login was signed for ${payload.origin}, which is not this server (${context.allowedOrigins[0]})`,
    );
  const device = context.registry.get(payload.keyId);
  if (!device) throw refuse('unknown_device', `key ${payload.keyId} is not a paired device`);
  // The signature first: only the key's holder learns whether it was revoked, and why.
  if (!verifyEnvelopeSignature(opened, PAYLOAD_TYPES.login, device.publicKey))
    throw refuse('bad_signature', 'the signature does not verify against that device key');
  if (device.revoked)
    throw refuse(
      'device_revoked',
      `this device was revoked at ${device.revoked.at}: ${device.revoked.reason}`,
    );
  if (device.role === 'policy' || device.role === 'executor')
    throw refuse('unknown_device', `the ${device.role} key cannot open a session`);
  return device;
}
