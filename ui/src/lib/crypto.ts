/**
 * Everything this device signs, with its WebCrypto Ed25519 key, over the exact bytes that
 * `core/` defines; the server verifies those bytes as they are.
 */
import { envelopeOf, pae, PAYLOAD_TYPES, type Envelope } from '../../../core/approval/dsse.js';
import {
  approvalPayloadBytes,
  deviceRecordBytes,
  loginPayloadBytes,
  type ApprovalRequest,
} from '../../../core/approval/payload.js';
import { agentProposalSeedText } from '../../../core/agents.js';
import { fromBase64, toBase64 } from '../../../core/bytes.js';
import type { DeviceRecord } from '../../../core/devices/records.js';
import { keyIdOf } from '../../../core/keys.js';
import type { StoredDevice } from './keystore.js';

export type { DeviceRecord };

/** Whether this browser can make Ed25519 keys at all (older Safari and Firefox cannot). */
export function hasWebCrypto(): boolean {
  return typeof crypto !== 'undefined' && typeof crypto.subtle !== 'undefined';
}

/** A fresh device key: the private half can sign but never be exported. */
export async function createDevice(name: string): Promise<StoredDevice> {
  const keyPair = (await crypto.subtle.generateKey({ name: 'Ed25519' }, false, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  const publicKey = new Uint8Array(await crypto.subtle.exportKey('raw', keyPair.publicKey));
  return {
    keyId: keyIdOf(publicKey),
    name,
    publicKey,
    keyPair,
    createdAt: new Date().toISOString(),
    status: 'active',
  };
}

export function publicKeyBase64(device: StoredDevice): string {
  return toBase64(device.publicKey);
}

async function signed(device: StoredDevice, payloadType: string, payload: Uint8Array): Promise<Envelope> {
  const message = pae(payloadType, payload);
  const signature = await crypto.subtle.sign('Ed25519', device.keyPair.privateKey, message as BufferSource);
  return envelopeOf(payloadType, payload, device.keyId, new Uint8Array(signature));
}

export function signLogin(device: StoredDevice, challenge: string, origin: string): Promise<Envelope> {
  return signed(device, PAYLOAD_TYPES.login, loginPayloadBytes({ challenge, keyId: device.keyId, origin }));
}

export function signRecord(device: StoredDevice, record: DeviceRecord): Promise<Envelope> {
  return signed(device, PAYLOAD_TYPES.device, deviceRecordBytes(record));
}

export function signApproval(device: StoredDevice, request: ApprovalRequest): Promise<Envelope> {
  return signed(device, PAYLOAD_TYPES.approval, approvalPayloadBytes(request, device.keyId));
}

/** PKCS #8 wrapping of a raw 32-byte Ed25519 seed (RFC 8410), so WebCrypto can import it. */
const ED25519_PKCS8_PREFIX = new Uint8Array([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);

/**
 * The public half of the key an agent signs its proposals with (core/agents.ts agentProposalKey),
 * derived here with WebCrypto from the token's secret, which never leaves this page.
 */
export async function agentProposalPublicKey(secret: string): Promise<Uint8Array> {
  const seed = new Uint8Array(
    await crypto.subtle.digest('SHA-256', new TextEncoder().encode(agentProposalSeedText(secret))),
  );
  const pkcs8 = new Uint8Array(ED25519_PKCS8_PREFIX.length + seed.length);
  pkcs8.set(ED25519_PKCS8_PREFIX);
  pkcs8.set(seed, ED25519_PKCS8_PREFIX.length);
  const key = await crypto.subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, true, ['sign']);
  const jwk = await crypto.subtle.exportKey('jwk', key);
  const x = (jwk.x ?? '').replace(/-/g, '+').replace(/_/g, '/');
  return fromBase64(x + '='.repeat((4 - (x.length % 4)) % 4));
}

/** `count` random bytes, base64url without padding. */
export function randomBase64url(count: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(count));
  return toBase64(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** 18 random bytes: the approval's one-time nonce. */
export function newNonce(): string {
  return randomBase64url(18);
}

/** What to tell a person when making the device key failed: an old browser, or the error itself. */
export function keyFailureText(error: unknown, otherwise: (error: unknown) => string): string {
  return error instanceof DOMException && error.name === 'NotSupportedError'
    ? 'This browser cannot make Ed25519 keys (WebCrypto). Use a current Chrome, Edge, Safari or Firefox.'
    : otherwise(error);
}
