/**
 * One-tap decisions from a Web Push notification, end to end: a phone joins in headless Chromium
 * (its key non-extractable in IndexedDB), registers a push subscription through the API, and a
 * plan reaching its gate makes the real control worker encrypt a notice to the local Web Push
 * endpoint, which decrypts it. Headless Chromium cannot reach a push service, so the test hands
 * that decrypted notice to the app's service worker as a push event, reads the notification it
 * shows, and taps it: the worker checks the step, signs with the phone's key and submits, and
 * the outcome replaces the notification. Tampered, expired and refused notices sign nothing (or
 * show the server's refusal); a risky step offers Review only, which opens the app.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BrowserContext, Frame, Page, Worker } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CSRF_HEADER } from '../api/plugins/auth.js';
import { gateTag } from '../core/notify/notice.js';
import type { Notice } from '../core/notify/types.js';
import { readNotifySettings } from '../services/notify/settings.js';
import { decide, planView, submitPlan } from '../services/plans.js';
import { PROJECT_ROOT } from '../workers/config.js';
import { login, startApi, type ApiUnderTest, type DeviceSession } from './support/api.js';
import { launchPhone, saveScreenshot, type Phone } from './support/browser.js';
import { stepOf, waitForStep, waitForView } from './support/plans.js';
import { freePort } from './support/ports.js';
import { waitUntil } from './support/process-stack.js';
import { joinByInvitation } from './support/join-phone.js';
import { startTestStack, type TestStack } from './support/stack.js';
import { startWebPushEndpoint, type WebPushEndpoint } from './support/web-push-endpoint.js';

/** What a notification shows, as read back from `registration.getNotifications`. */
interface Shown {
  title: string;
  body: string;
  actions: string[];
  data: unknown;
}

/** A one-tap outcome (ui/src/sw/decide.ts), the data of the notification that replaces the notice. */
interface Outcome {
  outcome: 'applied' | 'refused' | 'not_signed';
  code?: string;
  message: string;
  url: string;
}

/** The parts of the service worker's global scope used here (this file compiles without the WebWorker library). */
interface WorkerScope {
  PushEvent: new (type: 'push', init: { data: string }) => Event;
  NotificationEvent: new (
    type: 'notificationclick',
    init: { notification: WorkerNotification; action: string },
  ) => Event;
  registration: { getNotifications(filter: { tag: string }): Promise<WorkerNotification[]> };
  dispatchEvent(event: Event): boolean;
  countersignLastAction?: Promise<unknown>;
}

interface WorkerNotification {
  title: string;
  body: string;
  actions: { action: string }[];
  data: unknown;
}

interface GateNotice {
  notice: Notice & { gate: NonNullable<Notice['gate']> };
  tag: string;
}

let stack: TestStack;
let api: ApiUnderTest;
let push: WebPushEndpoint;
let phone: Phone;
let context: BrowserContext;
let page: Page;
let sw: Worker;
let url: string;
let root: DeviceSession;
let phoneKeyId: string;
let subscriptionEndpoint: string;

const PHONE_NAME = 'pocket phone';
const ONE_TAP_REASON = 'one-tap from a notification';

const gatePlan = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  steps: [{ id: 'deploy', run: 'echo deployed' }],
  ...extra,
});

/** The phone joins through an invitation of the stack's root device. */
const joinPhone = (name: string) =>
  joinByInvitation(page, { api, session: root, key: stack.root, url }, name);

/**
 * Web Push on for this device, with the local endpoint's subscription: through the API with the
 * page's own session, as the settings screen would after `pushManager.subscribe` (which headless
 * Chromium cannot do).
 */
