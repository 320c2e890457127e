/**
 * The control worker's notifier: builds each notice once (core/notify/notice.ts), finds who is
 * told and where, delivers, and drops targets a channel says are gone.
 */
import type { Agent } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import type { Client } from '@temporalio/client';
import { buildNotice } from '../../core/notify/notice.js';
import { withinOneTapCeiling } from '../../core/notify/risk.js';
import type {
  ChannelName,
  ChannelOutcome,
  NoticeGate,
  NoticeKind,
  NotifyOffer,
} from '../../core/notify/types.js';
import { registryView } from '../devices.js';
import { resolveAudience, type Audience } from './audience.js';
import type { Channel, Target } from './channels/channel.js';
import { fcmChannel } from './channels/fcm.js';
import { ntfyChannel } from './channels/ntfy.js';
import { webPushChannel } from './channels/web-push.js';
import type { NotifyConfig } from './config.js';
import { deliver, type DeliveryReport } from './deliver.js';
import { DeliveryLedger } from './ledger.js';
import { changeNotifySettings, publishNotifyOffer, readNotifySettings } from './settings.js';
import type { VapidKeys } from './vapid.js';

/** One notice about one gate, as the plan workflow asks for it. */
export interface GateNoticeRequest {
  kind: Exclude<NoticeKind, 'test'>;
  /** 0 for the first notice, then one per reminder; with workflow, step and kind, the idempotency key. */
  attempt: number;
  planName: string;
  gate: NoticeGate;
  audience: Audience;
  /** For `decided`: what was decided, by whom, or why the gate closed. */
  outcome?: string | undefined;
}

export interface NotifierDependencies {
  client: Client;
  config: NotifyConfig;
  vapid?: VapidKeys | undefined;
  ledgerDir: string;
  /** firebase-admin's HTTP agent (tests route it to a local server). */
  fcmHttpAgent?: Agent | undefined;
  /** TLS agent for push services (tests trust a local endpoint with it). */
  webPushAgent?: HttpsAgent | undefined;
  afterSend?: ((target: Target) => void) | undefined;
}

export function noticeKey(request: Pick<GateNoticeRequest, 'kind' | 'attempt' | 'gate'>): string {
  return `${request.gate.workflowId}/${request.gate.stepPath}/${request.kind}/${request.attempt}`;
}

export class Notifier {
  readonly channels: Partial<Record<ChannelName, Channel>> = {};
  readonly ledger: DeliveryLedger;

  constructor(private readonly deps: NotifierDependencies) {
    const { config } = deps;
    this.ledger = new DeliveryLedger(deps.ledgerDir);
    if (config.ntfy)
      this.channels.ntfy = ntfyChannel({
        server: config.ntfy.server,
        token: config.ntfy.token,
        timeoutMs: config.requestTimeoutMs,
      });
    if (deps.vapid)
      this.channels.webPush = webPushChannel({
        vapid: deps.vapid,
        subject: config.vapidSubject,
        timeoutMs: config.requestTimeoutMs,
        agent: deps.webPushAgent,
      });
    if (config.fcmServiceAccountPath)
      this.channels.fcm = fcmChannel({
        serviceAccountPath: config.fcmServiceAccountPath,
        httpAgent: deps.fcmHttpAgent,
      });
  }

  get offer(): NotifyOffer {
    return {
      ...(this.deps.config.ntfy ? { ntfyServer: this.deps.config.ntfy.publicServer } : {}),
      ...(this.deps.vapid ? { webPushPublicKey: this.deps.vapid.publicKey } : {}),
      fcm: this.channels.fcm !== undefined,
    };
  }

  /** Tells devices (through the settings workflow) what this installation can send. */
  async publishOffer(): Promise<void> {
    await publishNotifyOffer(this.deps.client, this.offer, this.deps.config.allowLocalPushEndpoints);
  }

  async notifyGate(
    request: GateNoticeRequest,
    nowMs = Date.now(),
  ): Promise<DeliveryReport & { unknown: string[] }> {
    const ceiling = this.deps.config.oneTapCeiling ?? 'medium';
    const notice = buildNotice({
      kind: request.kind,
      planName: request.planName,
      publicUrl: this.deps.config.publicUrl,
      nowMs,
      gate: {
        ...request.gate,
        oneTap: request.gate.oneTap && withinOneTapCeiling(request.gate.risk, ceiling),
      },
      outcome: request.outcome,
    });
    const [registry, settings] = await Promise.all([
      registryView(this.deps.client),
      readNotifySettings(this.deps.client),
    ]);
    const audience = resolveAudience(request.audience, registry, settings, request.kind, nowMs);
    const report = await deliver({
      notice,
      noticeKey: noticeKey(request),
      targets: audience.targets,
      quiet: audience.quiet,
      channels: this.channels,
      ledger: this.ledger,
      afterSend: this.deps.afterSend,
    });
    await this.dropGone(report.gone);
    return { ...report, unknown: audience.unknown };
  }

  /** A test notice to every enabled channel of one device, whatever its quiet hours. */
  async notifyTest(keyId: string, nowMs = Date.now()): Promise<ChannelOutcome[]> {
    const [registry, settings] = await Promise.all([
      registryView(this.deps.client),
      readNotifySettings(this.deps.client),
    ]);
    const audience = resolveAudience({ approvers: [keyId] }, registry, settings, 'test', nowMs);
    const outcomes: ChannelOutcome[] = [];
    for (const target of audience.targets) {
      const notice = buildNotice({
        kind: 'test',
        planName: '',
        publicUrl: this.deps.config.publicUrl,
        nowMs,
        channelLabel: target.channel,
      });
      const report = await deliver({
        notice,
        noticeKey: `test/${keyId}/${nowMs}`,
        targets: [target],
        quiet: new Set(),
        retried: false,
        channels: this.channels,
        ledger: this.ledger,
      });
      outcomes.push(...report.outcomes);
      await this.dropGone(report.gone);
    }
    return outcomes;
  }

  private async dropGone(gone: Target[]): Promise<void> {
    for (const target of gone) {
      if (target.channel === 'ntfy') continue;
      await changeNotifySettings(this.deps.client, target.keyId, {
        type: 'dropTargets',
        channel: target.channel,
        targets: [target.id],
      }).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    const fcm = this.channels.fcm as (Channel & { close?: () => Promise<void> }) | undefined;
    await fcm?.close?.();
  }
}
