/**
 * Sends one notice to every target, each at most once per notice key (workflow, step, notice kind
 * and attempt), whatever happens to the worker in between: the ledger says what was sent, and a
 * send interrupted before it was recorded is checked with the channel before it is repeated.
 */
import type { ChannelName, ChannelOutcome, Notice } from '../../core/notify/types.js';
import type { Channel, SendAnswer, Target } from './channels/channel.js';
import type { DeliveryLedger } from './ledger.js';

export interface Delivery {
  notice: Notice;
  noticeKey: string;
  targets: Target[];
  quiet: Set<string>;
  channels: Partial<Record<ChannelName, Channel>>;
  ledger: DeliveryLedger;
  /** A failure worth retrying will be retried (a gate's notice); false for a one-off test notice. */
  retried?: boolean | undefined;
  /** Test hook for fault tests: runs after a channel accepted a notice, before that is recorded. */
  afterSend?: ((target: Target) => void) | undefined;
}

export interface DeliveryReport {
  outcomes: ChannelOutcome[];
  /** Failures worth another try, with the longest wait any channel asked for. */
  retry: { targets: Target[]; afterMs?: number | undefined };
  /** Targets that no longer exist (the settings should drop them). */
  gone: Target[];
}

export async function deliver(delivery: Delivery): Promise<DeliveryReport> {
  const report: DeliveryReport = { outcomes: [], retry: { targets: [] }, gone: [] };
  const results = await Promise.all(delivery.targets.map((target) => deliverTo(delivery, target)));
  for (const [i, { outcome, answer }] of results.entries()) {
    const target = delivery.targets[i]!;
    report.outcomes.push(outcome);
    if (answer && !answer.ok && answer.verdict === 'retry') {
      report.retry.targets.push(target);
      if (answer.retryAfterMs !== undefined)
        report.retry.afterMs = Math.max(report.retry.afterMs ?? 0, answer.retryAfterMs);
    }
    if (answer && !answer.ok && answer.verdict === 'gone') report.gone.push(target);
  }
  return report;
}

async function deliverTo(
  delivery: Delivery,
  target: Target,
): Promise<{ outcome: ChannelOutcome; answer?: SendAnswer }> {
  const outcome = (
    status: ChannelOutcome['status'],
    detail: string,
    httpStatus?: number,
  ): ChannelOutcome => ({
    channel: target.channel,
    keyId: target.keyId,
    target: target.label,
    status,
    detail,
    ...(httpStatus === undefined ? {} : { httpStatus }),
    at: new Date().toISOString(),
  });
  const { ledger, noticeKey } = delivery;
  if (delivery.quiet.has(target.keyId))
    return { outcome: outcome('quiet', 'held back: the device is in its quiet hours') };
  const channel = delivery.channels[target.channel];
  if (!channel)
    return { outcome: outcome('not_configured', `${target.channel} is not configured on this installation`) };

  const earlier = await ledger.get(noticeKey, target.id);
  if (earlier?.state === 'refused')
    return {
      outcome: outcome(
        'failed',
        `${earlier.detail ?? 'refused'} (refused by an earlier attempt; not sent again)`,
      ),
    };
  if (earlier?.state === 'sent')
    return { outcome: outcome('already_sent', earlier.detail ?? 'sent by an earlier attempt') };
  if (earlier?.state === 'sending' && channel.delivered) {
    const arrived = await channel.delivered(target, noticeKey);
    if (arrived) {
      const detail = 'sent by an attempt that was interrupted before it recorded it (found on the server)';
      await ledger.mark(noticeKey, target.id, { state: 'sent', at: new Date().toISOString(), detail });
      return { outcome: outcome('already_sent', detail) };
    }
  }

  await ledger.mark(noticeKey, target.id, { state: 'sending', at: new Date().toISOString() });
  const answer = await channel.send(target, delivery.notice, noticeKey);
  if (answer.ok) {
    delivery.afterSend?.(target);
    await ledger.mark(noticeKey, target.id, {
      state: 'sent',
      at: new Date().toISOString(),
      detail: answer.detail,
    });
    return { outcome: outcome('sent', answer.detail, answer.httpStatus), answer };
  }
  if (answer.verdict === 'refused')
    await ledger.mark(noticeKey, target.id, {
      state: 'refused',
      at: new Date().toISOString(),
      detail: answer.detail,
    });
  else await ledger.forget(noticeKey, target.id);
  const status = answer.verdict === 'gone' ? 'gone' : 'failed';
  const detail =
    answer.verdict === 'retry' && delivery.retried !== false
      ? `${answer.detail} (will retry)`
      : answer.detail;
  return { outcome: outcome(status, detail, answer.httpStatus), answer };
}
