/**
 * DSSE envelopes: the signed bytes travel as they are (base64), and the signature covers
 * PAE(payloadType, payload). Nothing is canonicalised after signing.
 */
import { concatBytes, fromBase64, toBase64, utf8ToBytes } from '../bytes.js';
import { sign, verify } from '../keys.js';

export interface Envelope {
  payloadType: string;
  /** Base64 of the exact payload bytes that were signed. */
  payload: string;
  signatures: [{ keyid: string; sig: string }];
}

export const PAYLOAD_TYPES = {
  approval: 'application/vnd.countersign.approval+json',
  device: 'application/vnd.countersign.device+json',
  login: 'application/vnd.countersign.login+json',
  proposal: 'application/vnd.countersign.proposal+json',
  result: 'application/vnd.countersign.result+json',
  close: 'application/vnd.countersign.close+json',
} as const;

/** DSSE v1 pre-authentication encoding. */
export function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  const type = utf8ToBytes(payloadType);
  return concatBytes(
    utf8ToBytes(`DSSEv1 ${type.length} `),
    type,
    utf8ToBytes(` ${payload.length} `),
    payload,
  );
}

export function signEnvelope(
  payloadType: string,
  payload: Uint8Array,
  secretKey: Uint8Array,
  keyId: string,
): Envelope {
  return envelopeOf(payloadType, payload, keyId, sign(pae(payloadType, payload), secretKey));
}

/** The envelope for a signature made elsewhere (a browser's non-extractable WebCrypto key signs `pae(…)`). */
export function envelopeOf(
  payloadType: string,
  payload: Uint8Array,
  keyId: string,
  signature: Uint8Array,
): Envelope {
  return {
    payloadType,
    payload: toBase64(payload),
    signatures: [{ keyid: keyId, sig: toBase64(signature) }],
  };
}

export interface OpenedEnvelope {
  payloadBytes: Uint8Array;
  keyId: string;
  signature: Uint8Array;
}

/** Checks the envelope's shape and decodes it. Returns a reason string when it is malformed. */
export function openEnvelope(value: unknown, expectedType: string): OpenedEnvelope | string {
  if (typeof value !== 'object' || value === null) return 'envelope is not an object';
  const env = value as Partial<Envelope>;
  const keys = Object.keys(env).sort().join(',');
  if (keys !== 'payload,payloadType,signatures')
    return `envelope has fields ${keys}; expected payload, payloadType, signatures`;
  if (env.payloadType !== expectedType)
    return `payloadType is ${JSON.stringify(env.payloadType)}; expected ${expectedType}`;
  if (typeof env.payload !== 'string' || env.payload.length > 64 * 1024)
    return 'payload must be base64 text up to 64 KiB';
  if (!Array.isArray(env.signatures) || env.signatures.length !== 1)
    return 'envelope must carry exactly one signature';
  const [entry] = env.signatures;
  if (typeof entry?.keyid !== 'string' || typeof entry.sig !== 'string')
    return 'signature entry needs keyid and sig strings';
  try {
    return { payloadBytes: fromBase64(env.payload), keyId: entry.keyid, signature: fromBase64(entry.sig) };
  } catch {
    return 'payload or signature is not valid base64';
  }
}

export function verifyEnvelopeSignature(
  opened: OpenedEnvelope,
  payloadType: string,
  publicKey: Uint8Array,
): boolean {
  return verify(opened.signature, pae(payloadType, opened.payloadBytes), publicKey);
}