async function registerPushSubscription(): Promise<string> {
  const subscription = push.createSubscription();
  const replies = await page.evaluate(
    async ({ subscription, csrfHeader }) => {
      const session = (await (await fetch('/api/session')).json()) as { csrfToken: string };
      const headers = { 'content-type': 'application/json', [csrfHeader]: session.csrfToken };
      const put = await fetch('/api/notify/settings', {
        method: 'PUT',
        headers,
        body: JSON.stringify({
          ntfy: { enabled: false },
          webPush: { enabled: true },
          fcm: { enabled: false },
          quietHours: null,
        }),
      });
      const add = await fetch('/api/notify/web-push', {
        method: 'POST',
        headers,
        body: JSON.stringify({ subscription }),
      });
      return { put: put.status, add: add.status, settings: (await add.json()) as unknown };
    },
    { subscription, csrfHeader: CSRF_HEADER },
  );
  expect(replies, JSON.stringify(replies)).toMatchObject({
    put: 200,
    add: 200,
    settings: {
      settings: { webPush: { enabled: true, subscriptions: [{ endpoint: subscription.endpoint }] } },
    },
  });
  return subscription.endpoint;
}

/** The gate notice the control worker sent to this phone's subscription, as the endpoint decrypted it. */
async function gateNotice(workflowId: string, stepPath: string): Promise<GateNotice> {
  const tag = gateTag(workflowId, stepPath);
  const delivery = await push.waitFor((d) => {
    const notice = d.payload as Notice | undefined;
    return d.subscriptionEndpoint === subscriptionEndpoint && notice?.tag === tag && notice.kind === 'gate';
  }, 15_000);
  const notice = delivery.payload as GateNotice['notice'];
  expect(notice.gate).toMatchObject({ workflowId, stepPath });
  return { notice, tag };
}

/** Dispatches `text` to the service worker as a push and reads back the notification it shows under `tag`. */
function pushToWorker(text: string, tag: string): Promise<Shown | undefined> {
  return sw.evaluate(
    async ({ text, tag }) => {
      const scope = globalThis as unknown as WorkerScope;
      scope.dispatchEvent(new scope.PushEvent('push', { data: text }));
      await scope.countersignLastAction;
      const [shown] = await scope.registration.getNotifications({ tag });
      return (
        shown && {
          title: shown.title,
          body: shown.body,
          actions: shown.actions.map((a) => a.action),
          data: shown.data,
        }
      );
    },
    { text, tag },
  );
}

/** Taps `action` on the notification under `tag`; the click's result and what shows under the tag afterwards. */
function tapInWorker(tag: string, action: string): Promise<{ result: unknown; after: Shown | undefined }> {
  return sw.evaluate(
    async ({ tag, action }) => {
      const scope = globalThis as unknown as WorkerScope;
      const [notification] = await scope.registration.getNotifications({ tag });
      if (!notification) throw new Error(`no notification is shown under ${tag}`);
      scope.dispatchEvent(new scope.NotificationEvent('notificationclick', { notification, action }));
      const result = await scope.countersignLastAction;
      const [after] = await scope.registration.getNotifications({ tag });
      return {
        result,
        after: after && {
          title: after.title,
          body: after.body,
          actions: after.actions.map((a) => a.action),
          data: after.data,
        },
      };
    },
    { tag, action },
  );
}

/** Shows `notice` (as a push would carry it) and taps `action`: the one-tap outcome and the notification after. */
async function showAndTap(
  notice: Notice,
  tag: string,
  action: 'approve' | 'deny',
): Promise<{ outcome: Outcome; after: Shown | undefined }> {
  const shown = await pushToWorker(JSON.stringify(notice), tag);
  expect(shown?.actions).toEqual(['approve', 'deny']);
  const { result, after } = await tapInWorker(tag, action);
  return { outcome: result as Outcome, after };
}

async function submitAwaiting(
  plan: Record<string, unknown>,
  paths: string[] = ['deploy'],
): Promise<{ planId: string; workflowId: string }> {
  const submitted = await submitPlan(stack.client, plan, { proposer: 'test' });
  await waitForView(stack.client, submitted.planId, (v) =>
    paths.every((p) => stepOf(v, p)?.status === 'awaiting_approval'),
  );
  return submitted;
}

