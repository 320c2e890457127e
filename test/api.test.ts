/**
 * The API through `inject`, on a real stack (Temporal dev server, control and executor workers,
 * jail backend): login by signed challenge, plans, approvals signed like a device signs them,
 * devices and invitations, revocation (through the API and through the service layer), history,
 * the audit download, and the live event stream on a listening server. Every refusal is checked
 * for its status, its code and that it changed nothing.
 */
import type { AddressInfo } from 'node:net';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InboxItem, PlanDetail, PlanListItem } from '../api/live/plans.js';
import { PAYLOAD_TYPES, signEnvelope, type Envelope } from '../core/approval/dsse.js';
import { loginPayloadBytes } from '../core/approval/payload.js';
import { fromBase64, toBase64, utf8ToBytes } from '../core/bytes.js';
import { signDeviceRecord } from '../core/devices/records.js';
import { generateKeyPair, type KeyPair } from '../core/keys.js';
import type { PlanView } from '../core/plan/state.js';
import { verifyBundle } from '../services/audit/verify.js';
import type { PlanTimeline } from '../services/history/index.js';
import { introduceDevice, revokeDevice } from '../services/devices.js';
import { planView } from '../services/plans.js';
import { readKeyFile } from '../workers/key-file.js';
import {
  documentedRoutes,
  expectError,
  get,
  login,
  openEvents,
  post,
  sessionFrom,
  signDecision,
  startApi,
  type ApiUnderTest,
  type DeviceSession,
  type ErrorReply,
  type EventReader,
} from './support/api.js';
import { waitForStep, waitForView } from './support/plans.js';
import { startTestStack, type TestStack } from './support/stack.js';

type Device = KeyPair & { name: string };

let stack: TestStack;
let api: ApiUnderTest;
let baseUrl: string;
let root: DeviceSession;
const second: Device = { ...generateKeyPair(), name: 'second phone' };
let secondSession: DeviceSession;
const readers: EventReader[] = [];
/** Opened by a device that the revocation tests then revoke. */
let streamOfRevoked: EventReader;

beforeAll(async () => {
  stack = await startTestStack('api');
  api = await startApi(stack);
  await api.app.listen({ port: 0, host: '127.0.0.1' });
  baseUrl = `http://127.0.0.1:${(api.app.server.address() as AddressInfo).port}`;
  await introduceDevice(stack.client, stack.root, second);
  root = await login(api, stack.root);
  secondSession = await login(api, second);
});
afterAll(async () => {
  for (const reader of readers) reader.close();
  await api?.close();
  await stack?.close();
});

const echo = (name: string, ...ids: string[]) => ({
  name,
  steps: (ids.length ? ids : ['hi']).map((id) => ({ id, run: `echo ${id}` })),
});

async function submit(session: DeviceSession, body: { plan: object } | { yaml: string }): Promise<string> {
  const reply = await post(api, session, '/api/plans', body);
  expect(reply.statusCode, reply.body).toBe(201);
  const { planId, workflowId } = reply.json<{ planId: string; workflowId: string }>();
  expect(workflowId).toBe(`plan-${planId}`);
  return workflowId;
}

async function detail(session: DeviceSession, ref: string): Promise<PlanDetail> {
  const reply = await get(api, session, `/api/plans/${ref}`);
  expect(reply.statusCode, reply.body).toBe(200);
  return reply.json<PlanDetail>();
}

/** Waits for the gate, then returns the plan as the API shows it (what a device signs against). */
async function gate(workflowId: string, step = 'hi'): Promise<PlanView> {
  await waitForStep(stack.client, workflowId, step, 'awaiting_approval');
  return (await detail(root, workflowId)).tree.view;
}

const approve = (session: DeviceSession, workflowId: string, envelope: Envelope) =>
  post(api, session, `/api/plans/${workflowId}/approvals`, { envelope });

async function stepNow(workflowId: string, path: string) {
  return (await planView(stack.client, workflowId)).steps.find((s) => s.path === path)!;
}

const noCookieSet = (reply: { headers: Record<string, unknown> }) =>
  expect(reply.headers['set-cookie']).toBeUndefined();

// ---------------------------------------------------------------------------------------------

