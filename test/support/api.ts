/**
 * The real API on a real stack: the Fastify app built as server.ts builds it, over the test
 * stack's Temporal namespace, and helpers that sign like a device does (login, approvals, device
 * records) with a Node key.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import { buildApp } from '../../api/app.js';
import { loadApiConfig, type ApiConfig } from '../../api/config.js';
import { ControlPlane } from '../../api/plugins/control-plane.js';
import { CSRF_HEADER, SESSION_COOKIE } from '../../api/plugins/auth.js';
import { PAYLOAD_TYPES, signEnvelope, type Envelope } from '../../core/approval/dsse.js';
import { approvalPayloadBytes, loginPayloadBytes } from '../../core/approval/payload.js';
import { stepDigest } from '../../core/plan/digest.js';
import type { PlanView } from '../../core/plan/state.js';
import type { KeyPair } from '../../core/keys.js';
import { PROJECT_ROOT } from '../../workers/config.js';
import type { TestStack } from './stack.js';

export interface ApiUnderTest {
  app: FastifyInstance;
  config: ApiConfig;
  close(): Promise<void>;
}

/** Builds the app over the stack's namespace; `client` replaces the stack's Temporal client (for fault cases). */
export async function startApi(
  stack: TestStack,
  env: Record<string, string> = {},
  client: Client = stack.client,
): Promise<ApiUnderTest> {
  const config = loadApiConfig({
    COUNTERSIGN_HOME: stack.config.home,
    TEMPORAL_ADDRESS: stack.config.temporalAddress,
    COUNTERSIGN_TEMPORAL_TLS_DIR: stack.config.temporalTlsDir ?? '',
    TEMPORAL_NAMESPACE: stack.config.namespace,
    COUNTERSIGN_API_PORT: '7780',
    ...env,
  });
  const app = await buildApp({ controlPlane: new ControlPlane(client, config) });
  await app.ready();
  return { app, config, close: () => app.close() };
}

export interface DeviceSession {
  cookie: string;
  csrf: string;
  /** Headers for a cookie-authenticated write. */
  writeHeaders: Record<string, string>;
}

export async function login(
  api: ApiUnderTest,
  key: KeyPair,
  origin = api.config.publicUrl,
): Promise<DeviceSession> {
  const challenge = await api.app.inject({
    method: 'POST',
    url: '/api/session/challenge',
    payload: { keyId: key.keyId },
  });
  if (challenge.statusCode !== 200) throw new Error(`challenge refused: ${challenge.body}`);
  const envelope = signEnvelope(
    PAYLOAD_TYPES.login,
    loginPayloadBytes({
      challenge: challenge.json<{ challenge: string }>().challenge,
      keyId: key.keyId,
      origin,
    }),
    key.secretKey,
    key.keyId,
  );
  const response = await api.app.inject({ method: 'POST', url: '/api/session', payload: { envelope } });
  if (response.statusCode !== 200) throw new Error(`login refused: ${response.body}`);
  return sessionFrom(response);
}

export function sessionFrom(response: LightMyRequestResponse): DeviceSession {
  const cookie = response.cookies.find((c) => c.name === SESSION_COOKIE);
  if (!cookie) throw new Error('no session cookie in the login response');
  const csrf = response.json<{ csrfToken: string }>().csrfToken;
  const header = `${SESSION_COOKIE}=${cookie.value}`;
  return { cookie: header, csrf, writeHeaders: { cookie: header, [CSRF_HEADER]: csrf } };
}

/** Signs a decision on `stepPath` of the plan as the API shows it, like the web app does. */
export function signDecision(
  view: PlanView,
  stepPath: string,
  key: KeyPair,
  decision: 'approve' | 'deny',
  options: { reason?: string; nowMs?: number; ttlMs?: number; stepDigest?: string } = {},
): Envelope {
  const step = view.steps.find((s) => s.path === stepPath);
  if (!step) throw new Error(`no step ${stepPath}`);
  const digest = options.stepDigest ?? stepDigest(step.node, view.workspaceId, view.egress, step.mcpPin);
  const bytes = approvalPayloadBytes(
    {
      workflowId: view.workflowId,
      runId: view.runId,
      stepPath,
      stepDigest: digest,
      decision,
      reason: options.reason,
      nowMs: options.nowMs ?? Date.now(),
      ttlMs: options.ttlMs,
      nonce: randomBytes(18).toString('base64url'),
    },
    key.keyId,
  );
  return signEnvelope(PAYLOAD_TYPES.approval, bytes, key.secretKey, key.keyId);
}