beforeAll(async () => {
  if (!existsSync(join(PROJECT_ROOT, 'ui', 'dist', 'sw.js')))
    throw new Error('the web app is not built: run npm run build:ui (./scripts/setup does it)');
  push = await startWebPushEndpoint();
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  stack = await startTestStack('web-push-sw', {
    control: {
      notify: {
        publicUrl: url,
        vapidSubject: 'mailto:ops@countersign.example.test',
        allowLocalPushEndpoints: true,
        requestTimeoutMs: 3000,
      },
      notifier: { webPushAgent: push.agent },
    },
  });
  api = await startApi(stack, { COUNTERSIGN_API_PORT: String(port) });
  await api.app.listen({ host: '127.0.0.1', port });
  root = await login(api, stack.root);
  await waitUntil(
    async () => (await readNotifySettings(stack.client)).offer.webPushPublicKey,
    'the notification offer',
    20_000,
  );

  phone = await launchPhone();
  context = await phone.newContext({ serviceWorkers: 'allow' });
  await context.grantPermissions(['notifications'], { origin: url });
  page = await context.newPage();
  phoneKeyId = await joinPhone(PHONE_NAME);
  const registered = context.serviceWorkers()[0] ? undefined : context.waitForEvent('serviceworker');
  await page.evaluate('navigator.serviceWorker.ready');
  sw = context.serviceWorkers()[0] ?? (await registered)!;
  subscriptionEndpoint = await registerPushSubscription();
});

afterAll(async () => {
  await phone?.close();
  await api?.close();
  await stack?.close();
  await push?.close();
});

