/**
 * Deadlines with time skipping: the Java test server (installed by scripts/setup) skips the
 * plan's durable timers, so a gate's hour-long life runs in seconds — reminders at their interval,
 * escalation to a second device, the final deadline that denies (fail-closed) — with the real
 * workflow bundle and control activities, delivering to a local ntfy-protocol server (real ntfy
 * cannot be installed here) watched by one subscriber per device.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createControlActivities } from '../activities/control.js';
import { signApproval } from '../core/approval/approval.js';
import { generateKeyPair, type KeyPair } from '../core/keys.js';
import { SEARCH_ATTRIBUTES, TASK_QUEUES } from '../core/names.js';
import { gateTag } from '../core/notify/notice.js';
import { introduceDevice, openPairing, pairRoot, registryView } from '../services/devices.js';
import { refusalOf } from '../services/errors.js';
import { planTimeline } from '../services/history/timeline.js';
import { Notifier } from '../services/notify/notifier.js';
import { changeNotifySettings, readNotifySettings } from '../services/notify/settings.js';
import { planView, submitPlan } from '../services/plans.js';
import { workflowBundlePath } from '../workers/bundle.js';
import { PROJECT_ROOT, statePaths } from '../workers/config.js';
import { createExecutorWorker } from '../workers/executor.js';
import { loadOrCreateKeyFile } from '../workers/key-file.js';
import { approveUpdate } from '../workflows/messages.js';
import { startNtfyServer, subscribe, type NtfyServer, type NtfySubscriber } from './support/ntfy-server.js';

const TEST_SERVER = resolve(PROJECT_ROOT, '.tools/bin/temporal-test-server');

let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
let executor: Awaited<ReturnType<typeof createExecutorWorker>> | undefined;
let executorRunning: Promise<void> | undefined;
let home: string;
let ntfy: NtfyServer;
const phoneKey: KeyPair & { name: string } = { ...generateKeyPair(), name: 'test phone' };
const onCallKey: KeyPair & { name: string } = { ...generateKeyPair(), name: 'on-call phone' };
let phone: NtfySubscriber;
let onCall: NtfySubscriber;

// A fresh test server per test: an activity still pending at a test's end (the workspace release
// at a plan's end) would hold the next test's time skipping back. The real executor runs beside
// the control worker: the registry tells it of every new device record, and an activity nobody
// polls for would hold time skipping back.
beforeEach(async () => {
  env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: TEST_SERVER } },
  });
  // The plan workflow keeps its status in search attributes; the test server must know them.
  const { temporal } = (await import('@temporalio/proto')).default;
  const types = temporal.api.enums.v1.IndexedValueType;
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes: Object.fromEntries(
      Object.values(SEARCH_ATTRIBUTES).map((a) => [
        a.name,
        a.type === 'Keyword' ? types.INDEXED_VALUE_TYPE_KEYWORD : types.INDEXED_VALUE_TYPE_KEYWORD_LIST,
      ]),
    ),
  });
  ntfy = await startNtfyServer();
  home = await mkdtemp(join(tmpdir(), 'countersign-deadlines-'));
  const paths = statePaths(home);
  const policyKey = await loadOrCreateKeyFile(paths.policyKey, 'policy');
  const notifier = new Notifier({
    client: env.client,
    config: {
      publicUrl: 'http://127.0.0.1:7780',
      ntfy: { server: ntfy.url, publicServer: ntfy.url },
      vapidSubject: 'mailto:ops@countersign.example.test',
      allowLocalPushEndpoints: false,
      requestTimeoutMs: 3000,
    },
    ledgerDir: paths.notifyLedger,
  });
  worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue: TASK_QUEUES.control,
    workflowBundle: { codePath: await workflowBundlePath(paths.build) },
    activities: createControlActivities({
      policyKey,
      gateLogPath: paths.gateLog,
      client: env.client,
      notifier,
    }),
  });
  running = worker.run();
  executor = await createExecutorWorker(
    { home, temporalAddress: env.address, namespace: env.namespace ?? 'default' },
    env.nativeConnection,
    'jail',
  );
  executorRunning = executor.worker.run();
  await notifier.publishOffer();

  const code = await openPairing(env.client, policyKey.publicKey);
  await pairRoot(env.client, phoneKey, code!);
  await introduceDevice(env.client, phoneKey, onCallKey);
  for (const key of [phoneKey, onCallKey])
    await changeNotifySettings(env.client, key.keyId, {
      type: 'preferences',
      ntfy: { enabled: true },
      webPush: { enabled: false },
      fcm: { enabled: false },
      quietHours: null,
    });
  const settings = await readNotifySettings(env.client);
  phone = await subscribe(ntfy.url, settings.devices[phoneKey.keyId]!.ntfy.topic);
  onCall = await subscribe(ntfy.url, settings.devices[onCallKey.keyId]!.ntfy.topic);
}, 120_000);

afterEach(async () => {
  phone?.close();
  onCall?.close();
  worker?.shutdown();
  executor?.worker.shutdown();
  await running?.catch(() => undefined);
  await executorRunning?.catch(() => undefined);
  executor?.runners.close();
  await env?.teardown();
  await ntfy?.close();
  if (home) await rm(home, { recursive: true, force: true });
});

const messagesFor = (subscriber: NtfySubscriber, tag: string) =>
  subscriber.events.filter((e) => e.event === 'message' && e.sequence_id === tag).map((e) => e.title);

describe('a gate nobody decides', () => {
  it('reminds at the interval, escalates to the second approver, then denies at the deadline and says why', async () => {
    const plan = {
      name: 'night deploy',
      steps: [
        {
          id: 'deploy',
          gate: 'ship v2 tonight?',
          approval: {
            timeout: '1h',
            remind: '20m',
            approvers: ['test phone'],
            escalate: { after: '30m', to: ['on-call phone'] },
          },
        },
      ],
    };
    const { planId, workflowId } = await submitPlan(env.client, plan, { proposer: 'test' });
    const tag = gateTag(workflowId, 'deploy');
    await phone.next((e) => e.sequence_id === tag, 10_000);
    expect(messagesFor(onCall, tag)).toEqual([]);

    // Each sleep stops a second past a timer, so the notice it starts runs in real time (a longer
    // skip would also skip past the notice activity's own heartbeat timeout).
    const MIN = 60_000;
    const reminder = 'Reminder: approval needed: deploy';
    await env.sleep(20 * MIN + 1000);
    await phone.next((e) => e.sequence_id === tag && e.title === reminder, 10_000);
    expect(messagesFor(onCall, tag)).toEqual([]);

    await env.sleep(10 * MIN);
    const escalated = await onCall.next((e) => e.sequence_id === tag, 10_000);
    expect(escalated.title).toBe('Escalated: approval needed: deploy');
    expect(escalated.priority).toBe(5);

    await env.sleep(10 * MIN);
    await phone.next(() => messagesFor(phone, tag).filter((t) => t === reminder).length === 2, 10_000);
    await env.sleep(20 * MIN);
    // Both devices are told how it ended, on the same notification.
    for (const subscriber of [phone, onCall]) {
      const decided = await subscriber.next(
        (e) => e.sequence_id === tag && e.title === 'Decided: deploy',
        10_000,
      );
      expect(decided.message).toContain('no decision by the deadline, denied (fail-closed)');
    }
    const view = await planView(env.client, planId);
    const step = view.steps[0]!;
    expect(step.status).toBe('timed_out');
    expect(step.error).toBe('no decision within 1h: denied (fail-closed)');
    expect(step.remindersSent).toBe(2); // at 20m and 40m; the next would be at the deadline
    const escalatedAfter = Date.parse(step.escalatedAt!) - Date.parse(step.awaitingSince!);
    expect(escalatedAfter).toBeGreaterThanOrEqual(30 * MIN);
    expect(escalatedAfter).toBeLessThan(30 * MIN + 5000);

    // The approver hears of the escalation too; the on-call phone only from the escalation on.
    expect(messagesFor(phone, tag)).toEqual([
      'Approval needed: deploy',
      reminder,
      'Escalated: approval needed: deploy',
      reminder,
      'Decided: deploy',
    ]);
    expect(messagesFor(onCall, tag)).toEqual([
      'Escalated: approval needed: deploy',
      reminder,
      'Decided: deploy',
    ]);

    // The history says it in words, with the durable timers' times.
    const timeline = await planTimeline(env.client, planId);
    const kinds = timeline.entries.map((e) => e.kind);
    expect(kinds.filter((k) => k === 'gate_reached')).toHaveLength(3);
    expect(kinds).toContain('gate_escalated');
    expect(timeline.entries.find((e) => e.kind === 'gate_escalated')!.text).toContain('on-call phone');
    // The executor released the workspace, and the plan closed denied.
    const ended = await env.client.workflow
      .getHandle(workflowId)
      .result()
      .catch((e: Error) => e);
    expect((ended as Error & { cause?: Error }).cause?.message).toBe(
      'plan "night deploy" failed: deploy timed out (no decision within 1h: denied (fail-closed))',
    );
  });
});

describe('an approval that arrives after the deadline', () => {
  it('is refused one second after the deadline, and the step stays denied', async () => {
    const plan = {
      name: 'two gates',
      steps: [
        {
          parallel: [
            { id: 'late', gate: 'quick one', approval: { timeout: '10m' } },
            { id: 'later', gate: 'slow one', approval: { timeout: '2h' } },
          ],
          failFast: false,
        },
      ],
    };
    const { planId, workflowId } = await submitPlan(env.client, plan, { proposer: 'test' });
    await phone.next((e) => e.sequence_id === gateTag(workflowId, 'late'), 10_000);
    const before = await planView(env.client, planId);
    const late = before.steps.find((s) => s.path === 'late')!;

    await env.sleep(10 * 60_000 + 1000);
    const nowMs = await env.currentTimeMs();
    const envelope = signApproval(
      {
        workflowId,
        runId: before.runId,
        stepPath: 'late',
        stepDigest: late.digest,
        decision: 'approve',
        nowMs,
        nonce: randomBytes(18).toString('base64url'),
      },
      phoneKey,
    );
    const { records } = await registryView(env.client);
    const refused = await env.client.workflow
      .getHandle(workflowId)
      .executeUpdate(approveUpdate, { args: [{ envelope, deviceRecords: records }] })
      .then(
        () => undefined,
        (e: unknown) => refusalOf(e),
      );
    expect(refused?.code).toMatch(/^(deadline_passed|not_awaiting)$/);
    const after = await planView(env.client, planId);
    const step = after.steps.find((s) => s.path === 'late')!;
    expect(step.status).toBe('timed_out');
    expect(step.approvals).toEqual([]);
    expect(step.error).toBe('no decision within 10m: denied (fail-closed)');
    await env.client.workflow.getHandle(workflowId).cancel();
  });
});
