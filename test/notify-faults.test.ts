/**
 * Gate notices when things go wrong, observed from the outside: what the local ntfy server, its
 * subscriber, the Web Push endpoint and the FCM endpoint saw, the step record's `notices`, the
 * plan's history timeline, and the workflow's pending notice activity. A channel that is down,
 * rate-limited or failing never holds the plan up and is retried with backoff; a target that is
 * gone is dropped; a notice reaches each target once, across retries, duplicate attempts and a
 * control worker killed between a channel's acceptance and the ledger's record.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../core/keys.js';
import { gateTag } from '../core/notify/notice.js';
import type { Notice, NoticeGate, NoticeKind } from '../core/notify/types.js';
import { introduceDevice, openPairing, pairRoot } from '../services/devices.js';
import { planTimeline } from '../services/history/timeline.js';
import { ntfyNoticeTag } from '../services/notify/channels/ntfy.js';
import type { NotifyConfig } from '../services/notify/config.js';
import { DeliveryLedger } from '../services/notify/ledger.js';
import { noticeKey, Notifier, type GateNoticeRequest } from '../services/notify/notifier.js';
import { changeNotifySettings, readNotifySettings } from '../services/notify/settings.js';
import { loadOrCreateVapidKeys } from '../services/notify/vapid.js';
import { decide, planView, submitPlan } from '../services/plans.js';
import { loadOrCreateKeyFile } from '../workers/key-file.js';
import { startFcmServer, type FcmServer } from './support/fcm-server.js';
import { startNtfyServer, subscribe, type NtfyServer, type NtfySubscriber } from './support/ntfy-server.js';
import { stepOf, waitForStep, waitForView } from './support/plans.js';
import { waitUntil } from './support/process-stack.js';
import { WorkerProcess } from './support/processes.js';
import { startTestStack, type TestStack } from './support/stack.js';
import {
  startWebPushEndpoint,
  type PushSubscriptionJson,
  type WebPushEndpoint,
} from './support/web-push-endpoint.js';

type PendingActivity = temporal.api.workflow.v1.IPendingActivityInfo;

const NTFY_TOKEN = `tk_${randomBytes(12).toString('hex')}`;
const PUBLIC_URL = 'https://countersign.example.test';

let stack: TestStack;
let ntfy: NtfyServer;
let push: WebPushEndpoint;
let fcm: FcmServer;
let notifyConfig: NotifyConfig;
const subscribers: NtfySubscriber[] = [];

beforeAll(async () => {
  [ntfy, push, fcm] = await Promise.all([
    startNtfyServer({ token: NTFY_TOKEN }),
    startWebPushEndpoint(),
    startFcmServer(),
  ]);
  notifyConfig = {
    publicUrl: PUBLIC_URL,
    ntfy: { server: ntfy.url, publicServer: ntfy.url, token: NTFY_TOKEN },
    fcmServiceAccountPath: fcm.serviceAccountPath,
    vapidSubject: 'mailto:ops@countersign.example.test',
    allowLocalPushEndpoints: true,
    requestTimeoutMs: 3000,
  };
  stack = await startTestStack('notify-faults', {
    control: { notify: notifyConfig, notifier: { fcmHttpAgent: fcm.agent, webPushAgent: push.agent } },
  });
  await waitUntil(
    async () => (await readNotifySettings(stack.client)).offer.webPushPublicKey,
    'the notification offer',
    20_000,
  );
}, 120_000);

afterAll(async () => {
  for (const s of subscribers) s.close();
  await stack?.close();
  await Promise.all([ntfy?.close(), push?.close(), fcm?.close()]);
});

// ---- helpers: devices, notices as each server saw them, the pending notice activity ----

interface Channels {
  ntfy?: boolean;
  webPush?: PushSubscriptionJson;
  fcmToken?: string;
}

/**
 * A device of its own per test, named as the plan's only approver, so a fault scripted for one
 * test's targets never reaches another test's notices.
 */
