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
import { toBase64 } from '../../../core/bytes.js';
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
