/**
 * Invitations: how a further device joins. An active device asks for a one-time code, the new
 * device sends its public key with that code, and the inviting device, after people compare the
 * fingerprints on both screens, signs the introduction. The server only relays: it cannot
 * introduce a key by itself.
 */
import { randomInt } from 'node:crypto';
import { fingerprintOf } from '../../core/keys.js';
import type { PairingRequest } from '../types.js';

const ALPHABET = 'ABCDEFGHJKMNPQRSTVWXYZ23456789';
const TTL_MS = 10 * 60_000;
const MAX_REQUESTS = 5;

interface Invitation {
  code: string;
  invitedBy: string;
  expiresAt: number;
  requests: PairingRequest[];
}

export class InvitationStore {
  private readonly invitations = new Map<string, Invitation>();

  constructor(private readonly now: () => number = Date.now) {}

  open(invitedBy: string): Invitation {
    this.sweep();
    const raw = Array.from({ length: 8 }, () => ALPHABET[randomInt(ALPHABET.length)]).join('');
    const invitation = {
      code: `${raw.slice(0, 4)}-${raw.slice(4)}`,
      invitedBy,
      expiresAt: this.now() + TTL_MS,
      requests: [],
    };
    this.invitations.set(invitation.code, invitation);
    return invitation;
  }

  /** The invitation for a code a person typed (any case, with or without the dash), if still open. */
  find(code: string): Invitation | undefined {
    this.sweep();
    const normal = code.replace(/[^A-Za-z0-9]/g, '').toUpperCase();
    return this.invitations.get(`${normal.slice(0, 4)}-${normal.slice(4)}`);
  }

  /** Adds a request; a string says why it was not added. */
  request(code: string, request: Omit<PairingRequest, 'fingerprint' | 'requestedAt'>): Invitation | string {
    const invitation = this.find(code);
    if (!invitation) return 'no open invitation has this code: ask the inviting device for a new one';
    const existing = invitation.requests.find((r) => r.keyId === request.keyId);
    if (existing) return invitation;
    if (invitation.requests.length >= MAX_REQUESTS)
      return 'this invitation already has its maximum of requests: ask for a new one';
    invitation.requests.push({
      ...request,
      fingerprint: fingerprintOf(request.keyId),
      requestedAt: new Date(this.now()).toISOString(),
    });
    return invitation;
  }

  /** Closes the invitation that asked for this key, once it was introduced: a code serves one device. */
  closeFor(publicKey: string): void {
    for (const [code, invitation] of this.invitations)
      if (invitation.requests.some((r) => r.publicKey === publicKey)) this.invitations.delete(code);
  }

  /** The open invitation holding a request from this key, if any. */
  requestOf(keyId: string): Invitation | undefined {
    this.sweep();
    for (const invitation of this.invitations.values())
      if (invitation.requests.some((r) => r.keyId === keyId)) return invitation;
    return undefined;
  }

  private sweep(): void {
    for (const [code, invitation] of this.invitations)
      if (invitation.expiresAt <= this.now()) this.invitations.delete(code);
  }
}
