/**
 * The real API on a real stack: the Fastify app built as server.ts builds it, over the test
 * stack's Temporal namespace, and helpers that sign like a device does (login, approvals, device
 * records) with a Node key.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApp } from '../../api/app.js';
import { loadApiConfig, type ApiConfig } from '../../api/config.js';
import { ControlPlane } from '../../api/plugins/control-plane.js';
import { CSRF_HEADER, SESSION_COOKIE } from '../../api/plugins/auth.js';
import { PAYLOAD_TYPES, signEnvelope, type Envelope } from '../../core/approval/dsse.js';
import { approvalPayloadBytes, loginPayloadBytes } from '../../core/approval/payload.js';
import { stepDigest } from '../../core/plan/digest.js';
import type { PlanView } from '../../core/plan/state.js';
import type { KeyPair } from '../../core/keys.js';
import type { TestStack } from './stack.js';

export interface ApiUnderTest {
  app: FastifyInstance;
  config: ApiConfig;
  close(): Promise<void>;
}

export async function startApi(stack: TestStack, env: Record<string, string> = {}): Promise<ApiUnderTest> {
  const config = loadApiConfig({
    COUNTERSIGN_HOME: stack.config.home,
    TEMPORAL_ADDRESS: stack.config.temporalAddress,
    TEMPORAL_NAMESPACE: stack.config.namespace,
    COUNTERSIGN_API_PORT: '7780',
    ...env,
  });
  const app = await buildApp({ controlPlane: new ControlPlane(stack.client, config) });
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
  options: { reason?: string; nowMs?: number; ttlMs?: number } = {},
): Envelope {
  const step = view.steps.find((s) => s.path === stepPath);
  if (!step) throw new Error(`no step ${stepPath}`);
  const digest = stepDigest(step.node, view.workspaceId, view.egress, step.mcpPin);
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
