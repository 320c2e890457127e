import { sha256Hex } from '../bytes.js';

/** Codes are shown as XXXX-XXXX; people may type them with or without the dash, in any case. */
export function normalizePairingCode(code: string): string {
  return code.replace(/[^A-Za-z0-9]/g, '').toUpperCase();
}

export function pairingCodeHash(code: string): string {
  return sha256Hex(`countersign/pairing/v1\n${normalizePairingCode(code)}`);
}
