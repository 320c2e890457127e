/**
 * ntfy, over plain HTTP (JSON publishing, so titles may be any Unicode; a bearer access token).
 * One sequence id per gate: reminders and the final "decided" update the same notification on
 * ntfy ≥ 2.16. ntfy cannot sign, so it offers Review (a link to the approval page), never Approve.
 */
import { createHash } from 'node:crypto';
import type { Notice, Risk } from '../../../core/notify/types.js';
import { classifyStatus, unreachable, type Channel, type SendAnswer, type Target } from './channel.js';

export interface NtfyOptions {
  server: string;
  token?: string | undefined;
  timeoutMs: number;
}

const PRIORITY: Record<Risk, number> = { low: 3, medium: 4, high: 5 };

function priorityOf(notice: Notice): number {
  if (notice.kind === 'escalation') return 5;
  if (notice.kind === 'decided') return 2;
  if (notice.kind === 'test' || !notice.gate) return 3;
  return PRIORITY[notice.gate.risk];
}

/** The tag that marks one notice (gate, step, attempt) among the topic's messages. */
export function ntfyNoticeTag(noticeKey: string): string {
  return `n${createHash('sha256').update(noticeKey).digest('hex').slice(0, 20)}`;
}

export function ntfyMessage(topic: string, notice: Notice, noticeKey: string): Record<string, unknown> {
  return {
    topic,
    title: notice.title,
    message: notice.body,
    priority: priorityOf(notice),
    tags: ['countersign', notice.kind, ntfyNoticeTag(noticeKey)],
    click: notice.url,
    ...(notice.kind === 'decided' || notice.kind === 'test'
      ? {}
      : { actions: [{ action: 'view', label: 'Review', url: notice.url, clear: true }] }),
    sequence_id: notice.tag,
  };
}

export function ntfyChannel(options: NtfyOptions): Channel {
  const headers = (json: boolean): Record<string, string> => ({
    ...(json ? { 'content-type': 'application/json' } : {}),
    ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
  });
  return {
    name: 'ntfy',
    async send(target: Target, notice: Notice, noticeKey: string): Promise<SendAnswer> {
      let response: Response;
      try {
        response = await fetch(`${options.server}/`, {
          method: 'POST',
          headers: headers(true),
          body: JSON.stringify(ntfyMessage(target.id, notice, noticeKey)),
          signal: AbortSignal.timeout(options.timeoutMs),
        });
      } catch (error) {
        return unreachable('ntfy server', error);
      }
      const text = await response.text().catch(() => '');
      if (!response.ok)
        return classifyStatus(response.status, ntfyError(text), response.headers.get('retry-after'));
      let id = '';
      try {
        id = String((JSON.parse(text) as { id?: unknown }).id ?? '');
      } catch {
        // An answer that is not JSON still means it was published.
      }
      return { ok: true, detail: `published${id ? ` as message ${id}` : ''}`, httpStatus: response.status };
    },

    async delivered(target: Target, noticeKey: string): Promise<boolean | undefined> {
      const since = Math.floor(Date.now() / 1000) - 24 * 3600;
      try {
        const response = await fetch(`${options.server}/${target.id}/json?poll=1&since=${since}`, {
          headers: headers(false),
          signal: AbortSignal.timeout(options.timeoutMs),
        });
        if (!response.ok) return undefined;
        const marker = ntfyNoticeTag(noticeKey);
        return (await response.text())
          .split('\n')
          .filter(Boolean)
          .some((line) => {
            try {
              const event = JSON.parse(line) as { event?: string; tags?: string[] };
              return event.event === 'message' && event.tags?.includes(marker) === true;
            } catch {
              return false;
            }
          });
      } catch {
        return undefined;
      }
    },
  };
}

function ntfyError(text: string): string {
  try {
    return String((JSON.parse(text) as { error?: unknown }).error ?? text);
  } catch {
    return text;
  }
}