// ---- requests and replies ----

type Reply = LightMyRequestResponse;

/** A GET with the session's cookie (or none). */
export function get(api: ApiUnderTest, session: DeviceSession | undefined, url: string): Promise<Reply> {
  return api.app.inject({ method: 'GET', url, headers: session ? { cookie: session.cookie } : {} });
}

/** A JSON POST with the session's cookie and CSRF token (or none). */
export function post(
  api: ApiUnderTest,
  session: DeviceSession | undefined,
  url: string,
  payload?: unknown,
): Promise<Reply> {
  return api.app.inject({
    method: 'POST',
    url,
    headers: session?.writeHeaders ?? {},
    ...(payload === undefined ? {} : { payload: payload as object }),
  });
}

export interface ErrorReply {
  error: { code: string; message: string; issues?: { path: string; message: string }[] };
}

/** Asserts an error reply: its status, its stable code, and (when given) what its message says. */
export function expectError(
  reply: Reply,
  status: number,
  code: string,
  message?: string | RegExp,
): ErrorReply {
  expect(reply.statusCode, reply.body).toBe(status);
  const body = reply.json<ErrorReply>();
  expect(body.error.code, reply.body).toBe(code);
  expect(typeof body.error.message).toBe('string');
  if (message !== undefined) expect(body.error.message).toMatch(message);
  return body;
}

/** The routes of api/README.md's table, as written there (`GET /api/plans/:plan`), with their auth column. */
export function documentedRoutes(): { method: string; path: string; auth: string }[] {
  const text = readFileSync(join(PROJECT_ROOT, 'api', 'README.md'), 'utf8');
  const rows: { method: string; path: string; auth: string }[] = [];
  for (const line of text.split('\n')) {
    const match = /^\|\s*`(GET|POST|DELETE|PUT|PATCH) ([^`?]+)[^`]*`\s*\|([^|]*)\|/.exec(line);
    if (match) rows.push({ method: match[1]!, path: match[2]!, auth: match[3]!.trim() });
  }
  return rows;
}

// ---- server-sent events ----

export interface ServerEvent {
  event: string;
  data: unknown;
}

/** An open `GET /api/events` stream on a listening server, parsed as events arrive. */
export class EventReader {
  readonly events: ServerEvent[] = [];
  /** Settles when the server ends the stream (or it is closed here). */
  readonly ended: Promise<void>;

  constructor(
    response: Response,
    private readonly aborter: AbortController,
  ) {
    const body = response.body!.pipeThrough(new TextDecoderStream());
    this.ended = (async () => {
      let buffer = '';
      try {
        for await (const chunk of body) {
          buffer += chunk;
          let cut: number;
          while ((cut = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            const event = /^event: (.*)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (event && data !== undefined) this.events.push({ event, data: JSON.parse(data) });
          }
        }
      } catch {
        // aborted here
      }
    })();
  }

  /** The first event named `event` at index `after` or later that satisfies `predicate`. */
  async waitFor<T>(
    event: string,
    predicate: (data: T) => boolean = () => true,
    { after = 0, timeoutMs = 20_000 }: { after?: number; timeoutMs?: number } = {},
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.slice(after).find((e) => e.event === event && predicate(e.data as T));
      if (found) return found.data as T;
      if (Date.now() > deadline)
        throw new Error(
          `no "${event}" event in ${timeoutMs} ms; got: ${this.events.map((e) => e.event).join(', ')}`,
        );
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  close(): void {
    this.aborter.abort();
  }
}

/** Opens the event stream with the cookie; a refusal comes back as its status and JSON body. */
export async function openEvents(
  baseUrl: string,
  cookie: string | undefined,
  query = '',
): Promise<{ status: number; reader?: EventReader; body?: unknown }> {
  const aborter = new AbortController();
  const response = await fetch(`${baseUrl}/api/events${query}`, {
    headers: cookie ? { cookie } : {},
    signal: aborter.signal,
  });
  if (response.status !== 200) return { status: response.status, body: await response.json() };
  return { status: 200, reader: new EventReader(response, aborter) };
}