async function deviceWith(name: string, channels: Channels) {
  const device = { ...generateKeyPair(), name };
  await introduceDevice(stack.client, stack.root, device);
  await changeNotifySettings(stack.client, device.keyId, {
    type: 'preferences',
    ntfy: { enabled: channels.ntfy === true },
    webPush: { enabled: channels.webPush !== undefined },
    fcm: { enabled: channels.fcmToken !== undefined },
    quietHours: null,
  });
  if (channels.webPush)
    await changeNotifySettings(stack.client, device.keyId, {
      type: 'addWebPush',
      subscription: channels.webPush,
    });
  if (channels.fcmToken)
    await changeNotifySettings(stack.client, device.keyId, { type: 'addFcmToken', token: channels.fcmToken });
  const topic = (await readNotifySettings(stack.client)).devices[device.keyId]!.ntfy.topic;
  return { ...device, topic };
}

const newFcmToken = () => `fcm-token-${randomBytes(16).toString('hex')}`;

/** The delivery ledger's key of a gate's notice (workflow, step, kind, attempt). */
const keyOf = (workflowId: string, stepPath: string, kind: GateNoticeRequest['kind'] = 'gate') =>
  noticeKey({ kind, attempt: 0, gate: { workflowId, stepPath } as NoticeGate });

/** Messages the ntfy server published for one notice, found by the notice's marker tag. */
const ntfyPublishesOf = (key: string) =>
  ntfy.published.filter((e) => e.event === 'message' && e.tags?.includes(ntfyNoticeTag(key)));

const subscriberMessagesOf = (subscriber: NtfySubscriber, key: string) =>
  subscriber.events.filter((e) => e.event === 'message' && e.tags?.includes(ntfyNoticeTag(key)));

/** FCM sends (whatever was answered) of one gate's notice of one kind to one token. */
const fcmSendsOf = (token: string, tag: string, kind: NoticeKind = 'gate') =>
  fcm.sends.filter((s) => {
    const data = s.body.message.data as Record<string, string> | undefined;
    return s.target === token && data?.tag === tag && data.kind === kind;
  });

/** Web Push requests (whatever was answered) of one gate's notice of one kind to one endpoint. */
const pushDeliveriesOf = (endpoint: string, tag: string, kind: NoticeKind = 'gate') =>
  push.deliveries.filter((d) => {
    const notice = d.payload as Notice | undefined;
    return d.subscriptionEndpoint === endpoint && notice?.tag === tag && notice.kind === kind;
  });

/** The plan's notice activity as the Temporal server holds it between and during attempts. */
async function pendingNotice(workflowId: string): Promise<PendingActivity | undefined> {
  const { raw } = await stack.client.workflow.getHandle(workflowId).describe();
  return raw.pendingActivities?.find((a) => a.activityType?.name === 'gateReached');
}

const ms = (d: { seconds?: unknown; nanos?: number | null } | null | undefined) =>
  d ? Number(d.seconds ?? 0) * 1000 + Math.round((d.nanos ?? 0) / 1e6) : undefined;

const gateStep = (approver: string, run = 'echo shipped') => ({
  id: 'deploy',
  run,
  approval: { timeout: '1h', approvers: [approver] },
});

// ---- the tests ----

