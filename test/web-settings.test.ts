/**
 * The Settings screen (`#/settings`) end to end, in headless Chromium at a phone's 390 × 844,
 * against the real API, a real Temporal server and the real control worker, with a local
 * ntfy-protocol server on the other side (real ntfy cannot be installed here). Each test joins a
 * fresh phone (its own device, so its own settings): turning ntfy on and a test notification
 * reaching a subscriber of the topic the screen shows; quiet hours kept by the server across a
 * reload and an unknown time zone refused; Web Push failing honestly where no push service can be
 * reached; and the test button with no channel on, or with the ntfy server down.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CSRF_HEADER } from '../api/plugins/auth.js';
import { readNotifySettings } from '../services/notify/settings.js';
import { PROJECT_ROOT } from '../workers/config.js';
import { login, startApi, type ApiUnderTest, type DeviceSession } from './support/api.js';
import { launchPhone, saveScreenshot, type Phone } from './support/browser.js';
import { startNtfyServer, subscribe, type NtfyServer } from './support/ntfy-server.js';
import { freePort } from './support/ports.js';
import { waitUntil } from './support/process-stack.js';
import { joinByInvitation } from './support/join-phone.js';
import { startTestStack, type TestStack } from './support/stack.js';

const NTFY_TOKEN = `tk_${randomBytes(12).toString('hex')}`;
const TEST_TITLE = 'Countersign test notification';

/** What `GET /api/notify/settings` answers (api/routes/notify.ts). */
interface SettingsReply {
  settings: {
    ntfy: { enabled: boolean; topic: string };
    webPush: { enabled: boolean; subscriptions: { endpoint: string; addedAt: string }[] };
    fcm: { enabled: boolean; tokens: number };
    quietHours: { start: string; end: string; timeZone: string } | null;
  };
  offer: { ntfyServer?: string; webPushPublicKey?: string; fcm: boolean };
}

/** A phone that joined as its own device, with the Settings screen open. */
interface SettingsPhone {
  context: BrowserContext;
  page: Page;
  keyId: string;
  /** Uncaught errors of the page. */
  errors: string[];
}

let stack: TestStack;
let api: ApiUnderTest;
let ntfy: NtfyServer;
let phone: Phone;
let url: string;
let root: DeviceSession;

const testId = (page: Page, id: string) => page.getByTestId(id);

/**
 * A fresh phone joins through an invitation of the stack's root device (confirmed as the Devices
 * screen does) and opens Settings. `grantNotifications` grants the permission before anything runs.
 */
async function joinPhone(name: string, grantNotifications = false): Promise<SettingsPhone> {
  const context = await phone.newContext({ serviceWorkers: 'allow' });
  if (grantNotifications) await context.grantPermissions(['notifications'], { origin: url });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));

  const keyId = await joinByInvitation(page, { api, session: root, key: stack.root, url }, name);

  await testId(page, 'tab-settings').click();
  await testId(page, 'settings-screen').waitFor();
  await testId(page, 'settings-save').waitFor();
  return { context, page, keyId, errors };
}

/** This device's settings as the server keeps them, read by the page with its own session. */
function settingsOf(page: Page): Promise<SettingsReply> {
  return page.evaluate(async () => {
    const response = await fetch('/api/notify/settings');
    if (!response.ok)
      throw new Error(`GET /api/notify/settings: ${response.status} ${await response.text()}`);
    return (await response.json()) as SettingsReply;
  });
}

/** Turns ntfy on for this device with the screen's toggle and Save, and waits for "Saved". */
async function turnNtfyOn(page: Page): Promise<void> {
  await testId(page, 'settings-ntfy-toggle').check();
  await testId(page, 'settings-save').click();
  await testId(page, 'settings-saved').waitFor();
}

beforeAll(async () => {
  if (!existsSync(join(PROJECT_ROOT, 'ui', 'dist', 'index.html')))
    throw new Error('the web app is not built: run npm run build:ui (./scripts/setup does it)');
  ntfy = await startNtfyServer({ token: NTFY_TOKEN });
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  stack = await startTestStack('web-settings', {
    control: {
      notify: {
        publicUrl: url,
        ntfy: { server: ntfy.url, publicServer: ntfy.url, token: NTFY_TOKEN },
        vapidSubject: 'mailto:ops@countersign.example.test',
        allowLocalPushEndpoints: true,
        requestTimeoutMs: 3000,
      },
    },
  });
  api = await startApi(stack, { COUNTERSIGN_API_PORT: String(port) });
  await api.app.listen({ host: '127.0.0.1', port });
  root = await login(api, stack.root);
  await waitUntil(
    async () => {
      const { offer } = await readNotifySettings(stack.client);
      return offer.webPushPublicKey && offer.ntfyServer;
    },
    'the notification offer (ntfy and Web Push)',
    20_000,
  );
  phone = await launchPhone();
});

