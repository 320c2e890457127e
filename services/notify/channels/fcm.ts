/**
 * Firebase Cloud Messaging through `firebase-admin`: a data + notification message with the deep
 * link, high priority, kept until the approval's deadline, collapsed per gate. FCM is not end-to-end
 * encrypted: the message holds only what `buildNotice` allows.
 */
import { randomBytes } from 'node:crypto';
import type { Agent } from 'node:http';
import { readFile } from 'node:fs/promises';
import { cert, deleteApp, initializeApp, type App } from 'firebase-admin/app';
import { getMessaging, type Message } from 'firebase-admin/messaging';
import type { Notice } from '../../../core/notify/types.js';
import type { Channel, SendAnswer, Target } from './channel.js';

export interface FcmOptions {
  serviceAccountPath: string;
  /** Where firebase-admin's HTTP requests go; tests route them to a local server. */
  httpAgent?: Agent | undefined;
}

const GONE = new Set(['messaging/registration-token-not-registered', 'messaging/invalid-registration-token']);
const RETRY = new Set([
  'messaging/message-rate-exceeded',
  'messaging/device-message-rate-exceeded',
  'messaging/topics-message-rate-exceeded',
  'messaging/quota-exceeded',
  'messaging/server-unavailable',
  'messaging/internal-error',
  'messaging/unknown-error',
  'app/network-error',
  'app/network-timeout',
  'app/invalid-credential',
]);

export function fcmMessage(token: string, notice: Notice, nowMs = Date.now()): Message {
  const ttlMs = notice.gate ? Math.max(60_000, Date.parse(notice.gate.deadline) - nowMs) : 3600_000;
  const urgent = notice.kind !== 'decided';
  return {
    token,
    notification: { title: notice.title, body: notice.body },
    data: {
      v: '1',
      kind: notice.kind,
      tag: notice.tag,
      url: notice.url,
      notice: JSON.stringify(notice),
    },
    android: {
      priority: urgent ? 'high' : 'normal',
      ttl: ttlMs,
      collapseKey: notice.tag,
      notification: { tag: notice.tag },
    },
    apns: {
      headers: {
        'apns-priority': urgent ? '10' : '5',
        'apns-collapse-id': notice.tag,
        'apns-expiration': String(Math.floor((nowMs + ttlMs) / 1000)),
      },
    },
  };
}

export function fcmChannel(options: FcmOptions): Channel & { close(): Promise<void> } {
  let app: Promise<App> | undefined;
  const appFor = () =>
    (app ??= (async () => {
      const account = JSON.parse(await readFile(options.serviceAccountPath, 'utf8')) as {
        project_id?: unknown;
      };
      if (typeof account.project_id !== 'string')
        throw new Error(`${options.serviceAccountPath} has no project_id`);
      return initializeApp(
        {
          // By path, not object: firebase-admin sends the token request through the agent only then.
          credential: cert(options.serviceAccountPath, options.httpAgent),
          projectId: account.project_id,
          ...(options.httpAgent ? { httpAgent: options.httpAgent } : {}),
        },
        `countersign-${randomBytes(6).toString('hex')}`,
      );
    })());
  return {
    name: 'fcm',
    async send(target: Target, notice: Notice): Promise<SendAnswer> {
      let messaging;
      try {
        messaging = getMessaging(await appFor());
      } catch (error) {
        app = undefined;
        return {
          ok: false,
          verdict: 'refused',
          detail: `the FCM service account cannot be used: ${(error as Error).message}`,
        };
      }
      try {
        const name = await messaging.send(fcmMessage(target.id, notice));
        return { ok: true, detail: `accepted as ${name.split('/').pop()}` };
      } catch (error) {
        const code = (error as { code?: string }).code ?? 'unknown';
        const detail = `${code}: ${(error as Error).message}`.slice(0, 300);
        if (GONE.has(code)) return { ok: false, verdict: 'gone', detail };
        if (RETRY.has(code)) return { ok: false, verdict: 'retry', detail };
        return { ok: false, verdict: 'refused', detail };
      }
    },
    async close() {
      if (app) await deleteApp(await app).catch(() => undefined);
      app = undefined;
    },
  };
}
