/**
 * The API's edges on a real stack that starts unpaired: pairing the root through the API, then
 * what every route refuses — unknown fields and wrong types, missing or foreign sessions, writes
 * without the session's CSRF token, oversized or non-JSON bodies, bursts past the rate limits —
 * and 5xx replies that say nothing about the internals when Temporal really fails.
 */
import { readFile } from 'node:fs/promises';
import { Client } from '@temporalio/client';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectTemporal } from '../services/temporal/connection.js';
import { PAYLOAD_TYPES, signEnvelope, type Envelope } from '../core/approval/dsse.js';
import { loginPayloadBytes } from '../core/approval/payload.js';
import { toBase64 } from '../core/bytes.js';
import { signDeviceRecord } from '../core/devices/records.js';
import { generateKeyPair } from '../core/keys.js';
import { listPlans } from '../services/plans.js';
import { openLocalPairing } from '../services/devices.js';
import { readKeyFile } from '../workers/key-file.js';
import {
  documentedRoutes,
  expectError,
  get,
  login,
  post,
  signDecision,
  startApi,
  type ApiUnderTest,
  type DeviceSession,
  type ErrorReply,
} from './support/api.js';
import { waitForStep } from './support/plans.js';
import { startTestStack, type TestStack } from './support/stack.js';

let stack: TestStack;
let api: ApiUnderTest;
const extraApps: ApiUnderTest[] = [];

beforeAll(async () => {
  stack = await startTestStack('api-security', { pair: false });
  api = await startApi(stack);
});
afterAll(async () => {
  for (const app of extraApps) await app.close();
  await api?.close();
  await stack?.close();
});

/** Another app over the same stack: its own sessions and rate-limit counters. */
async function freshApi(client?: Client): Promise<ApiUnderTest> {
  const app = await startApi(stack, {}, client);
  extraApps.push(app);
  return app;
}

const enrollment = (key = stack.root) =>
  signDeviceRecord(
    { type: 'enroll-root', publicKey: toBase64(key.publicKey), name: key.name, at: new Date().toISOString() },
    key,
  );

const plansNamed = async (name: string) =>
  (await listPlans(stack.client, { limit: 1000 })).filter((p) => p.name === name).length;

// ---------------------------------------------------------------------------------------------

describe('pairing the root device', () => {
  let code: string;
  let policyPublicKey: string;
  let executorPublicKey: string;

  it('says unpaired and closed until the CLI opens pairing, then offers the policy key', async () => {
    const closed = await get(api, undefined, '/api/pairing');
    expect(closed.statusCode, closed.body).toBe(200);
    expect(closed.json()).toEqual({
      rootPaired: false,
      pairingOpen: false,
      policyPublicKey: null,
      executorPublicKey: null,
    });

    code = (await openLocalPairing(stack.client, stack.paths))!;
    const policy = (await readKeyFile(stack.paths.policyKey))!;
    const executor = (await readKeyFile(stack.paths.executorKey))!;
    const open = await get(api, undefined, '/api/pairing');
    expect(open.json()).toEqual({
      rootPaired: false,
      pairingOpen: true,
      policyPublicKey: toBase64(policy.publicKey),
      executorPublicKey: toBase64(executor.publicKey),
    });
    ({ policyPublicKey, executorPublicKey } = open.json<{
      policyPublicKey: string;
      executorPublicKey: string;
    }>());
    // No device exists yet: nobody can log in.
    await expect(login(api, stack.root)).rejects.toThrow(/unknown_device/);
  });

  it('refuses a wrong pairing code and stays unpaired', async () => {
    const reply = await post(api, undefined, '/api/pairing/root', {
      code: 'AAAA-AAAA',
      enrollment: enrollment(),
    });
    expectError(reply, 403, 'not_allowed', /wrong pairing code/);
    expect((await get(api, undefined, '/api/pairing')).json()).toMatchObject({
      rootPaired: false,
      pairingOpen: true,
    });
  });

  it('pairs the root with the one-time code: 201, the policy and executor keys are introduced, the executor pin holds the root', async () => {
    const introduction = (publicKey: string, name: string, role: 'policy' | 'executor') =>
      signDeviceRecord(
        { type: 'introduce', publicKey, name, role, at: new Date().toISOString() },
        stack.root,
      );
    const reply = await post(api, undefined, '/api/pairing/root', {
      code: code.toLowerCase(),
      enrollment: enrollment(),
      policyIntroduction: introduction(policyPublicKey, 'policy (applies standing approvals)', 'policy'),
      executorIntroduction: introduction(executorPublicKey, 'executor (signs what ran)', 'executor'),
    });
    expect(reply.statusCode, reply.body).toBe(201);
    expect(reply.json()).toEqual({ device: { keyId: stack.root.keyId, name: 'test phone', role: 'root' } });
    expect((await readFile(stack.paths.pinnedRoot, 'utf8')).trim()).toBe(stack.root.keyId);
    expect((await get(api, undefined, '/api/pairing')).json()).toEqual({
      rootPaired: true,
      pairingOpen: false,
      policyPublicKey: null,
      executorPublicKey: null,
    });
    const session = await login(api, stack.root);
    const devices = await get(api, session, '/api/devices');
    expect(devices.json()).toMatchObject({
      rootKeyId: stack.root.keyId,
      devices: [
        { keyId: stack.root.keyId, role: 'root' },
        { role: 'policy', introducedBy: stack.root.keyId },
        { role: 'executor', introducedBy: stack.root.keyId },
      ],
    });
  });

  it('refuses a second root with 409, and the first stays root', async () => {
    const usurper = { ...generateKeyPair(), name: 'usurper' };
    const reply = await post(api, undefined, '/api/pairing/root', { code, enrollment: enrollment(usurper) });
    expectError(reply, 409, 'already_paired', /already paired/);
    expect((await readFile(stack.paths.pinnedRoot, 'utf8')).trim()).toBe(stack.root.keyId);
    await expect(login(api, usurper)).rejects.toThrow(/unknown_device/);
  });
});

