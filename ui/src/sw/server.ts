/**
 * The worker's own way to the API: the app's HTTP client (same origin, the CSRF token on writes,
 * one re-login when a session lapses) with a small session of its own, opened by signing the
 * server's challenge with this device's key, as the app does.
 */
import { Api, ApiError } from '../lib/api.js';
import { signLogin } from '../lib/crypto.js';
import type { StoredDevice } from '../lib/keystore.js';
import type { SessionBody } from '../lib/types.js';
import { sw } from './scope.js';

export const server = new Api();

let signer: StoredDevice | undefined;

server.setHooks({
  relogin: () =>
    signer
      ? login(signer).then(
          () => true,
          () => false,
        )
      : Promise.resolve(false),
  revoked: () => undefined,
});

/** A session and its CSRF token: the one the app's cookie holds when it is still good, else a new one. */
export async function openSession(device: StoredDevice): Promise<void> {
  signer = device;
  try {
    server.csrfToken = (await server.request<SessionBody>('GET', '/api/session', undefined, true)).csrfToken;
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 401 || e.code === 'device_revoked') throw e;
    await login(device);
  }
}

async function login(device: StoredDevice): Promise<void> {
  const { challenge } = await server.request<{ challenge: string }>(
    'POST',
    '/api/session/challenge',
    { keyId: device.keyId },
    true,
  );
  const envelope = await signLogin(device, challenge, sw.location.origin);
  server.csrfToken = (
    await server.request<SessionBody>('POST', '/api/session', { envelope }, true)
  ).csrfToken;
}

/** The server could not be asked at all (offline, down, a gateway with no answer). */
export function unreachable(error: unknown): boolean {
  return error instanceof ApiError && (error.offline || [502, 503, 504].includes(error.status));
}
