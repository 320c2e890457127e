/**
 * Gate notices over the real delivery path: a real Temporal server and control worker, and on the
 * other side of each channel a local server that checks the exact request — an ntfy-protocol
 * server (real ntfy cannot be installed here) watched by an HTTP subscriber, a Web Push endpoint
 * that decrypts, and local FCM + OAuth endpoints (Firebase cannot be reached from here).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gateTag } from '../core/notify/notice.js';
import type { Notice } from '../core/notify/types.js';
import { introduceDevice } from '../services/devices.js';
import { decide, planView, submitPlan } from '../services/plans.js';
import { changeNotifySettings, readNotifySettings } from '../services/notify/settings.js';
import { sendTestNotice } from '../services/notify/test-notice.js';
import { generateKeyPair } from '../core/keys.js';
import { PROJECT_ROOT } from '../workers/config.js';
import { writeKeyFile } from '../workers/key-file.js';
import { startFcmServer, type FcmServer } from './support/fcm-server.js';
import { startNtfyServer, subscribe, type NtfyServer, type NtfySubscriber } from './support/ntfy-server.js';
import { waitForStep, waitForView, stepOf } from './support/plans.js';
import { waitUntil } from './support/process-stack.js';
import { startTestStack, type TestStack } from './support/stack.js';
import { startWebPushEndpoint, type WebPushEndpoint } from './support/web-push-endpoint.js';

const NTFY_TOKEN = `tk_${randomBytes(12).toString('hex')}`;
const SECRET = `TOP-SECRET-${randomBytes(6).toString('hex')}`;
const PUBLIC_URL = 'https://countersign.example.test';

let stack: TestStack;
let ntfy: NtfyServer;
let push: WebPushEndpoint;
let fcm: FcmServer;
let phone: NtfySubscriber;
let pushSubscription: ReturnType<WebPushEndpoint['createSubscription']>;
const fcmToken = `fcm-token-${randomBytes(16).toString('hex')}`;

beforeAll(async () => {
  [ntfy, push, fcm] = await Promise.all([
    startNtfyServer({ token: NTFY_TOKEN }),
    startWebPushEndpoint(),
    startFcmServer(),
  ]);
  stack = await startTestStack('notify', {
    control: {
      notify: {
        publicUrl: PUBLIC_URL,
        ntfy: { server: ntfy.url, publicServer: ntfy.url, token: NTFY_TOKEN },
        fcmServiceAccountPath: fcm.serviceAccountPath,
        vapidSubject: 'mailto:ops@countersign.example.test',
        allowLocalPushEndpoints: true,
        requestTimeoutMs: 3000,
      },
      notifier: { fcmHttpAgent: fcm.agent, webPushAgent: push.agent },
    },
  });
  await waitUntil(
    async () => (await readNotifySettings(stack.client)).offer.webPushPublicKey,
    'the notification offer',
    20_000,
  );
  const keyId = stack.root.keyId;
  await changeNotifySettings(stack.client, keyId, {
    type: 'preferences',
    ntfy: { enabled: true },
    webPush: { enabled: true },
    fcm: { enabled: true },
    quietHours: null,
  });
  pushSubscription = push.createSubscription();
  await changeNotifySettings(stack.client, keyId, { type: 'addWebPush', subscription: pushSubscription });
  await changeNotifySettings(stack.client, keyId, { type: 'addFcmToken', token: fcmToken });
  const topic = (await readNotifySettings(stack.client)).devices[keyId]!.ntfy.topic;
  phone = await subscribe(ntfy.url, topic, NTFY_TOKEN);
}, 120_000);

afterAll(async () => {
  phone?.close();
  await stack?.close();
  await Promise.all([ntfy?.close(), push?.close(), fcm?.close()]);
});

const gatePlan = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  steps: [{ id: 'deploy', run: `echo ${SECRET}`, approval: { timeout: '1h', ...extra } }],
});

describe('a gate reached reaches the phone on every channel', () => {
  it('ntfy: a subscriber gets the request with a deep link and the risk as priority, never the command', async () => {
    const { planId, workflowId } = await submitPlan(stack.client, gatePlan('ship it'), { proposer: 'test' });
    const view = await waitForStep(stack.client, planId, 'deploy', 'awaiting_approval');
    const tag = gateTag(workflowId, 'deploy');
    const message = await phone.next((e) => e.event === 'message' && e.sequence_id === tag, 10_000);
    expect(message.title).toBe('Approval needed: deploy');
    expect(message.message).toContain('ship it');
    expect(message.priority).toBe(4); // a command: medium risk
    expect(message.click).toBe(`${PUBLIC_URL}/#/approve/${workflowId}/deploy`);
    expect(message.actions?.[0]).toMatchObject({ action: 'view', label: 'Review', url: message.click });
    const request = ntfy.requests.find((r) => r.body.includes(tag))!;
    expect(request.headers.authorization).toBe(`Bearer ${NTFY_TOKEN}`);
    for (const r of ntfy.requests) expect(r.body).not.toContain(SECRET);

    // Deciding updates the same notification (same sequence id) on every device.
    await decide(stack.client, stack.root, planId, 'deploy', { decision: 'deny', reason: 'not today' });
    const decided = await phone.next(
      (e) => e.event === 'message' && e.sequence_id === tag && e.title?.startsWith('Decided') === true,
      10_000,
    );
    expect(decided.message).toContain('denied by test phone');
    expect(decided.priority).toBe(2);
    const closed = await waitForView(stack.client, planId, (v) => stepOf(v, 'deploy').status === 'denied');
    expect(
      closed.steps[0]!.notices?.some(
        (n) => n.kind === 'gate' && n.outcomes.some((o) => o.channel === 'ntfy' && o.status === 'sent'),
      ),
    ).toBe(true);
    expect(view.steps[0]!.digest).toHaveLength(64);
  });

  it('Web Push: an encrypted, VAPID-signed request the endpoint decrypts to the notice, kept until the deadline', async () => {
    const { planId, workflowId } = await submitPlan(stack.client, gatePlan('push me'), { proposer: 'test' });
    const view = await waitForStep(stack.client, planId, 'deploy', 'awaiting_approval');
    const tag = gateTag(workflowId, 'deploy');
    const delivery = await push.waitFor((d) => (d.payload as Notice | undefined)?.tag === tag, 10_000);
    const notice = delivery.payload as Notice;
    expect(notice).toMatchObject({ v: 1, kind: 'gate', title: 'Approval needed: deploy' });
    expect(notice.gate).toMatchObject({
      workflowId,
      runId: view.runId,
      stepPath: 'deploy',
      stepDigest: view.steps[0]!.digest,
      risk: 'medium',
      oneTap: true,
    });
    expect(delivery.payloadText).not.toContain(SECRET);
    expect(delivery.topic).toBe(tag);
    expect(delivery.urgency).toBe('high');
    expect(delivery.ttl).toBeGreaterThan(3500);
    expect(delivery.ttl).toBeLessThanOrEqual(3600);
    expect(delivery.vapidPublicKey).toBe((await readNotifySettings(stack.client)).offer.webPushPublicKey);
    expect(delivery.vapidSubject).toBe('mailto:ops@countersign.example.test');
    await decide(stack.client, stack.root, planId, 'deploy', { decision: 'deny' });
  });

  it('Web Push: a step above the plan policy’s one-tap risk offers Review only', async () => {
    const plan = { ...gatePlan('risky'), policy: { oneTapUpTo: 'low' } };
    const { planId, workflowId } = await submitPlan(stack.client, plan, { proposer: 'test' });
    await waitForStep(stack.client, planId, 'deploy', 'awaiting_approval');
    const delivery = await push.waitFor(
      (d) => (d.payload as Notice | undefined)?.tag === gateTag(workflowId, 'deploy'),
      10_000,
    );
    expect((delivery.payload as Notice).gate).toMatchObject({ risk: 'medium', oneTap: false });
    expect((delivery.payload as Notice).body).toContain('review in the app');
    await decide(stack.client, stack.root, planId, 'deploy', { decision: 'deny' });
  });

  it('Web Push: a plan cannot buy one-tap for a high-risk step: the installation’s ceiling wins', async () => {
    // An agent writes the plan: it asks for one tap on everything and calls its network command low risk.
    const plan = {
      ...gatePlan('sneaky', { risk: 'low' }),
      egress: true,
      policy: { oneTapUpTo: 'high' },
    };
    const { planId, workflowId } = await submitPlan(stack.client, plan, { proposer: 'agent' });
    await waitForStep(stack.client, planId, 'deploy', 'awaiting_approval');
    const delivery = await push.waitFor(
      (d) => (d.payload as Notice | undefined)?.tag === gateTag(workflowId, 'deploy'),
      10_000,
    );
    expect((delivery.payload as Notice).gate).toMatchObject({ risk: 'high', oneTap: false });
    await decide(stack.client, stack.root, planId, 'deploy', { decision: 'deny' });
  });

  it('FCM (local FCM + OAuth endpoints; Firebase is unreachable from here): the exact message firebase-admin sends', async () => {
    const { planId, workflowId } = await submitPlan(stack.client, gatePlan('fcm'), { proposer: 'test' });
    await waitForStep(stack.client, planId, 'deploy', 'awaiting_approval');
    const tag = gateTag(workflowId, 'deploy');
    const send = await fcm.waitFor(
      (s) => s.target === fcmToken && JSON.stringify(s.body).includes(tag),
      10_000,
    );
    const message = send.body.message as {
      token: string;
      notification: { title: string; body: string };
      data: Record<string, string>;
      android: { priority: string; ttl: string; collapse_key: string; notification: { tag: string } };
      apns: { headers: Record<string, string> };
    };
    expect(message.token).toBe(fcmToken);
    expect(message.notification.title).toBe('Approval needed: deploy');
    expect(message.data.url).toBe(`${PUBLIC_URL}/#/approve/${workflowId}/deploy`);
    expect(JSON.parse(message.data.notice!)).toMatchObject({ tag, kind: 'gate' });
    expect(message.android.priority).toBe('high');
    expect(Number.parseFloat(message.android.ttl)).toBeGreaterThan(3500);
    expect(message.android.collapse_key).toBe(tag);
    expect(message.apns.headers['apns-priority']).toBe('10');
    expect(JSON.stringify(send.body)).not.toContain(SECRET);
    expect(send.headers.authorization).toMatch(/^Bearer /);
    expect(fcm.tokenGrants.length).toBeGreaterThan(0);
    await decide(stack.client, stack.root, planId, 'deploy', { decision: 'deny' });
  });

  it('sends a test notice to every channel of one device and says what each answered', async () => {
    const outcomes = await sendTestNotice(stack.client, stack.root.keyId);
    expect(outcomes.map((o) => `${o.channel}:${o.status}`).sort()).toEqual([
      'fcm:sent',
      'ntfy:sent',
      'webPush:sent',
    ]);
    await phone.next((e) => e.event === 'message' && e.title === 'Countersign test notification', 5000);
  });
});

describe('escalation and audiences', () => {
  it('tells only the named approvers first; another device hears nothing', async () => {
    const other = { ...generateKeyPair(), name: 'laptop' };
    await introduceDevice(stack.client, stack.root, other);
    await changeNotifySettings(stack.client, other.keyId, {
      type: 'preferences',
      ntfy: { enabled: true },
      webPush: { enabled: false },
      fcm: { enabled: false },
      quietHours: null,
    });
    const otherTopic = (await readNotifySettings(stack.client)).devices[other.keyId]!.ntfy.topic;
    const laptop = await subscribe(ntfy.url, otherTopic, NTFY_TOKEN);
    try {
      const { planId, workflowId } = await submitPlan(
        stack.client,
        gatePlan('named', { approvers: ['test phone'] }),
        {
          proposer: 'test',
        },
      );
      await waitForStep(stack.client, planId, 'deploy', 'awaiting_approval');
      await phone.next((e) => e.sequence_id === gateTag(workflowId, 'deploy'), 10_000);
      await decide(stack.client, stack.root, planId, 'deploy', { decision: 'deny' });
      await phone.next(
        (e) => e.sequence_id === gateTag(workflowId, 'deploy') && e.title?.startsWith('Decided') === true,
        10_000,
      );
      expect(laptop.events.filter((e) => e.event === 'message')).toEqual([]);
    } finally {
      laptop.close();
    }
  });
});

describe('quiet hours', () => {
  it('holds back a first notice during quiet hours and records why', async () => {
    const quietDevice = { ...generateKeyPair(), name: 'sleeping phone' };
    await introduceDevice(stack.client, stack.root, quietDevice);
    // A window that holds the current minute, whatever the time now.
    const nowUtc = new Date();
    const hh = (h: number) => String((h + 24) % 24).padStart(2, '0');
    await changeNotifySettings(stack.client, quietDevice.keyId, {
      type: 'preferences',
      ntfy: { enabled: true },
      webPush: { enabled: false },
      fcm: { enabled: false },
      quietHours: {
        start: `${hh(nowUtc.getUTCHours() - 1)}:00`,
        end: `${hh(nowUtc.getUTCHours() + 2)}:00`,
        timeZone: 'UTC',
      },
    });
    const { planId } = await submitPlan(
      stack.client,
      gatePlan('at night', { approvers: ['sleeping phone'] }),
      {
        proposer: 'test',
      },
    );
    const view = await waitForView(
      stack.client,
      planId,
      (v) => (stepOf(v, 'deploy').notices?.length ?? 0) > 0,
      15_000,
    );
    expect(stepOf(view, 'deploy').notices![0]!.outcomes).toMatchObject([
      { channel: 'ntfy', status: 'quiet' },
    ]);
    await decide(stack.client, stack.root, planId, 'deploy', { decision: 'deny' });
    const final = await planView(stack.client, planId);
    expect(stepOf(final, 'deploy').status).toBe('denied');
  });
});

describe('countersign notify (the CLI, as the root device)', () => {
  const cli = async (...args: string[]): Promise<{ code: number; out: string }> => {
    try {
      const { stdout, stderr } = await promisify(execFile)(join(PROJECT_ROOT, 'bin', 'countersign'), args, {
        cwd: PROJECT_ROOT,
        env: {
          ...process.env,
          COUNTERSIGN_HOME: stack.config.home,
          TEMPORAL_ADDRESS: stack.config.temporalAddress,
          COUNTERSIGN_TEMPORAL_TLS_DIR: stack.config.temporalTlsDir ?? '',
          TEMPORAL_NAMESPACE: stack.config.namespace,
          NO_COLOR: '1',
        },
      });
      return { code: 0, out: stdout + stderr };
    } catch (error) {
      const e = error as { code: number; stdout: string; stderr: string };
      return { code: e.code, out: e.stdout + e.stderr };
    }
  };

  it('lists who is told where, sends a test notice per channel, and names a device that does not exist', async () => {
    await writeKeyFile(stack.paths.cliKey, stack.root).catch(() => undefined);
    const status = await cli('notify');
    expect(status.code).toBe(0);
    expect(status.out).toContain(`ntfy (${ntfy.url})`);
    expect(status.out).toMatch(/test phone\s+ntfy \(countersign-[^)]+\), Web Push ×1, FCM ×1/);

    const test = await cli('notify', 'test', 'test phone');
    expect(test.code, test.out).toBe(0);
    expect(test.out).toMatch(/ntfy topic .* sent/);
    expect(test.out).toMatch(/push service 127\.0\.0\.1:\d+ +sent/);
    expect(test.out).toContain('3 test notices delivered');

    const unknown = await cli('notify', 'test', 'nobody');
    expect(unknown.code).toBe(1);
    expect(unknown.out).toContain('no active device named "nobody"');
  });
});
