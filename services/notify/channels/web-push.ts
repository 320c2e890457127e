/**
 * Web Push (RFC 8030) with VAPID (RFC 8292) and aes128gcm payload encryption (RFC 8291), by the
 * `web-push` package; the request is sent here (node:https) so every answer is classified the same way.
 * The `Topic` header is the gate's tag: a push service replaces an undelivered notice with a newer one.
 */
import type { Agent } from 'node:https';
import webpush from 'web-push';
import type { Notice } from '../../../core/notify/types.js';
import type { VapidKeys } from '../vapid.js';
import { classifyStatus, unreachable, type Channel, type SendAnswer, type Target } from './channel.js';
import { post } from './http.js';

export interface WebPushOptions {
  vapid: VapidKeys;
  subject: string;
  timeoutMs: number;
  /** TLS agent for push services (tests trust a local endpoint's certificate with it). */
  agent?: Agent | undefined;
}

/** Seconds the push service keeps the notice for an offline device: until the deadline, at least a minute. */
export function pushTtlSeconds(notice: Notice, nowMs = Date.now()): number {
  if (!notice.gate) return 3600;
  return Math.max(60, Math.ceil((Date.parse(notice.gate.deadline) - nowMs) / 1000));
}

export function webPushChannel(options: WebPushOptions): Channel {
  return {
    name: 'webPush',
    async send(target: Target, notice: Notice): Promise<SendAnswer> {
      const subscription = target.subscription;
      if (!subscription)
        return { ok: false, verdict: 'refused', detail: 'no subscription keys for this endpoint' };
      let request: ReturnType<typeof webpush.generateRequestDetails>;
      try {
        request = webpush.generateRequestDetails(
          { endpoint: subscription.endpoint, keys: subscription.keys },
          JSON.stringify(notice),
          {
            vapidDetails: {
              subject: options.subject,
              publicKey: options.vapid.publicKey,
              privateKey: options.vapid.privateKey,
            },
            TTL: pushTtlSeconds(notice),
            urgency: notice.kind === 'decided' ? 'normal' : 'high',
            topic: notice.tag,
            contentEncoding: 'aes128gcm',
          },
        );
      } catch (error) {
        // Bad keys in the subscription: it can never work.
        return {
          ok: false,
          verdict: 'gone',
          detail: `the subscription cannot be encrypted to: ${(error as Error).message}`,
        };
      }
      try {
        const answer = await post(request.endpoint, {
          headers: request.headers as Record<string, string | number>,
          body: request.body ?? '',
          timeoutMs: options.timeoutMs,
          agent: options.agent,
        });
        const retryAfter = answer.headers['retry-after'];
        return classifyStatus(
          answer.status,
          answer.body,
          Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
        );
      } catch (error) {
        return unreachable('push service', error);
      }
    },
  };
}