describe('a channel that is down or failing never holds the plan up, and is retried', () => {
  it('ntfy down at the gate: the plan waits for approval regardless, the notice is retried with backoff, arrives once ntfy is back, and the plan is approved and runs', async () => {
    const device = await deviceWith('ntfy-down phone', { ntfy: true });
    await ntfy.setFault('down');
    let phone: NtfySubscriber | undefined;
    try {
      const { planId, workflowId } = await submitPlan(
        stack.client,
        { name: 'ntfy down', steps: [gateStep(device.name)] },
        { proposer: 'test' },
      );
      const key = keyOf(workflowId, 'deploy');
      await waitForStep(stack.client, planId, 'deploy', 'awaiting_approval');

      // Two attempts failed (attempt 3 is scheduled): the server's backoff doubled from 1 s to 2 s.
      const retrying = await waitUntil(
        async () => {
          const pending = await pendingNotice(workflowId);
          return (pending?.attempt ?? 0) >= 3 ? pending : undefined;
        },
        'the gate notice to fail twice',
        15_000,
      );
      expect(retrying.lastFailure?.message).toContain('ntfy server unreachable');
      expect(ms(retrying.currentRetryInterval)).toBe(2000);
      expect(ntfyPublishesOf(key)).toEqual([]);
      expect(stepOf(await planView(stack.client, planId), 'deploy').status).toBe('awaiting_approval');

      // ntfy is back before attempt 3 runs; a phone subscribes the way the app does.
      const nextAttemptAt = ms(retrying.nextAttemptScheduleTime)!;
      expect(nextAttemptAt - Date.now(), 'time left before the next attempt').toBeGreaterThan(300);
      await ntfy.setFault('none');
      phone = await subscribe(ntfy.url, device.topic, NTFY_TOKEN);
      const message = await phone.next((e) => e.tags?.includes(ntfyNoticeTag(key)) === true, 15_000);
      expect(message.title).toBe('Approval needed: deploy');

      const told = await waitForView(
        stack.client,
        planId,
        (v) => (stepOf(v, 'deploy').notices?.length ?? 0) > 0,
        10_000,
      );
      expect(stepOf(told, 'deploy').notices).toMatchObject([
        { kind: 'gate', attempt: 0, outcomes: [{ channel: 'ntfy', status: 'sent' }] },
      ]);
      expect(stepOf(told, 'deploy').notices![0]!.problem).toBeUndefined();

      await decide(stack.client, stack.root, planId, 'deploy', { decision: 'approve' });
      const done = await waitForStep(stack.client, planId, 'deploy', 'succeeded', 60_000);
      expect(stepOf(done, 'deploy').result?.outputTail).toContain('shipped');

      expect(ntfyPublishesOf(key)).toHaveLength(1);
      expect(subscriberMessagesOf(phone, key)).toHaveLength(1);
      const timeline = await planTimeline(stack.client, planId);
      const notices = timeline.entries.filter((e) => e.kind === 'notice' && e.text.startsWith('gate notice'));
      expect(notices).toHaveLength(1);
      expect(notices[0]!.text).toContain('ntfy topic');
      expect(notices[0]!.text).toContain(' sent');
      expect(timeline.entries.some((e) => e.kind === 'notice_failed')).toBe(false);
    } finally {
      phone?.close();
      await ntfy.setFault('none');
    }
  });

  it('FCM answers 429 once: the notice is retried and FCM accepts it exactly once', async () => {
    const token = newFcmToken();
    const device = await deviceWith('fcm-quota phone', { fcmToken: token });
    fcm.respondOnce(token, 'quota');
    const { planId, workflowId } = await submitPlan(
      stack.client,
      { name: 'fcm quota', steps: [gateStep(device.name)] },
      { proposer: 'test' },
    );
    const tag = gateTag(workflowId, 'deploy');
    const view = await waitForView(
      stack.client,
      planId,
      (v) => (stepOf(v, 'deploy').notices?.length ?? 0) > 0,
      20_000,
    );
    expect(stepOf(view, 'deploy').notices).toMatchObject([
      { kind: 'gate', outcomes: [{ channel: 'fcm', status: 'sent' }] },
    ]);
    expect(fcmSendsOf(token, tag).map((s) => s.status)).toEqual([429, 200]);
    await decide(stack.client, stack.root, planId, 'deploy', { decision: 'deny' });
  });

  it('FCM failing (500) beside a working ntfy: ntfy is sent once and not again on the retries; the failing channel shows on the pending notice', async () => {
    const token = newFcmToken();
    const device = await deviceWith('fcm-500 phone', { ntfy: true, fcmToken: token });
    fcm.respondWith(token, 'internal');
    const { planId, workflowId } = await submitPlan(
      stack.client,
      { name: 'fcm failing', steps: [gateStep(device.name)] },
      { proposer: 'test' },
    );
    const key = keyOf(workflowId, 'deploy');
    const tag = gateTag(workflowId, 'deploy');
    await waitForStep(stack.client, planId, 'deploy', 'awaiting_approval');

    // Three attempts reached FCM (at about 0 s, 1 s and 3 s).
    await waitUntil(
      async () => fcmSendsOf(token, tag).length >= 3 || undefined,
      'three FCM attempts',
      15_000,
    );
    const pending = await waitUntil(
      async () => {
        const p = await pendingNotice(workflowId);
        return (p?.attempt ?? 0) >= 4 ? p : undefined;
      },
      'the third attempt to fail',
      10_000,
    );
    expect(pending.lastFailure?.message).toContain('messaging/internal-error');
    expect(pending.lastFailure?.message).toContain(`FCM token …${token.slice(-6)}`);
    expect(pending.lastFailure?.message).toContain('1 of 2 deliveries failed');
    expect(fcmSendsOf(token, tag).every((s) => s.status === 500)).toBe(true);
    // The ledger said ntfy was sent: no attempt after the first published it again.
    expect(ntfyPublishesOf(key)).toHaveLength(1);

    // Delivery is given up only after 8 attempts (≈ 2 min with this backoff): the record and the
    // timeline entry of a given-up notice are checked by the next test, which gets there in seconds.
    await decide(stack.client, stack.root, planId, 'deploy', { decision: 'deny' });
    await waitForStep(stack.client, planId, 'deploy', 'denied');
    // Closing the gate stopped the gate notice's retries (the "decided" notice is another activity).
    const sendsAtClose = fcmSendsOf(token, tag).length;
    await sleep(Math.max(0, ms(pending.nextAttemptScheduleTime)! - Date.now()) + 1000);
    expect(fcmSendsOf(token, tag)).toHaveLength(sendsAtClose);
    expect(ntfyPublishesOf(key)).toHaveLength(1);
  });

  it('given up after 8 attempts (a push service asks to wait 1 s, so in seconds): recorded on the step and in the timeline with what each channel did; ntfy sent once', async () => {
    const token = newFcmToken();
    const subscription = push.createSubscription();
    const device = await deviceWith('give-up phone', { ntfy: true, webPush: subscription, fcmToken: token });
    fcm.respondWith(token, 'internal');
    push.respondWith(subscription.endpoint, { status: 429, retryAfterSeconds: 1 });
    const { planId, workflowId } = await submitPlan(
      stack.client,
      { name: 'given up', steps: [gateStep(device.name)] },
      { proposer: 'test' },
    );
    const key = keyOf(workflowId, 'deploy');
    const tag = gateTag(workflowId, 'deploy');
    const view = await waitForView(
      stack.client,
      planId,
      (v) => (stepOf(v, 'deploy').notices?.length ?? 0) > 0,
      40_000,
    );
    const [record] = stepOf(view, 'deploy').notices!;
    expect(record!.problem).toMatch(/^delivery given up: /);
    expect(record!.problem).toContain('will be retried');
    const byChannel = Object.fromEntries(record!.outcomes.map((o) => [o.channel, o]));
    expect(byChannel.ntfy).toMatchObject({ status: 'already_sent' });
    expect(byChannel.webPush).toMatchObject({ status: 'failed', httpStatus: 429 });
    expect(byChannel.fcm).toMatchObject({ status: 'failed' });
    expect(byChannel.fcm!.detail).toContain('messaging/internal-error');
    expect(stepOf(view, 'deploy').status).toBe('awaiting_approval');

    expect(fcmSendsOf(token, tag)).toHaveLength(8);
    expect(pushDeliveriesOf(subscription.endpoint, tag)).toHaveLength(8);
    expect(ntfyPublishesOf(key)).toHaveLength(1);

    const timeline = await planTimeline(stack.client, planId);
    const failed = timeline.entries.filter((e) => e.kind === 'notice_failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ step: 'deploy' });
    expect(failed[0]!.text).toContain('messaging/internal-error');
    expect(timeline.entries.some((e) => e.kind === 'gate_reached' && e.step === 'deploy')).toBe(true);
    await decide(stack.client, stack.root, planId, 'deploy', { decision: 'deny' });
  });
});

describe('dead targets', () => {
  it('an unregistered FCM token and a 410 push endpoint are dropped from the device, recorded as gone, and never retried', async () => {
    const token = newFcmToken();
    const subscription = push.createSubscription();
    const device = await deviceWith('dead phone', { ntfy: true, webPush: subscription, fcmToken: token });
    fcm.respondWith(token, 'unregistered');
    push.respondWith(subscription.endpoint, 'gone');
    const before = (await readNotifySettings(stack.client)).devices[device.keyId]!;
    expect(before.fcm.tokens).toEqual([token]);
    expect(before.webPush.subscriptions.map((s) => s.endpoint)).toEqual([subscription.endpoint]);

    const { planId, workflowId } = await submitPlan(
      stack.client,
      { name: 'dead targets', steps: [gateStep(device.name)] },
      { proposer: 'test' },
    );
    const tag = gateTag(workflowId, 'deploy');
    const view = await waitForView(
      stack.client,
      planId,
      (v) => (stepOf(v, 'deploy').notices?.length ?? 0) > 0,
      20_000,
    );
    const [record] = stepOf(view, 'deploy').notices!;
    expect(record!.problem).toBeUndefined();
    const byChannel = Object.fromEntries(record!.outcomes.map((o) => [o.channel, o]));
    expect(byChannel.fcm).toMatchObject({ status: 'gone' });
    expect(byChannel.fcm!.detail).toContain('registration-token-not-registered');
    expect(byChannel.webPush).toMatchObject({ status: 'gone', httpStatus: 410 });
    expect(byChannel.ntfy).toMatchObject({ status: 'sent' });

    const after = await waitUntil(
      async () => {
        const d = (await readNotifySettings(stack.client)).devices[device.keyId]!;
        return d.fcm.tokens.length === 0 && d.webPush.subscriptions.length === 0 ? d : undefined;
      },
      'the dead targets to be dropped',
      10_000,
    );
    expect(after.ntfy.enabled).toBe(true);

    // The notice activity completed on its first attempt; nothing more reaches either target.
    expect(await pendingNotice(workflowId)).toBeUndefined();
    await sleep(2500);
    expect(fcmSendsOf(token, tag)).toHaveLength(1);
    expect(pushDeliveriesOf(subscription.endpoint, tag)).toHaveLength(1);

    const timeline = await planTimeline(stack.client, planId);
    const notice = timeline.entries.find((e) => e.kind === 'notice' && e.step === 'deploy');
    expect(notice?.text).toContain(`FCM token …${token.slice(-6)} gone`);
    expect(notice?.text).toContain('push service 127.0.0.1');

    // The decided notice goes to what is left: ntfy, not the dropped targets.
    await decide(stack.client, stack.root, planId, 'deploy', { decision: 'deny' });
    await ntfy.waitFor(
      (e) => e.tags?.includes(ntfyNoticeTag(keyOf(workflowId, 'deploy', 'decided'))) === true,
      10_000,
    );
    expect(fcm.sends.filter((s) => s.target === token)).toHaveLength(1);
    expect(push.deliveries.filter((d) => d.subscriptionEndpoint === subscription.endpoint)).toHaveLength(1);
  });
});

describe('duplicate activity attempts', () => {
  it('the same gate notice delivered twice by the notifier: one message per channel; the second call reports already_sent', async () => {
    const token = newFcmToken();
    const subscription = push.createSubscription();
    const device = await deviceWith('twice phone', { ntfy: true, webPush: subscription, fcmToken: token });
    const ledgerDir = await mkdtemp(join(tmpdir(), 'countersign-ledger-'));
    // Built the way workers/control.ts builds it, against the same settings and keys.
    const notifier = new Notifier({
      client: stack.client,
      config: notifyConfig,
      vapid: await loadOrCreateVapidKeys(stack.paths.vapidKeys),
      ledgerDir,
      fcmHttpAgent: fcm.agent,
      webPushAgent: push.agent,
    });
    try {
      const workflowId = `plan-twice${randomBytes(6).toString('hex')}`;
      const request: GateNoticeRequest = {
        kind: 'gate',
        attempt: 0,
        planName: 'twice',
        gate: {
          workflowId,
          runId: randomUUID(),
          stepPath: 'deploy',
          stepDigest: randomBytes(32).toString('hex'),
          deadline: new Date(Date.now() + 3600_000).toISOString(),
          risk: 'medium',
          oneTap: true,
        },
        audience: { approvers: [device.name] },
      };
      const first = await notifier.notifyGate(request);
      const second = await notifier.notifyGate(request);
      const statuses = (r: typeof first) => r.outcomes.map((o) => `${o.channel}:${o.status}`).sort();
      expect(statuses(first)).toEqual(['fcm:sent', 'ntfy:sent', 'webPush:sent']);
      expect(statuses(second)).toEqual(['fcm:already_sent', 'ntfy:already_sent', 'webPush:already_sent']);
      expect(second.retry.targets).toEqual([]);

      const tag = gateTag(workflowId, 'deploy');
      expect(ntfyPublishesOf(noticeKey(request))).toHaveLength(1);
      expect(pushDeliveriesOf(subscription.endpoint, tag)).toHaveLength(1);
      expect(fcmSendsOf(token, tag)).toHaveLength(1);
      expect(fcmSendsOf(token, tag)[0]!.status).toBe(200);
    } finally {
      await notifier.close();
      await rm(ledgerDir, { recursive: true, force: true });
    }
  });
});

describe('a control worker killed between send and record', () => {
  let crash: TestStack | undefined;
  const workers: WorkerProcess[] = [];

  afterAll(async () => {
    for (const w of workers) await w.kill('SIGTERM');
    await crash?.close();
  });

  it('SIGKILLed right after ntfy accepted a notice: the restarted worker finds it on the server and does not publish again', async () => {
    crash = await startTestStack('notify-crash', { workers: false, pair: false });
    const env = {
      COUNTERSIGN_NTFY_URL: ntfy.url,
      COUNTERSIGN_NTFY_TOKEN: NTFY_TOKEN,
      COUNTERSIGN_PUBLIC_URL: PUBLIC_URL,
      COUNTERSIGN_PUSH_ALLOW_LOCAL: '1',
    };
    const logDir = crash.config.home;
    const faulty = new WorkerProcess('control', crash.config, logDir, {
      ...env,
      COUNTERSIGN_FAULT_NOTIFY: 'die-after-send',
    });
    const healthy = new WorkerProcess('control', crash.config, logDir, {
      ...env,
      COUNTERSIGN_FAULT_NOTIFY: '',
    });
    workers.push(faulty, healthy);

    const policy = await loadOrCreateKeyFile(crash.paths.policyKey, 'policy');
    await faulty.start();
    const died = new Promise<NodeJS.Signals | null>((resolve) =>
      faulty.child!.once('exit', (_code, signal) => resolve(signal)),
    );
    const code = await waitUntil(() => openPairing(crash!.client, policy.publicKey), 'the registry workflow');
    await pairRoot(crash.client, crash.root, code, crash.paths.pinnedRoot);
    await waitUntil(
      async () => (await readNotifySettings(crash!.client)).offer.ntfyServer,
      'the notification offer',
      30_000,
    );
    await changeNotifySettings(crash.client, crash.root.keyId, {
      type: 'preferences',
      ntfy: { enabled: true },
      webPush: { enabled: false },
      fcm: { enabled: false },
      quietHours: null,
    });
    const topic = (await readNotifySettings(crash.client)).devices[crash.root.keyId]!.ntfy.topic;
    const phone = await subscribe(ntfy.url, topic, NTFY_TOKEN);
    subscribers.push(phone);

    const { planId, workflowId } = await submitPlan(
      crash.client,
      { name: 'crash between send and record', steps: [{ id: 'checkpoint', gate: 'go?' }] },
      { proposer: 'test' },
    );
    const key = keyOf(workflowId, 'checkpoint');
    const signal = await Promise.race([died, sleep(30_000, 'still alive', { ref: false })]);
    expect(signal).toBe('SIGKILL');
    // ntfy accepted it; the ledger holds only "sending": the one ambiguous case.
    expect(ntfyPublishesOf(key)).toHaveLength(1);
    expect(await new DeliveryLedger(crash.paths.notifyLedger).get(key, topic)).toMatchObject({
      state: 'sending',
    });

    await healthy.start();
    // The dead attempt is noticed by its heartbeat timeout (10 s), then retried.
    const view = await waitForView(
      crash.client,
      planId,
      (v) => (stepOf(v, 'checkpoint').notices?.length ?? 0) > 0,
      60_000,
    );
    expect(stepOf(view, 'checkpoint').status).toBe('awaiting_approval');
    const [record] = stepOf(view, 'checkpoint').notices!;
    expect(record).toMatchObject({
      kind: 'gate',
      attempt: 0,
      outcomes: [{ channel: 'ntfy', status: 'already_sent' }],
    });
    expect(record!.outcomes[0]!.detail).toContain('found on the server');
    expect(record!.problem).toBeUndefined();

    expect(ntfyPublishesOf(key)).toHaveLength(1);
    expect(subscriberMessagesOf(phone, key)).toHaveLength(1);
    expect(await new DeliveryLedger(crash.paths.notifyLedger).get(key, topic)).toMatchObject({
      state: 'sent',
    });

    const timeline = await planTimeline(crash.client, planId);
    const notice = timeline.entries.find((e) => e.kind === 'notice' && e.step === 'checkpoint');
    expect(notice?.text).toContain('already sent');
    expect(notice?.text).toContain('found on the server');
    expect(timeline.entries.some((e) => e.kind === 'notice_failed')).toBe(false);

    await decide(crash.client, crash.root, planId, 'checkpoint', { decision: 'deny' });
    await waitForStep(crash.client, planId, 'checkpoint', 'denied');
  });
});
