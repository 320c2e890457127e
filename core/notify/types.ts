/**
 * What a notification carries, and a device's notification settings. Shared by the control
 * worker (which sends), the API (which stores settings) and the web app's service worker (which
 * shows and acts on notices). No validation library: the service worker imports these types.
 */

import type { Risk } from '../plan/types.js';

export type { Risk };
export type ChannelName = 'ntfy' | 'webPush' | 'fcm';

/** Why a notice is sent. `decided` updates (or withdraws) the notices of a gate that closed. */
export type NoticeKind = 'gate' | 'reminder' | 'escalation' | 'decided' | 'test';

/**
 * The gate a notice is about: ids only. The step's digest lets the device check, before it
 * signs, that the step it reads now is the one it was told about.
 */
export interface NoticeGate {
  workflowId: string;
  runId: string;
  stepPath: string;
  stepDigest: string;
  /** ISO time after which the step is denied (fail-closed). */
  deadline: string;
  risk: Risk;
  /** The notification may offer Approve and Deny; otherwise only Review, which opens the app. */
  oneTap: boolean;
}

/**
 * A notice as it leaves the control plane, on every channel. Built only by `buildNotice`
 * (core/notify/notice.ts), which enforces what may be in it: never commands, arguments,
 * outputs or secrets (FCM is not end-to-end encrypted; ntfy servers may be public).
 */
export interface Notice {
  v: 1;
  kind: NoticeKind;
  /** One per gate: a later notice with the same tag replaces the earlier one on the device. */
  tag: string;
  title: string;
  body: string;
  /** Absolute deep link into the web app (the approval page, or the app itself). */
  url: string;
  gate?: NoticeGate | undefined;
  sentAt: string;
}

/** Quiet hours in the device's own time zone; escalations still come through. */
export interface QuietHours {
  /** "HH:MM", 24-hour clock. */
  start: string;
  end: string;
  /** IANA time zone, such as "Europe/Paris". */
  timeZone: string;
}

export interface WebPushSubscriptionRecord {
  endpoint: string;
  keys: { p256dh: string; auth: string };
  addedAt: string;
}

/** One device's settings, as stored. */
export interface DeviceNotifySettings {
  ntfy: { enabled: boolean; topic: string };
  webPush: { enabled: boolean; subscriptions: WebPushSubscriptionRecord[] };
  fcm: { enabled: boolean; tokens: string[] };
  quietHours?: QuietHours | undefined;
}

/** What this installation can send, published by the control worker when it starts. */
export interface NotifyOffer {
  /** The ntfy server devices subscribe to (its public address), when ntfy is configured. */
  ntfyServer?: string | undefined;
  /** The VAPID public key (base64url) for `PushManager.subscribe`. */
  webPushPublicKey?: string | undefined;
  fcm: boolean;
}

/** What happened on one channel for one target when a notice was sent. */
export interface ChannelOutcome {
  channel: ChannelName;
  /** The device the target belongs to. */
  keyId: string;
  /** A short, non-secret name for the target: the ntfy topic, a push endpoint's host, a token's tail. */
  target: string;
  status: 'sent' | 'already_sent' | 'failed' | 'gone' | 'quiet' | 'not_configured';
  /** What the channel answered (status code, message id) or why it failed. */
  detail: string;
  /** HTTP status when the channel answered one. */
  httpStatus?: number | undefined;
  at: string;
}
