/** Ed25519 keys: generation (outside workflows), signing, strict verification, key ids. */
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256Hex } from './bytes.js';

export interface KeyPair {
  secretKey: Uint8Array;
  publicKey: Uint8Array;
  keyId: string;
}

/** A key id is the first 128 bits of SHA-256 over the raw 32-byte public key, in hex. */
export function keyIdOf(publicKey: Uint8Array): string {
  return sha256Hex(publicKey).slice(0, 32);
}

export function generateKeyPair(): KeyPair {
  return keyPairFromSecret(ed25519.utils.randomSecretKey());
}

export function keyPairFromSecret(secretKey: Uint8Array): KeyPair {
  const publicKey = ed25519.getPublicKey(secretKey);
  return { secretKey, publicKey, keyId: keyIdOf(publicKey) };
}

export function sign(message: Uint8Array, secretKey: Uint8Array): Uint8Array {
  return ed25519.sign(message, secretKey);
}

/** RFC 8032 strict verification (no ZIP-215 leniency), so a signature has exactly one valid encoding. */
export function verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== 64 || publicKey.length !== 32) return false;
  try {
    return ed25519.verify(signature, message, publicKey, { zip215: false });
  } catch {
    return false;
  }
}

/** What two people compare when one device introduces another: the key id's first 16 hex digits, in fours. */
export function fingerprintOf(keyId: string): string {
  return (keyId.slice(0, 16).match(/.{1,4}/g) ?? []).join(' ');
}
