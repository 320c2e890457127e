/**
 * Sessions and login challenges, kept in the API's memory: a restart only means each device
 * signs a fresh challenge (the web app does that on its own).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';

export interface Session {
  id: string;
  keyId: string;
  csrfToken: string;
  expiresAt: number;
}

const token = () => randomBytes(32).toString('base64url');

/** A bounded map that forgets its oldest entries first. */
class BoundedMap<V> extends Map<string, V> {
  constructor(private readonly limit: number) {
    super();
  }
  override set(key: string, value: V): this {
    if (this.size >= this.limit && !this.has(key)) this.delete(this.keys().next().value!);
    return super.set(key, value);
  }
}

export class SessionStore {
  private readonly sessions = new BoundedMap<Session>(10_000);

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  open(keyId: string): Session {
    const session = { id: token(), keyId, csrfToken: token(), expiresAt: this.now() + this.ttlMs };
    this.sessions.set(session.id, session);
    return session;
  }

  /** The live session for a cookie value, or why there is none. */
  find(id: string | undefined): Session | 'not_logged_in' | 'session_expired' {
    const session = id ? this.sessions.get(id) : undefined;
    if (!session) return 'not_logged_in';
    if (session.expiresAt <= this.now()) {
      this.sessions.delete(session.id);
      return 'session_expired';
    }
    return session;
  }

  close(id: string): void {
    this.sessions.delete(id);
  }
}

export function sameToken(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** One-time login challenges, each bound to the key that asked and valid for two minutes. */
export class ChallengeStore {
  private readonly challenges = new BoundedMap<{ keyId: string; expiresAt: number }>(10_000);

  constructor(private readonly now: () => number = Date.now) {}

  issue(keyId: string): { challenge: string; expiresAt: number } {
    const challenge = token();
    const expiresAt = this.now() + 120_000;
    this.challenges.set(challenge, { keyId, expiresAt });
    return { challenge, expiresAt };
  }

  /** Uses the challenge up; true only if it was issued to `keyId` and has not expired. */
  consume(challenge: string, keyId: string): boolean {
    const entry = this.challenges.get(challenge);
    this.challenges.delete(challenge);
    return !!entry && entry.keyId === keyId && entry.expiresAt > this.now();
  }
}