describe('revocation', () => {
  const cookieRoutes = () => documentedRoutes().filter((r) => r.auth.startsWith('cookie'));
  const fill = (path: string, plan: string) => path.replace(':plan', plan).replace(':code', 'ABCD-EFGH');

  /** Every cookie route of api/README.md with the revoked device's cookie and CSRF token: all 401 device_revoked. */
  async function expectRevokedEverywhere(session: DeviceSession, plan: string) {
    const routes = cookieRoutes();
    expect(routes.length).toBeGreaterThanOrEqual(15);
    const seen: { route: string; status: number; code: string }[] = [];
    for (const { method, path } of routes) {
      const reply = await api.app.inject({
        method: method as 'GET',
        url: fill(path, plan),
        headers: session.writeHeaders,
        ...(method === 'GET' || method === 'DELETE' ? {} : { payload: {} }),
      });
      seen.push({
        route: `${method} ${path}`,
        status: reply.statusCode,
        code: reply.json<ErrorReply>().error?.code,
      });
    }
    const events = await openEvents(baseUrl, session.cookie);
    seen.push({
      route: 'GET /api/events (stream)',
      status: events.status,
      code: (events.body as ErrorReply)?.error?.code,
    });
    // Refused everywhere first (the security property), then refused with the documented code.
    expect(seen.filter((s) => s.status !== 401)).toEqual([]);
    expect(seen).toEqual(seen.map((s) => ({ ...s, code: 'device_revoked' })));
  }

  it('revoking through the API (a record signed by the root) refuses that device on every route at once', async () => {
    const lost: Device = { ...generateKeyPair(), name: 'lost phone' };
    await introduceDevice(stack.client, stack.root, lost);
    const session = await login(api, lost);
    const workflowId = await submit(root, { plan: echo('revoked mid-way') });
    const view = await gate(workflowId);
    const opened = await openEvents(baseUrl, session.cookie);
    expect(opened.status).toBe(200);
    streamOfRevoked = opened.reader!;
    readers.push(streamOfRevoked);
    await streamOfRevoked.waitFor('inbox');
    // Signed while the device was still active; posted after the revocation.
    const signedBefore = signDecision(view, 'hi', lost, 'approve');

    const record = signDeviceRecord(
      { type: 'revoke', keyId: lost.keyId, reason: 'left in a taxi', at: new Date().toISOString() },
      stack.root,
    );
    const reply = await post(api, root, '/api/devices/records', { record });
    expect(reply.statusCode, reply.body).toBe(200);
    expect(
      reply
        .json<{ devices: { keyId: string; revoked?: object }[] }>()
        .devices.find((d) => d.keyId === lost.keyId)?.revoked,
    ).toMatchObject({ by: stack.root.keyId, reason: 'left in a taxi' });

    const late = await approve(session, workflowId, signedBefore);
    expect(late.statusCode, late.body).toBe(401);
    expect((await stepNow(workflowId, 'hi')).approvals).toEqual([]);
    await expect(login(api, lost)).rejects.toThrow(/device_revoked/);
    await post(api, root, `/api/plans/${workflowId}/cancel`);
    await expectRevokedEverywhere(session, workflowId);
  });

  it('revoking through the service layer (as the CLI does) refuses that device on every route at once', async () => {
    const stolen: Device = { ...generateKeyPair(), name: 'stolen phone' };
    await introduceDevice(stack.client, stack.root, stolen);
    const session = await login(api, stolen);
    expect((await get(api, session, '/api/devices')).statusCode).toBe(200);
    await revokeDevice(stack.client, stack.root, stolen.keyId, 'stolen');
    // The first request after the revocation learns why.
    expectError(await get(api, session, '/api/inbox'), 401, 'device_revoked', /revoked at .*\(stolen\)/);
    await expect(login(api, stolen)).rejects.toThrow(/device_revoked/);
    await expectRevokedEverywhere(session, 'plan-anything0');
  });

  it('refuses records posted through the old session of a revoked device', async () => {
    const gone: Device = { ...generateKeyPair(), name: 'gone' };
    await introduceDevice(stack.client, stack.root, gone);
    const session = await login(api, gone);
    await revokeDevice(stack.client, stack.root, gone.keyId, 'gone');
    const record = signDeviceRecord(
      { type: 'revoke', keyId: second.keyId, reason: 'revenge', at: new Date().toISOString() },
      gone,
    );
    expectError(await post(api, session, '/api/devices/records', { record }), 401, 'device_revoked');
    const list = (await get(api, root, '/api/devices')).json<{
      devices: { keyId: string; revoked?: object }[];
    }>();
    expect(list.devices.find((d) => d.keyId === second.keyId)?.revoked).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------

describe('login', () => {
  // A fresh app: these cases spend logins, which are limited to 20 a minute per route.
  let fresh: ApiUnderTest;
  beforeAll(async () => {
    fresh = await startApi(stack);
  });
  afterAll(async () => fresh?.close());

  async function challengeFor(keyId: string): Promise<string> {
    const reply = await post(fresh, undefined, '/api/session/challenge', { keyId });
    expect(reply.statusCode, reply.body).toBe(200);
    return reply.json<{ challenge: string }>().challenge;
  }

  function loginEnvelope(
    signer: KeyPair,
    challenge: string,
    { keyId = signer.keyId, origin = fresh.config.publicUrl, envelopeKeyId = signer.keyId } = {},
  ): Envelope {
    return signEnvelope(
      PAYLOAD_TYPES.login,
      loginPayloadBytes({ challenge, keyId, origin }),
      signer.secretKey,
      envelopeKeyId,
    );
  }

  const submitLogin = (envelope: Envelope) => post(fresh, undefined, '/api/session', { envelope });

  it('opens a session with a signed challenge: httpOnly SameSite=Strict cookie and a CSRF token; DELETE ends it', async () => {
    const reply = await submitLogin(loginEnvelope(stack.root, await challengeFor(stack.root.keyId)));
    expect(reply.statusCode, reply.body).toBe(200);
    const body = reply.json<{ device: { keyId: string; role: string; name: string }; csrfToken: string }>();
    expect(body.device).toMatchObject({ keyId: stack.root.keyId, role: 'root', name: 'test phone' });
    const cookie = reply.cookies.find((c) => c.name === 'cs_session')!;
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' });
    expect(body.csrfToken.length).toBeGreaterThanOrEqual(32);

    const session = sessionFrom(reply);
    const current = await get(fresh, session, '/api/session');
    expect(current.statusCode, current.body).toBe(200);
    expect(current.json()).toMatchObject({ device: { keyId: stack.root.keyId }, csrfToken: body.csrfToken });

    const out = await fresh.app.inject({
      method: 'DELETE',
      url: '/api/session',
      headers: session.writeHeaders,
    });
    expect(out.statusCode, out.body).toBe(204);
    expectError(await get(fresh, session, '/api/session'), 401, 'not_logged_in');
    expectError(await get(fresh, session, '/api/plans'), 401, 'not_logged_in');
  });

  it('uses a challenge once: the same signed login replayed is refused bad_challenge', async () => {
    const envelope = loginEnvelope(stack.root, await challengeFor(stack.root.keyId));
    expect((await submitLogin(envelope)).statusCode).toBe(200);
    const replay = await submitLogin(envelope);
    expectError(replay, 401, 'bad_challenge', /already used/);
    noCookieSet(replay);
  });

  it('refuses a challenge issued to another key, and that challenge is spent', async () => {
    const theirs = await challengeFor(second.keyId);
    const stolen = await submitLogin(loginEnvelope(stack.root, theirs));
    expectError(stolen, 401, 'bad_challenge');
    noCookieSet(stolen);
    // Refused attempts use the challenge up: not even its own key can use it afterwards.
    expectError(await submitLogin(loginEnvelope(second, theirs)), 401, 'bad_challenge');
  });

  it('refuses a login signed for another origin (wrong_origin)', async () => {
    const phished = await submitLogin(
      loginEnvelope(stack.root, await challengeFor(stack.root.keyId), {
        origin: 'https://countersign.evil.example',
      }),
    );
    expectError(phished, 401, 'wrong_origin', /countersign\.evil\.example/);
    noCookieSet(phished);
  });

  it('refuses a login not signed by the key it names (bad_signature, malformed_login)', async () => {
    const mallory = generateKeyPair();
    // Claims to be the root everywhere, signed by another key.
    const forged = await submitLogin(
      loginEnvelope(mallory, await challengeFor(stack.root.keyId), {
        keyId: stack.root.keyId,
        envelopeKeyId: stack.root.keyId,
      }),
    );
    expectError(forged, 401, 'bad_signature');
    noCookieSet(forged);
    // Names the root in the payload, its own key on the signature.
    const mixed = await submitLogin(
      loginEnvelope(mallory, await challengeFor(stack.root.keyId), { keyId: stack.root.keyId }),
    );
    expectError(mixed, 401, 'malformed_login', /signed by another/);
    noCookieSet(mixed);
    // A byte of the root's real signature flipped.
    const real = loginEnvelope(stack.root, await challengeFor(stack.root.keyId));
    const sig = fromBase64(real.signatures[0].sig);
    sig[10]! ^= 1;
    const flipped = await submitLogin({
      ...real,
      signatures: [{ ...real.signatures[0], sig: toBase64(sig) }],
    });
    expectError(flipped, 401, 'bad_signature');
  });

  it('refuses the policy key and keys that are not paired devices (unknown_device)', async () => {
    const policy = (await readKeyFile(stack.paths.policyKey))!;
    const asPolicy = await submitLogin(loginEnvelope(policy, await challengeFor(policy.keyId)));
    expectError(asPolicy, 401, 'unknown_device', /policy key/);
    noCookieSet(asPolicy);
    const stranger = generateKeyPair();
    const unknown = await submitLogin(loginEnvelope(stranger, await challengeFor(stranger.keyId)));
    expectError(unknown, 401, 'unknown_device', /not a paired device/);
    noCookieSet(unknown);
  });
});

// ---------------------------------------------------------------------------------------------

describe('plans', () => {
  let withDocs: string;

  it('submits a plan as JSON and as YAML: 201, the workflow starts and names the device as proposer', async () => {
    const fromJson = await submit(root, { plan: echo('json plan') });
    const jsonView = await gate(fromJson);
    expect(jsonView.name).toBe('json plan');
    expect(jsonView.proposer).toBe(`device "test phone" (${stack.root.keyId.slice(0, 12)})`);

    const fromYaml = await submit(secondSession, {
      yaml: 'name: yaml plan\nsteps:\n  - id: hi\n    run: echo from yaml\n',
    });
    const yamlView = await gate(fromYaml);
    expect(yamlView.name).toBe('yaml plan');
    expect(yamlView.steps[0]!.summary).toContain('echo from yaml');
    expect(yamlView.proposer).toContain('second phone');
    await post(api, root, `/api/plans/${fromJson}/cancel`);
    await post(api, root, `/api/plans/${fromYaml}/cancel`);
  });

  it('refuses an invalid plan with 422 invalid_plan and its issues; nothing starts', async () => {
    const badShape = await post(api, root, '/api/plans', { plan: { name: 'never started', steps: 3 } });
    const body = expectError(badShape, 422, 'invalid_plan', /nothing was started/);
    expect(body.error.issues).toContainEqual({ path: 'steps', message: expect.any(String) });

    const unknownField = await post(api, root, '/api/plans', {
      plan: { name: 'never started', steps: [{ id: 'a', run: 'echo a', sudo: true }] },
    });
    expect(expectError(unknownField, 422, 'invalid_plan').error.issues!.length).toBeGreaterThan(0);

    const badYaml = await post(api, root, '/api/plans', { yaml: 'name: never started\nsteps: [unclosed\n' });
    expectError(badYaml, 422, 'invalid_plan');

    const listed = await get(api, root, '/api/plans?filter=all');
    expect(listed.json<{ plans: PlanListItem[] }>().plans.map((p) => p.name)).not.toContain('never started');
  });

  it('shows the live tree for plan-id, bare id and sub-plan references; unknown plans are 404 not_found', async () => {
    const workflowId = (withDocs = await submit(root, {
      plan: {
        name: 'with docs',
        steps: [{ id: 'docs', plan: { name: 'docs', steps: [{ id: 'write', run: 'echo docs' }] } }],
      },
    }));
    await waitForView(stack.client, workflowId, (v) => v.subPlans[0]?.status === 'running');
    await waitForStep(stack.client, `${workflowId}.docs`, 'write', 'awaiting_approval');

    const byId = await detail(root, workflowId);
    expect(byId.tree.view).toMatchObject({ workflowId, name: 'with docs' });
    expect(byId.tree.children.map((c) => c.view.workflowId)).toEqual([`${workflowId}.docs`]);
    expect(byId.tree.children[0]!.view.steps[0]).toMatchObject({
      path: 'write',
      status: 'awaiting_approval',
    });
    expect(byId.temporalUiUrl).toBeNull();

    const bare = await detail(root, workflowId.slice('plan-'.length));
    expect(bare.tree.view.workflowId).toBe(workflowId);
    const child = await detail(root, `${workflowId}.docs`);
    expect(child.tree.view).toMatchObject({ workflowId: `${workflowId}.docs`, name: 'docs' });

    for (const url of [
      '/api/plans/nope0000',
      '/api/plans/plan-nope0000/history',
      '/api/plans/nope0000/audit',
    ])
      expectError(await get(api, root, url), 404, 'not_found');
    expectError(await post(api, root, '/api/plans/plan-nope0000/cancel'), 404, 'not_found');
  });

  it('cancels a plan: 202, and the plan and its sub-plan end cancelled', async () => {
    const workflowId = withDocs;
    const reply = await post(api, root, `/api/plans/${workflowId}/cancel`);
    expect(reply.statusCode, reply.body).toBe(202);
    expect(reply.json()).toEqual({ cancelling: true });
    await expect(stack.client.workflow.getHandle(workflowId).result()).rejects.toBeInstanceOf(
      WorkflowFailedError,
    );
    expect((await stack.client.workflow.getHandle(workflowId).describe()).status.name).toBe('CANCELLED');
    const after = await detail(root, workflowId);
    expect(after.tree.view.status).toBe('cancelled');
  });

  it('lists plans with filters all | awaiting | mine; "mine" drops a quorum-2 gate this device approved', async () => {
    const workflowId = await submit(root, {
      plan: { name: 'two keys', steps: [{ id: 'drop-db', run: 'echo dropped', approval: { quorum: 2 } }] },
    });
    const view = await gate(workflowId, 'drop-db');
    const ids = async (session: DeviceSession, query: string) => {
      const reply = await get(api, session, `/api/plans${query}`);
      expect(reply.statusCode, reply.body).toBe(200);
      return reply.json<{ plans: PlanListItem[] }>().plans.map((p) => p.workflowId);
    };
    await expect.poll(() => ids(root, '?filter=awaiting'), { timeout: 10_000 }).toContain(workflowId);
    expect(await ids(root, '?filter=mine')).toContain(workflowId);
    expect(await ids(root, '')).toContain(workflowId);
    expect(await ids(root, '?limit=1')).toHaveLength(1);

    const first = await approve(root, workflowId, signDecision(view, 'drop-db', stack.root, 'approve'));
    expect(first.statusCode, first.body).toBe(200);
    expect(first.json()).toMatchObject({ applied: { stepPath: 'drop-db', stepStatus: 'awaiting_approval' } });

    expect(await ids(root, '?filter=awaiting')).toContain(workflowId);
    expect(await ids(root, '?filter=mine')).not.toContain(workflowId);
    expect(await ids(secondSession, '?filter=mine')).toContain(workflowId);
    const inbox = async (session: DeviceSession) =>
      (await get(api, session, '/api/inbox'))
        .json<{ items: InboxItem[] }>()
        .items.filter((i) => i.workflowId === workflowId);
    expect(await inbox(root)).toEqual([]);
    expect(await inbox(secondSession)).toEqual([
      expect.objectContaining({ stepPath: 'drop-db', approvals: 1, quorum: 2, planName: 'two keys' }),
    ]);

    const secondVote = await approve(
      secondSession,
      workflowId,
      signDecision(view, 'drop-db', second, 'approve'),
    );
    expect(secondVote.statusCode, secondVote.body).toBe(200);
    await waitForStep(stack.client, workflowId, 'drop-db', 'succeeded');
    await expect
      .poll(() => ids(secondSession, '?filter=awaiting'), { timeout: 10_000 })
      .not.toContain(workflowId);
    expect(await ids(root, '?filter=all')).toContain(workflowId);
  });
});

// ---------------------------------------------------------------------------------------------

describe('approvals', () => {
  let target: string;
  let view: PlanView;
  let applied: Envelope;
  beforeAll(async () => {
    target = await submit(root, { plan: echo('deploy then notify', 'deploy', 'notify') });
    view = await gate(target, 'deploy');
  });

  async function stillAwaiting() {
    const step = await stepNow(target, 'deploy');
    expect(step.status).toBe('awaiting_approval');
    expect(step.approvals).toEqual([]);
  }

  it('refuses a forged signature (one byte flipped) with bad_signature; the step still awaits', async () => {
    const envelope = signDecision(view, 'deploy', stack.root, 'approve');
    const sig = fromBase64(envelope.signatures[0].sig);
    sig[0]! ^= 0x01;
    const forged: Envelope = { ...envelope, signatures: [{ keyid: stack.root.keyId, sig: toBase64(sig) }] };
    expectError(await approve(root, target, forged), 422, 'bad_signature', /does not verify/);
    await stillAwaiting();
  });

  it('refuses an approval of another step digest with wrong_digest', async () => {
    const real = view.steps.find((s) => s.path === 'deploy')!.digest;
    const other = `${real.slice(0, -1)}${real.endsWith('0') ? '1' : '0'}`;
    const envelope = signDecision(view, 'deploy', stack.root, 'approve', { stepDigest: other });
    expectError(await approve(root, target, envelope), 422, 'wrong_digest', /the step changed/);
    await stillAwaiting();
  });

  it('refuses an expired envelope (issued 20 min ago, valid 15 min) with expired', async () => {
    const envelope = signDecision(view, 'deploy', stack.root, 'approve', {
      nowMs: Date.now() - 20 * 60_000,
      ttlMs: 15 * 60_000,
    });
    expectError(await approve(root, target, envelope), 422, 'expired');
    await stillAwaiting();
  });

  it("refuses an envelope signed by another device than the session's: 403 not_your_signature", async () => {
    const envelope = signDecision(view, 'deploy', second, 'approve');
    expectError(await approve(root, target, envelope), 403, 'not_your_signature');
    await stillAwaiting();
  });

  it('refuses an envelope for another plan: 422 wrong_workflow', async () => {
    const other = await submit(root, { plan: echo('decoy') });
    await gate(other);
    const envelope = signDecision(view, 'deploy', stack.root, 'approve');
    expectError(await approve(root, other, envelope), 422, 'wrong_workflow', new RegExp(target));
    await stillAwaiting();
    expect((await stepNow(other, 'hi')).approvals).toEqual([]);
    await post(api, root, `/api/plans/${other}/cancel`);
  });

  it('applies an approval: 200 applied, and the step runs to succeeded', async () => {
    applied = signDecision(view, 'deploy', stack.root, 'approve');
    const reply = await approve(root, target, applied);
    expect(reply.statusCode, reply.body).toBe(200);
    expect(reply.json()).toEqual({
      applied: { stepPath: 'deploy', decision: 'approve', device: 'test phone', stepStatus: 'approved' },
    });
    const after = await waitForStep(stack.client, target, 'deploy', 'succeeded');
    expect(after.steps.find((s) => s.path === 'deploy')!.result?.exitCode).toBe(0);
    await waitForStep(stack.client, target, 'notify', 'awaiting_approval');
  });

  it('refuses a replay of the applied envelope with 409 nonce_reused', async () => {
    expectError(await approve(root, target, applied), 409, 'nonce_reused', /replayed/);
    expect((await stepNow(target, 'deploy')).approvals).toHaveLength(1);
  });

  it('denies: the step is denied with its reason and the plan fails', async () => {
    const current = (await detail(root, target)).tree.view;
    const reply = await approve(
      root,
      target,
      signDecision(current, 'notify', stack.root, 'deny', { reason: 'not on a Friday' }),
    );
    expect(reply.statusCode, reply.body).toBe(200);
    expect(reply.json()).toMatchObject({
      applied: { stepPath: 'notify', decision: 'deny', stepStatus: 'denied' },
    });
    const ended = await waitForView(stack.client, target, (v) => v.status === 'failed');
    expect(ended.steps.find((s) => s.path === 'notify')).toMatchObject({ status: 'denied' });
    expect(ended.steps.find((s) => s.path === 'notify')!.approvals[0]).toMatchObject({
      reason: 'not on a Friday',
    });
  });

  it('refuses a decision on a finished plan: 409 plan_finished', async () => {
    await stack.client.workflow
      .getHandle(target)
      .result()
      .catch(() => undefined);
    const late = signDecision(view, 'notify', stack.root, 'approve');
    expectError(await approve(root, target, late), 409, 'plan_finished', /has ended/);
  });

  it('refuses a decision on an unknown plan: 404 not_found', async () => {
    const ghost = { ...view, workflowId: 'plan-ghost000' };
    expectError(
      await approve(root, 'plan-ghost000', signDecision(ghost, 'deploy', stack.root, 'approve')),
      404,
      'not_found',
    );
  });

  it('returns the history: the timeline names the approver and every approval verifies', async () => {
    const reply = await get(api, root, `/api/plans/${target}/history`);
    expect(reply.statusCode, reply.body).toBe(200);
    const { timeline, temporalUiUrl } = reply.json<{
      timeline: PlanTimeline;
      temporalUiUrl: string | null;
    }>();
    expect(temporalUiUrl).toBeNull();
    expect(timeline).toMatchObject({ workflowId: target, planName: 'deploy then notify', status: 'failed' });
    const approvals = timeline.entries.filter((e) => e.kind === 'approval');
    expect(approvals.map((e) => [e.step, e.approval?.decision])).toEqual([
      ['deploy', 'approve'],
      ['notify', 'deny'],
    ]);
    for (const entry of approvals)
      expect(entry.approval).toMatchObject({ keyId: stack.root.keyId, device: 'test phone', verified: true });
    expect(timeline.steps.find((s) => s.path === 'deploy')).toMatchObject({ verified: true, approvals: 1 });
    expect(timeline.entries.some((e) => e.kind === 'approval_refused_at_audit')).toBe(false);
  });

  it('downloads the audit bundle as an attachment that verifies offline against the root only', async () => {
    const reply = await get(api, root, `/api/plans/${target.slice('plan-'.length)}/audit`);
    expect(reply.statusCode, reply.body.slice(0, 200)).toBe(200);
    expect(reply.headers['content-disposition']).toBe(`attachment; filename="${target}.audit.json"`);
    expect(reply.headers['content-type']).toMatch(/^application\/json/);
    const bundle: unknown = reply.json();
    const verdict = verifyBundle(bundle, { rootKeyId: stack.root.keyId });
    expect(verdict.problems).toEqual([]);
    expect(verdict.ok).toBe(true);
    expect(verdict.steps.find((s) => s.path === 'deploy')?.verdict).toBe('ok');
    expect(verifyBundle(bundle, { rootKeyId: generateKeyPair().keyId }).ok).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------

describe('devices', () => {
  const devicesNow = async () =>
    (await get(api, root, '/api/devices')).json<{
      rootKeyId: string;
      devices: { keyId: string; role: string; revoked?: object }[];
    }>();

  it('lists the registry: the root, the policy key and introduced devices', async () => {
    const list = await devicesNow();
    expect(list.rootKeyId).toBe(stack.root.keyId);
    expect(list.devices).toContainEqual(expect.objectContaining({ keyId: stack.root.keyId, role: 'root' }));
    expect(list.devices).toContainEqual(expect.objectContaining({ role: 'policy' }));
    expect(list.devices).toContainEqual(
      expect.objectContaining({ keyId: second.keyId, role: 'approver', introducedBy: stack.root.keyId }),
    );
  });

  it('introduces a device from a record this session signed; the device can log in', async () => {
    const tablet: Device = { ...generateKeyPair(), name: 'tablet' };
    const record = signDeviceRecord(
      {
        type: 'introduce',
        publicKey: toBase64(tablet.publicKey),
        name: tablet.name,
        role: 'approver',
        at: new Date().toISOString(),
      },
      stack.root,
    );
    const reply = await post(api, root, '/api/devices/records', { record });
    expect(reply.statusCode, reply.body).toBe(200);
    expect(reply.json<{ devices: { keyId: string }[] }>().devices.map((d) => d.keyId)).toContain(
      tablet.keyId,
    );
    const session = await login(api, tablet);
    expect((await get(api, session, '/api/session')).json()).toMatchObject({
      device: { keyId: tablet.keyId, name: 'tablet' },
    });
  });

  it('refuses a record signed by another device than the session: 403 not_your_signature, nothing added', async () => {
    const sneaky = generateKeyPair();
    const record = signDeviceRecord(
      {
        type: 'introduce',
        publicKey: toBase64(sneaky.publicKey),
        name: 'sneaky',
        role: 'approver',
        at: new Date().toISOString(),
      },
      second,
    );
    expectError(await post(api, root, '/api/devices/records', { record }), 403, 'not_your_signature');
    expect((await devicesNow()).devices.map((d) => d.keyId)).not.toContain(sneaky.keyId);
  });

  it('refuses malformed records with 400 malformed_record, nothing added', async () => {
    const before = (await devicesNow()).devices.length;
    const stranger = generateKeyPair();
    const cases: Envelope[] = [
      // an approval envelope where a device record belongs
      signEnvelope(PAYLOAD_TYPES.approval, utf8ToBytes('{}'), stack.root.secretKey, stack.root.keyId),
      // not JSON
      signEnvelope(
        PAYLOAD_TYPES.device,
        utf8ToBytes('introduce please'),
        stack.root.secretKey,
        stack.root.keyId,
      ),
      // a record type that does not exist
      signEnvelope(
        PAYLOAD_TYPES.device,
        utf8ToBytes(
          JSON.stringify({
            type: 'promote',
            keyId: stranger.keyId,
            role: 'root',
            at: new Date().toISOString(),
          }),
        ),
        stack.root.secretKey,
        stack.root.keyId,
      ),
    ];
    for (const record of cases)
      expectError(await post(api, root, '/api/devices/records', { record }), 400, 'malformed_record');
    expect((await devicesNow()).devices).toHaveLength(before);
  });

  it('invites a device: it asks with the code, waits, the inviter introduces it, and it logs in and approves a step', async () => {
    const invite = await post(api, root, '/api/devices/invitations');
    expect(invite.statusCode, invite.body).toBe(201);
    const { code, url } = invite.json<{ code: string; url: string; expiresAt: string }>();
    expect(code).toMatch(/^[A-Z2-9]{4}-[A-Z2-9]{4}$/);
    expect(url).toBe(`${api.config.publicUrl}/#/join?invite=${code}`);

    const laptop: Device = { ...generateKeyPair(), name: 'laptop' };
    expectError(
      await post(api, undefined, '/api/pairing/requests', {
        code: 'ZZZZ-ZZZZ',
        name: 'laptop',
        publicKey: toBase64(laptop.publicKey),
      }),
      403,
      'bad_invitation',
    );
    // The code as a person types it: lower case, no dash.
    const asked = await post(api, undefined, '/api/pairing/requests', {
      code: code.replace('-', '').toLowerCase(),
      name: laptop.name,
      publicKey: toBase64(laptop.publicKey),
    });
    expect(asked.statusCode, asked.body).toBe(202);
    const { keyId, fingerprint } = asked.json<{ keyId: string; fingerprint: string }>();
    expect(keyId).toBe(laptop.keyId);
    expect((await get(api, undefined, `/api/pairing/requests/${keyId}`)).json()).toEqual({
      status: 'waiting',
    });

    const pending = await get(api, root, `/api/devices/invitations/${code}`);
    expect(pending.statusCode, pending.body).toBe(200);
    expect(pending.json<{ requests: object[] }>().requests).toEqual([
      expect.objectContaining({ keyId, name: 'laptop', fingerprint, publicKey: toBase64(laptop.publicKey) }),
    ]);
    // Another device does not see (or answer) this device's invitation.
    expectError(await get(api, secondSession, `/api/devices/invitations/${code}`), 404, 'not_found');
    // Asked but not introduced: it cannot log in yet.
    await expect(login(api, laptop)).rejects.toThrow(/unknown_device/);

    const record = signDeviceRecord(
      {
        type: 'introduce',
        publicKey: toBase64(laptop.publicKey),
        name: laptop.name,
        role: 'approver',
        at: new Date().toISOString(),
      },
      stack.root,
    );
    expect((await post(api, root, '/api/devices/records', { record })).statusCode).toBe(200);
    expect((await get(api, undefined, `/api/pairing/requests/${keyId}`)).json()).toEqual({
      status: 'introduced',
    });

    const session = await login(api, laptop);
    const workflowId = await submit(root, { plan: echo('approved on the laptop') });
    const view = await gate(workflowId);
    const reply = await approve(session, workflowId, signDecision(view, 'hi', laptop, 'approve'));
    expect(reply.statusCode, reply.body).toBe(200);
    expect(reply.json()).toMatchObject({ applied: { device: 'laptop', stepStatus: 'approved' } });
    const done = await waitForStep(stack.client, workflowId, 'hi', 'succeeded');
    expect(done.steps[0]!.approvals[0]).toMatchObject({ keyId: laptop.keyId, deviceName: 'laptop' });
  });
});

// ---------------------------------------------------------------------------------------------

describe('events', () => {
  it('refuses a stream without a session', async () => {
    const refused = await openEvents(baseUrl, undefined);
    expect(refused.status).toBe(401);
    expect(refused.body).toEqual({ error: { code: 'not_logged_in', message: expect.any(String) } });
  });

  it('streams inbox for a new gate and the watched plan as its step changes state', async () => {
    const overview = await openEvents(baseUrl, secondSession.cookie);
    expect(overview.status).toBe(200);
    readers.push(overview.reader!);
    await overview.reader!.waitFor('plans');
    await overview.reader!.waitFor('inbox');

    const workflowId = await submit(root, { plan: echo('watched') });
    const watched = await openEvents(baseUrl, secondSession.cookie, `?plan=${workflowId}`);
    expect(watched.status).toBe(200);
    readers.push(watched.reader!);
    const statusIs = (status: string) => (d: PlanDetail) =>
      d.tree.view.workflowId === workflowId && d.tree.view.steps[0]?.status === status;

    await watched.reader!.waitFor<PlanDetail>('plan', statusIs('awaiting_approval'));
    const item = await overview.reader!.waitFor<{ items: InboxItem[] }>('inbox', (d) =>
      d.items.some((i) => i.workflowId === workflowId),
    );
    expect(item.items.find((i) => i.workflowId === workflowId)).toMatchObject({
      stepPath: 'hi',
      planName: 'watched',
      quorum: 1,
    });
    await overview.reader!.waitFor<{ plans: PlanListItem[] }>('plans', (d) =>
      d.plans.some((p) => p.workflowId === workflowId),
    );

    const mark = watched.reader!.events.length;
    const view = await gate(workflowId);
    const reply = await approve(secondSession, workflowId, signDecision(view, 'hi', second, 'approve'));
    expect(reply.statusCode, reply.body).toBe(200);
    const done = await watched.reader!.waitFor<PlanDetail>('plan', statusIs('succeeded'), { after: mark });
    expect(done.tree.view.steps[0]!.approvals[0]).toMatchObject({ keyId: second.keyId });
    // The gate leaves the inbox once decided.
    await overview.reader!.waitFor<{ items: InboxItem[] }>(
      'inbox',
      (d) => !d.items.some((i) => i.workflowId === workflowId),
    );
  });
});

// ---------------------------------------------------------------------------------------------

// Last in the file, so the tests above run while the server's next 20 s ping comes round.
describe('the event stream a device had open when it was revoked', () => {
  it('ends at the next ping', { timeout: 60_000 }, async () => {
    const ended = await Promise.race([
      streamOfRevoked.ended.then(() => true),
      new Promise<false>((r) => setTimeout(() => r(false), 25_000)),
    ]);
    expect(ended).toBe(true);
  });
});