describe('one tap on a Web Push notification', () => {
  it('approves without opening the app: the phone’s key signs, the step runs, the outcome says Approved', async () => {
    const { planId, workflowId } = await submitAwaiting(gatePlan('ship from the pocket'));
    const { notice, tag } = await gateNotice(workflowId, 'deploy');
    expect(notice.gate.oneTap).toBe(true);

    const navigations: string[] = [];
    const onNavigated = (frame: Frame) => navigations.push(frame.url());
    page.on('framenavigated', onNavigated);
    const before = { url: page.url(), pages: context.pages().length };
    const shown = await pushToWorker(JSON.stringify(notice), tag);
    expect(shown).toMatchObject({ title: 'Approval needed: deploy', actions: ['approve', 'deny'] });
    expect(shown?.data).toEqual(notice);

    const { result, after } = await tapInWorker(tag, 'approve');
    page.off('framenavigated', onNavigated);
    expect(result).toMatchObject({ outcome: 'applied', message: 'deploy is approved; the step runs now.' });
    expect(after).toMatchObject({ title: 'Approved', data: { outcome: 'applied' } });
    expect((result as Outcome).url).toBe(`${url}/#/approve/${workflowId}/deploy`);

    const view = await waitForStep(stack.client, planId, 'deploy', 'succeeded');
    expect(stepOf(view, 'deploy').approvals).toEqual([
      expect.objectContaining({
        keyId: phoneKeyId,
        deviceName: PHONE_NAME,
        decision: 'approve',
        reason: ONE_TAP_REASON,
        auto: false,
      }),
    ]);
    expect(navigations).toEqual([]);
    expect(page.url()).toBe(before.url);
    expect(context.pages()).toHaveLength(before.pages);

    await page.goto(`${url}/#/plans/${workflowId}`);
    const chip = page.getByTestId('step-status-deploy');
    await expect.poll(() => chip.getAttribute('data-status'), { timeout: 15_000 }).toBe('succeeded');
    await saveScreenshot(page, 'push-01-approved-from-notification');
  });

  it('denies from the notification: the step is denied, the plan fails, the outcome says Denied', async () => {
    const { planId, workflowId } = await submitAwaiting(gatePlan('not from the pocket'));
    const { notice, tag } = await gateNotice(workflowId, 'deploy');
    const { outcome, after } = await showAndTap(notice, tag, 'deny');
    expect(outcome).toMatchObject({ outcome: 'applied', message: 'deploy is denied; it will not run.' });
    expect(after).toMatchObject({ title: 'Denied', data: { outcome: 'applied' } });
    const view = await waitForView(stack.client, planId, (v) => v.status === 'failed');
    expect(stepOf(view, 'deploy')).toMatchObject({
      status: 'denied',
      approvals: [expect.objectContaining({ keyId: phoneKeyId, decision: 'deny', reason: ONE_TAP_REASON })],
    });
  });

  it('signs nothing for a tampered notice (another digest, another awaiting step, another run) and says why', async () => {
    const plan = {
      name: 'two gates',
      steps: [
        {
          parallel: [
            { id: 'deploy', run: 'echo deployed' },
            { id: 'migrate', run: 'echo migrated' },
          ],
        },
      ],
    };
    const { planId, workflowId } = await submitAwaiting(plan, ['deploy', 'migrate']);
    const { notice, tag } = await gateNotice(workflowId, 'deploy');
    const other = await gateNotice(workflowId, 'migrate');
    expect(other.notice.gate.stepDigest).not.toBe(notice.gate.stepDigest);

    const flipped = notice.gate.stepDigest.replace(/^./, (c) => (c === '0' ? '1' : '0'));
    const tampered: { change: Partial<Notice['gate']>; code: string; says: RegExp }[] = [
      { change: { stepDigest: flipped }, code: 'step_changed', says: /step changed .*altered/ },
      { change: { stepPath: 'migrate' }, code: 'step_changed', says: /step changed .*altered/ },
      { change: { runId: `${notice.gate.runId}-other` }, code: 'run_changed', says: /another run/ },
    ];
    for (const { change, code, says } of tampered) {
      const { outcome, after } = await showAndTap(
        { ...notice, gate: { ...notice.gate, ...change } },
        tag,
        'approve',
      );
      expect(outcome, JSON.stringify(change)).toMatchObject({ outcome: 'not_signed', code });
      expect(outcome.message).toMatch(says);
      expect(outcome.message).toContain('Nothing was signed');
      expect(after).toMatchObject({ title: 'Not signed', body: outcome.message, data: { code } });
    }
    const view = await planView(stack.client, planId);
    for (const path of ['deploy', 'migrate'])
      expect(stepOf(view, path)).toMatchObject({ status: 'awaiting_approval', approvals: [] });
    await decide(stack.client, stack.root, planId, 'deploy', { decision: 'deny' });
  });

  it('refuses a notice whose deadline has passed, on the phone: the step is not touched', async () => {
    const { planId, workflowId } = await submitAwaiting(gatePlan('stale notice'));
    const { notice, tag } = await gateNotice(workflowId, 'deploy');
    const stale = {
      ...notice,
      gate: { ...notice.gate, deadline: new Date(Date.now() - 60_000).toISOString() },
    };
    const { outcome, after } = await showAndTap(stale, tag, 'approve');
    expect(outcome).toMatchObject({ outcome: 'not_signed', code: 'expired' });
    expect(outcome.message).toMatch(/^Expired: the deadline passed at .*; nothing was signed\.$/);
    expect(after).toMatchObject({ title: 'Not signed', data: { code: 'expired' } });
    expect(stepOf(await planView(stack.client, planId), 'deploy')).toMatchObject({
      status: 'awaiting_approval',
      approvals: [],
    });
    await decide(stack.client, stack.root, planId, 'deploy', { decision: 'deny' });
  });

  it('refuses a genuine notice tapped after its short approval timeout; the workflow closed the gate itself', async () => {
    const plan = {
      name: 'short gate',
      steps: [{ id: 'deploy', run: 'echo deployed', approval: { timeout: '3s' } }],
    };
    const { planId, workflowId } = await submitAwaiting(plan);
    const { notice, tag } = await gateNotice(workflowId, 'deploy');
    await sleep(Math.max(0, Date.parse(notice.gate.deadline) + 200 - Date.now()));
    const { outcome, after } = await showAndTap(notice, tag, 'approve');
    expect(outcome).toMatchObject({ outcome: 'not_signed', code: 'expired' });
    expect(after).toMatchObject({ title: 'Not signed', body: outcome.message });
    const view = await waitForStep(stack.client, planId, 'deploy', 'timed_out');
    expect(stepOf(view, 'deploy').approvals).toEqual([]);
  });

  it('shows the server’s refusal when another device decided while the phone was signing; a second tap says already decided', async () => {
    // A second gate keeps the plan running once `deploy` is denied: the plan itself answers the phone.
    const plan = {
      name: 'raced',
      steps: [
        {
          parallel: [
            { id: 'deploy', run: 'echo deployed' },
            { id: 'later', run: 'true' },
          ],
          failFast: false,
        },
      ],
    };
    const { planId, workflowId } = await submitAwaiting(plan, ['deploy', 'later']);
    const { notice, tag } = await gateNotice(workflowId, 'deploy');
    // The phone has checked the step and signed; before its approval arrives, the laptop denies.
    let raced = false;
    const approvals = `${url}/api/plans/${workflowId}/approvals`;
    await context.route(approvals, async (route) => {
      raced = true;
      await decide(stack.client, stack.root, planId, 'deploy', {
        decision: 'deny',
        reason: 'decided on the laptop first',
      });
      await route.continue();
    });
    try {
      const { outcome, after } = await showAndTap(notice, tag, 'approve');
      expect(raced).toBe(true);
      expect(outcome).toMatchObject({ outcome: 'refused', code: 'not_awaiting' });
      expect(outcome.message).toContain('step "deploy" is denied; it is not waiting for a decision');
      expect(outcome.message).toContain('Nothing was applied; open the app to review.');
      expect(after).toMatchObject({ title: 'Refused by the server', body: outcome.message });
    } finally {
      await context.unroute(approvals);
    }
    expect(stepOf(await planView(stack.client, planId), 'deploy')).toMatchObject({
      status: 'denied',
      approvals: [expect.objectContaining({ keyId: stack.root.keyId, decision: 'deny' })],
    });

    const again = await showAndTap(notice, tag, 'approve');
    expect(again.outcome).toMatchObject({ outcome: 'not_signed', code: 'already_decided' });
    expect(again.outcome.message).toMatch(/^Already decided: the step is .*denied.*Nothing was signed\.$/i);
    expect(again.after).toMatchObject({ title: 'Not signed', body: again.outcome.message });
    await decide(stack.client, stack.root, planId, 'later', { decision: 'deny' });
  });

  it('offers only Review for a step above the plan’s one-tap risk, and Review opens the app at its approval page', async () => {
    const { planId, workflowId } = await submitAwaiting(
      gatePlan('risky from the pocket', { policy: { oneTapUpTo: 'low' } }),
    );
    const { notice, tag } = await gateNotice(workflowId, 'deploy');
    expect(notice.gate).toMatchObject({ risk: 'medium', oneTap: false });
    const approvalPage = `${url}/#/approve/${workflowId}/deploy`;

    const windows = context.pages().length;

    // Approve is not offered; a crafted tap on it signs nothing and only opens the app.
    for (const action of ['approve', 'review']) {
      await page.goto(`${url}/#/inbox`);
      const shown = await pushToWorker(JSON.stringify(notice), tag);
      expect(shown?.actions).toEqual(['review']);
      const { result, after } = await tapInWorker(tag, action);
      expect(result, action).toBeUndefined();
      expect(after, action).toBeUndefined(); // the notification closes as the app opens
      // The app's open window is brought to the step's approval page; no second window.
      await expect.poll(() => page.url(), { timeout: 10_000 }).toBe(approvalPage);
      expect(context.pages()).toHaveLength(windows);
      await page.getByTestId('digest-verified').waitFor();
    }
    expect(stepOf(await planView(stack.client, planId), 'deploy')).toMatchObject({
      status: 'awaiting_approval',
      approvals: [],
    });
    await decide(stack.client, stack.root, planId, 'deploy', { decision: 'deny' });
  });
});
