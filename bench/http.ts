/** A device's HTTP session with the API, for benchmarks: login by signed challenge, authenticated writes. */
import { PAYLOAD_TYPES, signEnvelope } from '../core/approval/dsse.js';
import { loginPayloadBytes } from '../core/approval/payload.js';
import type { KeyPair } from '../core/keys.js';
import { freePort } from '../test/support/ports.js';
import { WorkerProcess } from '../test/support/processes.js';
import { until, type BenchStack } from './harness.js';

export interface HttpSession {
  url: string;
  cookie: string;
  cookieValue: string;
  csrf: string;
}

export async function httpLogin(url: string, key: KeyPair): Promise<HttpSession> {
  const post = (path: string, body: unknown) =>
    fetch(`${url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const { challenge } = (await (await post('/api/session/challenge', { keyId: key.keyId })).json()) as {
    challenge: string;
  };
  const payload = loginPayloadBytes({ challenge, keyId: key.keyId, origin: url });
  const response = await post('/api/session', {
    envelope: signEnvelope(PAYLOAD_TYPES.login, payload, key.secretKey, key.keyId),
  });
  if (!response.ok) throw new Error(`login refused: ${await response.text()}`);
  const cookieValue = /cs_session=([^;]+)/.exec(response.headers.get('set-cookie') ?? '')?.[1] ?? '';
  const { csrfToken } = (await response.json()) as { csrfToken: string };
  return { url, cookie: `cs_session=${cookieValue}`, cookieValue, csrf: csrfToken };
}

export async function apiPost(session: HttpSession, path: string, body: unknown): Promise<Response> {
  return fetch(`${session.url}${path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      cookie: session.cookie,
      'x-countersign-csrf': session.csrf,
    },
    body: JSON.stringify(body),
  });
}

/** The API as its own process, started like `countersign up` starts it; the approval rate limit lifted (a bench approves faster than a person). */
export async function startApiProcess(stack: BenchStack): Promise<{ url: string; api: WorkerProcess }> {
  const port = await freePort();
  const api = new WorkerProcess('api', stack.config, stack.dir, {
    COUNTERSIGN_API_PORT: String(port),
    COUNTERSIGN_API_APPROVALS_PER_MINUTE: '100000',
  });
  await api.start();
  const url = `http://127.0.0.1:${port}`;
  await until(async () => ((await fetch(`${url}/api/health`)).ok ? true : undefined), 100);
  return { url, api };
}