afterAll(async () => {
  await phone?.close();
  await api?.close();
  await stack?.close();
  await ntfy?.close();
});

describe('the Settings screen on a phone', () => {
  it('turns ntfy on: shows the server and this device’s topic, and a subscriber of that topic gets the test notification', async () => {
    const { page, keyId, errors } = await joinPhone('ntfy phone');
    expect(await testId(page, 'settings-ntfy-toggle').isChecked()).toBe(false);

    await turnNtfyOn(page);
    const kept = (await readNotifySettings(stack.client)).devices[keyId]?.ntfy;
    expect(kept?.enabled).toBe(true);
    const serverTopic = kept?.topic;
    expect(serverTopic).toMatch(/^[-_A-Za-z0-9]{1,64}$/);
    expect(await testId(page, 'settings-ntfy-server').textContent()).toBe(ntfy.url);
    const topic = (await testId(page, 'settings-ntfy-topic').textContent())!.trim();
    expect(topic).toBe(serverTopic);
    expect((await testId(page, 'settings-ntfy-command').textContent())!.trim()).toBe(
      `ntfy subscribe ${ntfy.url}/${topic}`,
    );

    const subscriber = await subscribe(ntfy.url, topic, NTFY_TOKEN);
    try {
      expect(subscriber.events.filter((e) => e.event === 'message')).toEqual([]);
      await testId(page, 'settings-test').click();
      const received = await subscriber.next((e) => e.event === 'message', 20_000);
      expect(received).toMatchObject({
        topic,
        title: TEST_TITLE,
        message: 'Notifications reach this device by ntfy.',
      });
      expect(received.tags).toContain('test');

      const outcome = testId(page, 'settings-test-outcome');
      await outcome.first().waitFor({ timeout: 20_000 });
      expect(await outcome.count()).toBe(1);
      expect(await outcome.getAttribute('data-channel')).toBe('ntfy');
      expect(await outcome.getAttribute('data-status')).toBe('sent');
      expect(await outcome.textContent()).toContain(`ntfy topic ${topic.slice(0, 16)}…`);
      await expect.poll(() => testId(page, 'settings-test').isEnabled()).toBe(true);
      await saveScreenshot(page, 'settings-01-ntfy-test-sent');
    } finally {
      subscriber.close();
    }
    expect(errors).toEqual([]);
  });

  it('keeps quiet hours on the server across a reload, and refuses an unknown time zone without saving it', async () => {
    const { page, errors } = await joinPhone('quiet phone');
    expect((await settingsOf(page)).settings.quietHours).toBeNull();

    await testId(page, 'settings-quiet-toggle').check();
    await testId(page, 'settings-quiet-start').fill('23:15');
    await testId(page, 'settings-quiet-end').fill('06:45');
    await testId(page, 'settings-quiet-zone').fill('Asia/Kolkata');
    await testId(page, 'settings-save').click();
    await testId(page, 'settings-saved').waitFor();
    const kept = { start: '23:15', end: '06:45', timeZone: 'Asia/Kolkata' };
    expect((await settingsOf(page)).settings.quietHours).toEqual(kept);

    await page.reload();
    await testId(page, 'settings-screen').waitFor();
    await testId(page, 'settings-quiet-zone').waitFor();
    expect(await testId(page, 'settings-quiet-toggle').isChecked()).toBe(true);
    expect(await testId(page, 'settings-quiet-start').inputValue()).toBe('23:15');
    expect(await testId(page, 'settings-quiet-end').inputValue()).toBe('06:45');
    expect(await testId(page, 'settings-quiet-zone').inputValue()).toBe('Asia/Kolkata');

    const unknown = 'Mars/Olympus_Mons';
    await testId(page, 'settings-quiet-zone').fill(unknown);
    const problem = testId(page, 'settings-quiet-problem');
    await problem.waitFor();
    expect(await problem.textContent()).toContain(`“${unknown}” is not a time zone`);
    expect(await problem.textContent()).toContain('Europe/Paris');
    expect(await testId(page, 'settings-save').isDisabled()).toBe(true);
    await testId(page, 'settings-save').click({ force: true });
    expect((await settingsOf(page)).settings.quietHours).toEqual(kept);

    // The server refuses it too, should a client skip the screen's check.
    const refused = await page.evaluate(
      async ({ timeZone, csrfHeader }) => {
        const session = (await (await fetch('/api/session')).json()) as { csrfToken: string };
        const response = await fetch('/api/notify/settings', {
          method: 'PUT',
          headers: { 'content-type': 'application/json', [csrfHeader]: session.csrfToken },
          body: JSON.stringify({
            ntfy: { enabled: false },
            webPush: { enabled: false },
            fcm: { enabled: false },
            quietHours: { start: '23:15', end: '06:45', timeZone },
          }),
        });
        return { status: response.status, body: (await response.json()) as unknown };
      },
      { timeZone: unknown, csrfHeader: CSRF_HEADER },
    );
    expect(refused).toMatchObject({
      status: 400,
      body: { error: { code: 'invalid_settings', message: expect.stringContaining(unknown) as string } },
    });
    expect((await settingsOf(page)).settings.quietHours).toEqual(kept);
    expect(errors).toEqual([]);
  });

  it('says the push service could not be reached when Web Push is turned on with permission granted, and keeps no subscription', async () => {
    const { page, keyId, errors } = await joinPhone('push phone, allowed', true);
    await page.evaluate('navigator.serviceWorker.ready');
    const status = testId(page, 'settings-webpush-status');
    await expect.poll(() => status.getAttribute('data-state')).toBe('off');

    await testId(page, 'settings-webpush-enable').click();
    const error = testId(page, 'settings-webpush-error');
    await error.waitFor({ timeout: 20_000 });
    const text = (await error.textContent())!;
    expect(text).toContain("This browser's push service could not be reached");
    expect(text).toContain('notifications will come by ntfy if enabled; nothing else changed');
    expect(await testId(page, 'settings-webpush-note').count()).toBe(0);
    expect(await status.getAttribute('data-state')).toBe('off');
    expect(await testId(page, 'settings-webpush-enable').isEnabled()).toBe(true);

    const kept = await settingsOf(page);
    expect(kept.settings.webPush).toEqual({ enabled: false, subscriptions: [] });
    expect((await readNotifySettings(stack.client)).devices[keyId]?.webPush.subscriptions ?? []).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('says notifications are not permitted when Web Push is turned on without the permission, and keeps no subscription', async () => {
    const { page, keyId, errors } = await joinPhone('push phone, not allowed');
    await testId(page, 'settings-webpush-enable').click();
    const error = testId(page, 'settings-webpush-error');
    await error.waitFor({ timeout: 20_000 });
    const text = (await error.textContent())!;
    expect(text).toMatch(/permission/);
    expect(text).toContain('nothing was subscribed');

    expect((await settingsOf(page)).settings.webPush).toEqual({ enabled: false, subscriptions: [] });
    expect((await readNotifySettings(stack.client)).devices[keyId]?.webPush.subscriptions ?? []).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('says nothing was sent when no channel is on, and shows a failed ntfy outcome naming the problem while the server is down', async () => {
    const { page, errors } = await joinPhone('test-button phone');
    await testId(page, 'settings-test').click();
    const empty = testId(page, 'settings-test-empty');
    await empty.waitFor({ timeout: 20_000 });
    expect(await empty.textContent()).toContain('No channel is on for this device, so nothing was sent.');
    expect(await testId(page, 'settings-test-outcome').count()).toBe(0);

    await turnNtfyOn(page);
    const outcome = testId(page, 'settings-test-outcome');
    await ntfy.setFault('down');
    try {
      await testId(page, 'settings-test').click();
      await outcome.first().waitFor({ timeout: 20_000 });
      expect(await outcome.count()).toBe(1);
      expect(await outcome.getAttribute('data-channel')).toBe('ntfy');
      expect(await outcome.getAttribute('data-status')).toBe('failed');
      expect(await outcome.textContent()).toMatch(/ntfy server unreachable: ECONN(REFUSED|RESET)/);
      expect(await testId(page, 'settings-test-empty').count()).toBe(0);
    } finally {
      await ntfy.setFault('none');
    }

    // Still usable: the same button, tapped again once the server is back, reports it sent.
    await expect.poll(() => testId(page, 'settings-test').isEnabled()).toBe(true);
    await testId(page, 'settings-test').click();
    await expect.poll(() => outcome.first().getAttribute('data-status'), { timeout: 20_000 }).toBe('sent');
    expect(errors).toEqual([]);
  });
});
