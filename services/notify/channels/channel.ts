/** What every notification channel implements, and how an answer is classified. */
import type { ChannelName, Notice, WebPushSubscriptionRecord } from '../../../core/notify/types.js';

/** One place a notice goes: an ntfy topic, a browser's push subscription, an FCM token. */
export interface Target {
  channel: ChannelName;
  keyId: string;
  /** Stable and unique per channel (the topic, the endpoint, the token): the ledger's key. */
  id: string;
  /** Short and not secret: recorded in history and shown in the app. */
  label: string;
  subscription?: WebPushSubscriptionRecord | undefined;
}

export type SendAnswer =
  | { ok: true; detail: string; httpStatus?: number | undefined }
  | {
      ok: false;
      /** retry: down, rate-limited, 5xx. gone: the target no longer exists. refused: our request was wrong. */
      verdict: 'retry' | 'gone' | 'refused';
      detail: string;
      httpStatus?: number | undefined;
      retryAfterMs?: number | undefined;
    };

export interface Channel {
  readonly name: ChannelName;
  send(target: Target, notice: Notice, noticeKey: string): Promise<SendAnswer>;
  /**
   * After a worker died between sending and recording: whether that send arrived. `undefined`
   * when the channel cannot tell (the notice is then sent again; push channels replace by tag).
   */
  delivered?(target: Target, noticeKey: string): Promise<boolean | undefined>;
}

/**
 * Seconds or an HTTP date, as in `Retry-After`, kept between 1 s and a minute (the notice retry
 * policy's longest interval); undefined when absent or unreadable. Never 0: Temporal reads a zero
 * next-retry delay as "do not retry".
 */
export function retryAfterMs(header: string | null | undefined, nowMs = Date.now()): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - nowMs;
  if (Number.isNaN(ms)) return undefined;
  return Math.min(Math.max(ms, 1000), 60_000);
}

/** The answer for an HTTP status from a push service or ntfy. */
export function classifyStatus(status: number, said: string, retryAfter?: string | null): SendAnswer {
  const detail = `HTTP ${status}${said ? `: ${said.slice(0, 200)}` : ''}`;
  if (status >= 200 && status < 300) return { ok: true, detail, httpStatus: status };
  if (status === 404 || status === 410) return { ok: false, verdict: 'gone', detail, httpStatus: status };
  if (status === 429 || status === 408 || status >= 500)
    return {
      ok: false,
      verdict: 'retry',
      detail,
      httpStatus: status,
      retryAfterMs: retryAfterMs(retryAfter),
    };
  return { ok: false, verdict: 'refused', detail, httpStatus: status };
}

/** A request that never got an answer (refused connection, reset, timeout): worth another try. */
export function unreachable(what: string, error: unknown): SendAnswer {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const reason =
    (error as Error).name === 'TimeoutError'
      ? 'no answer in time'
      : (cause?.code ?? cause?.message ?? (error as Error).message ?? String(error));
  return { ok: false, verdict: 'retry', detail: `${what} unreachable: ${reason}` };
}

/** A short, non-secret name for a push endpoint or token. */
export function labelOf(channel: ChannelName, id: string): string {
  if (channel === 'webPush') {
    try {
      return `push service ${new URL(id).host}`;
    } catch {
      return 'push service';
    }
  }
  if (channel === 'fcm') return `FCM token …${id.slice(-6)}`;
  return `ntfy topic ${id.slice(0, 16)}…`;
}