// ---------------------------------------------------------------------------------------------

describe('once paired', () => {
  let root: DeviceSession;
  /** A plan waiting at its gate: the target of refused writes, which must leave it waiting. */
  let waiting: string;
  let envelope: Envelope;

  beforeAll(async () => {
    root = await login(api, stack.root);
    const reply = await post(api, root, '/api/plans', {
      plan: { name: 'kept waiting', steps: [{ id: 'hi', run: 'echo hi' }] },
    });
    waiting = reply.json<{ workflowId: string }>().workflowId;
    const view = await waitForStep(stack.client, waiting, 'hi', 'awaiting_approval');
    envelope = signDecision(view, 'hi', stack.root, 'approve');
  });

  async function stillWaiting() {
    const view = await waitForStep(stack.client, waiting, 'hi', 'awaiting_approval', 2_000);
    expect(view.steps[0]!.approvals).toEqual([]);
  }

  describe('schemas', () => {
    /** Each case: a request that a schema must refuse, and a pattern its message must match (the field). */
    const invalidRequest = async (reply: LightMyRequestResponse, field: RegExp) =>
      expectError(reply, 400, 'invalid_request', field);

    it('refuses unknown fields on every route with a body, naming the field', async () => {
      const key = generateKeyPair();
      const bodies: [string, object, RegExp][] = [
        ['/api/pairing/root', { code: 'AAAA-AAAA', enrollment: enrollment(), admin: true }, /"admin"/],
        [
          '/api/pairing/requests',
          { code: 'AAAA-AAAA', name: 'x', publicKey: toBase64(key.publicKey), role: 'root' },
          /"role"/,
        ],
        ['/api/session/challenge', { keyId: stack.root.keyId, origin: 'https://evil.example' }, /"origin"/],
        ['/api/session', { envelope, remember: true }, /"remember"/],
        ['/api/devices/records', { record: enrollment(), force: true }, /"force"/],
        [`/api/plans/${waiting}/approvals`, { envelope, deviceRecords: [] }, /"deviceRecords"/],
        // nested: the envelope schema is closed too
        [
          `/api/plans/${waiting}/approvals`,
          { envelope: { ...envelope, note: 'hi' } },
          /body\/envelope.*"note"/,
        ],
        [
          `/api/plans/${waiting}/approvals`,
          { envelope: { ...envelope, signatures: [{ ...envelope.signatures[0], extra: 1 }] } },
          /"extra"/,
        ],
      ];
      for (const [url, body, field] of bodies) await invalidRequest(await post(api, root, url, body), field);
      await stillWaiting();
    });

    it('POST /api/plans (a plan or a YAML text) refuses unknown fields and wrong types, naming the field', async () => {
      const bodies: [object, RegExp][] = [
        [{ yaml: 'name: x', proposer: 'mallory' }, /"proposer"/],
        [{ plan: { name: 'x' }, proposer: 'mallory' }, /"proposer"/],
        [{ yaml: 1 }, /body\/yaml must be string/],
        [{ plan: 'name: x' }, /body\/plan must be object/],
      ];
      const seen: { body: object; status: number; code: string; message: string }[] = [];
      for (const [body] of bodies) {
        const reply = await post(api, root, '/api/plans', body);
        seen.push({ body, status: reply.statusCode, ...reply.json<ErrorReply>().error });
      }
      // Refused, all of them, and nothing started.
      expect(seen.map((s) => [s.status, s.code])).toEqual(bodies.map(() => [400, 'invalid_request']));
      expect(await plansNamed('x')).toBe(0);
      // Each message names what was wrong.
      expect(seen.map((s) => s.message)).toEqual(bodies.map(([, field]) => expect.stringMatching(field)));
    });

    it('refuses wrong types on every route with a body, naming the field', async () => {
      const bodies: [string, object, RegExp][] = [
        ['/api/pairing/root', { code: 1, enrollment: enrollment() }, /body\/code must be string/],
        ['/api/pairing/root', { code: 'AAAA-AAAA', enrollment: 'x' }, /body\/enrollment must be object/],
        [
          '/api/pairing/requests',
          { code: 'AAAA-AAAA', name: 5, publicKey: 'x' },
          /body\/name must be string/,
        ],
        ['/api/session/challenge', { keyId: 5 }, /body\/keyId must be string/],
        ['/api/session/challenge', { keyId: 'not-hex' }, /body\/keyId must match pattern/],
        ['/api/session', { envelope: 'x' }, /body\/envelope must be object/],
        ['/api/devices/records', { record: ['x'] }, /body\/record must be object/],
        [`/api/plans/${waiting}/approvals`, { envelope: 'x' }, /body\/envelope must be object/],
        [
          `/api/plans/${waiting}/approvals`,
          { envelope: { ...envelope, signatures: [] } },
          /body\/envelope\/signatures must NOT have fewer than 1 items/,
        ],
        ['/api/session', {}, /must have required property 'envelope'/],
      ];
      for (const [url, body, field] of bodies) await invalidRequest(await post(api, root, url, body), field);
      await stillWaiting();
    });

    it('refuses bad query strings and path parameters', async () => {
      const urls: [string, RegExp][] = [
        ['/api/plans?limit=abc', /querystring\/limit must match pattern/],
        ['/api/plans?limit=0', /querystring\/limit/],
        ['/api/plans?limit=5000', /querystring\/limit/],
        ['/api/plans?filter=bogus', /querystring\/filter/],
        ['/api/plans?sort=name', /"sort"/],
        ['/api/events?plan=..%2F..%2Fetc', /querystring\/plan must match pattern/],
        ['/api/events?since=0', /"since"/],
        ['/api/plans/bad%20id', /params\/plan must match pattern/],
        ['/api/plans/a%24b/history', /params\/plan/],
        ['/api/pairing/requests/NOT-A-KEY', /params\/keyId must match pattern/],
        [`/api/devices/invitations/${'A'.repeat(40)}`, /params\/code/],
      ];
      for (const [url, message] of urls) await invalidRequest(await get(api, root, url), message);
    });
  });

  describe('sessions', () => {
    const cookieRoutes = documentedRoutes().filter((r) => r.auth.startsWith('cookie'));
    const fill = (path: string) => path.replace(':plan', waiting).replace(':code', 'ABCD-EFGH');
    const call = (method: string, path: string, headers: Record<string, string>) =>
      api.app.inject({
        method: method as 'GET',
        url: fill(path),
        headers,
        ...(method === 'POST' ? { payload: { envelope } } : {}),
      });

    it('documents every route it serves, and the README lists each protected one', () => {
      const routes = documentedRoutes();
      expect(routes.length).toBeGreaterThanOrEqual(22);
      for (const { method, path } of routes)
        expect(api.app.hasRoute({ method: method as 'GET', url: path }), `${method} ${path}`).toBe(true);
      expect(cookieRoutes.map((r) => `${r.method} ${r.path}`)).toEqual(
        expect.arrayContaining([
          'POST /api/plans/:plan/approvals',
          'POST /api/devices/records',
          'GET /api/plans/:plan/audit',
          'GET /api/events',
        ]),
      );
    });

    it('refuses every protected route without a session: 401 not_logged_in, nothing changes', async () => {
      const seen: string[] = [];
      for (const { method, path } of cookieRoutes) {
        const reply = await call(method, path, {});
        expectError(reply, 401, 'not_logged_in');
        seen.push(`${method} ${path}`);
      }
      expect(seen).toHaveLength(cookieRoutes.length);
      await stillWaiting();
      expect((await stack.client.workflow.getHandle(waiting).describe()).status.name).toBe('RUNNING');
    });

    it('refuses a forged cookie, and the cookie of a session that was closed', async () => {
      for (const value of ['forged', 'A'.repeat(43), root.cookie.split('=')[1]!.slice(0, -1) + 'x'])
        for (const { method, path } of cookieRoutes)
          expectError(
            await call(method, path, { cookie: `cs_session=${value}`, 'x-countersign-csrf': root.csrf }),
            401,
            'not_logged_in',
          );

      const other = await login(api, stack.root);
      const out = await api.app.inject({
        method: 'DELETE',
        url: '/api/session',
        headers: other.writeHeaders,
      });
      expect(out.statusCode).toBe(204);
      for (const { method, path } of cookieRoutes)
        expectError(await call(method, path, other.writeHeaders), 401, 'not_logged_in');
      // Closing one session leaves the device's other sessions open.
      expect((await get(api, root, '/api/session')).statusCode).toBe(200);
      await stillWaiting();
    });

    it('serves the public routes without a session', async () => {
      const publicRoutes = documentedRoutes().filter((r) => !r.auth.startsWith('cookie'));
      expect(publicRoutes.map((r) => r.path)).toEqual(
        expect.arrayContaining(['/api/health', '/api/pairing', '/api/session/challenge', '/api/session']),
      );
      expect((await get(api, undefined, '/api/health')).json()).toEqual({ ok: true });
      expect((await get(api, undefined, '/api/pairing')).statusCode).toBe(200);
    });
  });

  describe('CSRF', () => {
    it('refuses cookie-authenticated writes without the token: 403 csrf_token_missing, nothing changes', async () => {
      const cookieOnly = { cookie: root.cookie };
      expectError(
        await api.app.inject({
          method: 'POST',
          url: `/api/plans/${waiting}/approvals`,
          headers: cookieOnly,
          payload: { envelope },
        }),
        403,
        'csrf_token_missing',
        /x-countersign-csrf/,
      );
      expectError(
        await api.app.inject({ method: 'POST', url: `/api/plans/${waiting}/cancel`, headers: cookieOnly }),
        403,
        'csrf_token_missing',
      );
      expectError(
        await api.app.inject({
          method: 'POST',
          url: '/api/plans',
          headers: { ...cookieOnly, 'x-countersign-csrf': '' },
          payload: { yaml: 'name: csrf victim\nsteps:\n  - { id: a, run: echo a }\n' },
        }),
        403,
        'csrf_token_missing',
      );
      expectError(
        await api.app.inject({ method: 'DELETE', url: '/api/session', headers: cookieOnly }),
        403,
        'csrf_token_missing',
      );
      expect((await get(api, root, '/api/session')).statusCode).toBe(200);
      await stillWaiting();
      expect((await stack.client.workflow.getHandle(waiting).describe()).status.name).toBe('RUNNING');
      expect(await plansNamed('csrf victim')).toBe(0);
    });

    it("refuses a wrong token and another session's token: 403 csrf_token_wrong", async () => {
      const other = await login(api, stack.root);
      for (const token of ['wrong', other.csrf, root.csrf.toUpperCase(), `${root.csrf}x`]) {
        const reply = await api.app.inject({
          method: 'POST',
          url: `/api/plans/${waiting}/approvals`,
          headers: { cookie: root.cookie, 'x-countersign-csrf': token },
          payload: { envelope },
        });
        expectError(reply, 403, 'csrf_token_wrong');
      }
      expectError(
        await api.app.inject({
          method: 'POST',
          url: `/api/plans/${waiting}/cancel`,
          headers: { cookie: other.cookie, 'x-countersign-csrf': root.csrf },
        }),
        403,
        'csrf_token_wrong',
      );
      await stillWaiting();
    });
  });

  describe('bodies', () => {
    it('refuses a body over 64 KiB with 413 body_too_large, with or without a session', async () => {
      const big = { yaml: `name: too big\n# ${'x'.repeat(70 * 1024)}\nsteps: []\n` };
      expectError(await post(api, root, '/api/plans', big), 413, 'body_too_large', /64 KiB/);
      expectError(
        await post(api, undefined, '/api/session', {
          envelope: { ...envelope, payload: 'A'.repeat(66 * 1024) },
        }),
        413,
        'body_too_large',
      );
      expect(await plansNamed('too big')).toBe(0);
      // Under the body limit, over the plan text's own limit: a schema refusal.
      const under = { yaml: `name: too big\n# ${'x'.repeat(61 * 1024)}\n` };
      expectError(await post(api, root, '/api/plans', under), 400, 'invalid_request');
      expect(await plansNamed('too big')).toBe(0);
    });

    it('refuses invalid JSON with 400 invalid_json', async () => {
      for (const payload of ['{"keyId":', '{keyId: 1}', ''])
        expectError(
          await api.app.inject({
            method: 'POST',
            url: '/api/session/challenge',
            headers: { 'content-type': 'application/json' },
            payload,
          }),
          400,
          'invalid_json',
        );
      expectError(
        await api.app.inject({
          method: 'POST',
          url: `/api/plans/${waiting}/approvals`,
          headers: { ...root.writeHeaders, 'content-type': 'application/json' },
          payload: `{"envelope": ${JSON.stringify(envelope).slice(0, -2)}`,
        }),
        400,
        'invalid_json',
      );
      await stillWaiting();
    });

    it('refuses bodies that are not JSON (forms, text, XML), nothing changes', async () => {
      const asForm = await api.app.inject({
        method: 'POST',
        url: '/api/plans',
        headers: { ...root.writeHeaders, 'content-type': 'application/x-www-form-urlencoded' },
        payload: 'yaml=name%3A+form+post',
      });
      expectError(asForm, 415, 'unsupported_media_type', /application\/json/);
      const asXml = await api.app.inject({
        method: 'POST',
        url: '/api/session/challenge',
        headers: { 'content-type': 'application/xml' },
        payload: `<keyId>${stack.root.keyId}</keyId>`,
      });
      expectError(asXml, 415, 'unsupported_media_type');
      await stillWaiting();
      expect(await plansNamed('form post')).toBe(0);
    });

    it('refuses text/plain (the type a cross-site page may send without a preflight) as not JSON: 415', async () => {
      const asText = await api.app.inject({
        method: 'POST',
        url: `/api/plans/${waiting}/approvals`,
        headers: { ...root.writeHeaders, 'content-type': 'text/plain' },
        payload: JSON.stringify({ envelope }),
      });
      expect(asText.statusCode, asText.body).toBeGreaterThanOrEqual(400);
      await stillWaiting();
      expectError(asText, 415, 'unsupported_media_type');
    });
  });

  describe('rate limits', () => {
    /** Sends `count` requests one after another and returns their statuses. */
    async function burst(
      count: number,
      send: () => Promise<LightMyRequestResponse>,
    ): Promise<LightMyRequestResponse[]> {
      const replies: LightMyRequestResponse[] = [];
      for (let i = 0; i < count; i++) replies.push(await send());
      return replies;
    }
    function expectLimitedAfter(replies: LightMyRequestResponse[], allowed: number, status: number) {
      expect(replies.slice(0, allowed).map((r) => r.statusCode)).toEqual(Array(allowed).fill(status));
      const limited = replies[allowed]!;
      expect(limited.json()).toEqual({ error: { code: 'rate_limited', message: expect.any(String) } });
      expect(limited.statusCode).toBe(429);
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    }

    it('pairing: 10 requests a minute, the 11th is 429 rate_limited', async () => {
      const fresh = await freshApi();
      const key = generateKeyPair();
      const asks = await burst(11, () =>
        post(fresh, undefined, '/api/pairing/requests', {
          code: 'AAAA-AAAA',
          name: 'spray',
          publicKey: toBase64(key.publicKey),
        }),
      );
      expectLimitedAfter(asks, 10, 403);
      const roots = await burst(11, () =>
        post(fresh, undefined, '/api/pairing/root', { code: 'AAAA-AAAA', enrollment: enrollment() }),
      );
      expectLimitedAfter(roots, 10, 409); // paired already: refused, and still limited
    });

    it('login: 20 a minute on the challenge and on the signed login, the 21st is 429', async () => {
      const fresh = await freshApi();
      const challenges = await burst(21, () =>
        post(fresh, undefined, '/api/session/challenge', { keyId: stack.root.keyId }),
      );
      expectLimitedAfter(challenges, 20, 200);
      const logins = await burst(21, () =>
        post(fresh, undefined, '/api/session', {
          envelope: signEnvelope(
            PAYLOAD_TYPES.login,
            loginPayloadBytes({
              challenge: 'guessed',
              keyId: stack.root.keyId,
              origin: fresh.config.publicUrl,
            }),
            stack.root.secretKey,
            stack.root.keyId,
          ),
        }),
      );
      expectLimitedAfter(logins, 20, 401);
    });

    it('approvals: 30 a minute, the 31st is 429 and the step still awaits', async () => {
      const fresh = await freshApi();
      const session = await login(fresh, stack.root);
      const foreign = signDecision(
        await waitForStep(stack.client, waiting, 'hi', 'awaiting_approval'),
        'hi',
        generateKeyPair(),
        'approve',
      );
      const replies = await burst(31, () =>
        post(fresh, session, `/api/plans/${waiting}/approvals`, { envelope: foreign }),
      );
      expectLimitedAfter(replies, 30, 403);
      // The limit holds for a valid approval too.
      expectError(
        await post(fresh, session, `/api/plans/${waiting}/approvals`, { envelope }),
        429,
        'rate_limited',
      );
      await stillWaiting();
    });
  });

  describe('5xx replies', () => {
    const INTERNALS =
      /\bat \w|\.ts\b|\.js\b|node_modules|\/work\/|grpc|GRPC|UNAVAILABLE|NOT_FOUND|namespace|ServiceError|Error:|stack/i;

    function expectOpaque(reply: LightMyRequestResponse) {
      expect([500, 503], reply.body).toContain(reply.statusCode);
      const body = reply.json<ErrorReply>();
      expect(Object.keys(body)).toEqual(['error']);
      expect(Object.keys(body.error).sort()).toEqual(['code', 'message']);
      expect(['internal', 'unavailable']).toContain(body.error.code);
      expect(body.error.message).not.toMatch(INTERNALS);
      expect(reply.body).not.toMatch(INTERNALS);
    }

    it('says nothing about the internals when the namespace does not exist', async () => {
      const lost = new Client({
        connection: stack.client.connection,
        namespace: 'no-such-namespace-countersign',
      });
      const broken = await freshApi(lost);
      expectOpaque(await get(broken, undefined, '/api/pairing'));
      // A live session whose every registry read fails.
      const session = broken.app.sessions.open(stack.root.keyId);
      const cookie = { cookie: `cs_session=${session.id}` };
      for (const url of ['/api/plans', '/api/devices', `/api/plans/${waiting}`])
        expectOpaque(await broken.app.inject({ method: 'GET', url, headers: cookie }));
      expectOpaque(
        await broken.app.inject({
          method: 'POST',
          url: '/api/session',
          payload: { envelope },
        }),
      );
    });

    it('says nothing about the internals when the Temporal connection is gone', async () => {
      const connection = await connectTemporal(stack.config, 'api');
      const client = new Client({ connection, namespace: stack.config.namespace });
      const app = await freshApi(client);
      const session = await login(app, stack.root);
      expect((await get(app, session, `/api/plans/${waiting}`)).statusCode).toBe(200);
      await connection.close();
      for (const url of [
        '/api/plans',
        `/api/plans/${waiting}`,
        `/api/plans/${waiting}/history`,
        '/api/inbox',
      ])
        expectOpaque(await get(app, session, url));
      expectOpaque(await post(app, session, `/api/plans/${waiting}/approvals`, { envelope }));
      await stillWaiting();
    });
  });
});
