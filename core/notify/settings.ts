/**
 * Changes to a device's notification settings, applied by the settings workflow. Pure: the
 * workflow, the API and the tests all use these functions. A change that is not valid throws
 * NotifySettingsError with a sentence that says which value is wrong.
 */
import { checkQuietHours } from './quiet-hours.js';
import type { ChannelName, DeviceNotifySettings, QuietHours, WebPushSubscriptionRecord } from './types.js';

export const SETTINGS_LIMITS = { webPushSubscriptions: 5, fcmTokens: 5 } as const;

export class NotifySettingsError extends Error {
  override name = 'NotifySettingsError';
}

export type NotifyChange =
  | {
      type: 'preferences';
      ntfy: { enabled: boolean };
      webPush: { enabled: boolean };
      fcm: { enabled: boolean };
      quietHours: QuietHours | null;
    }
  | { type: 'addWebPush'; subscription: Omit<WebPushSubscriptionRecord, 'addedAt'> }
  | { type: 'removeWebPush'; endpoint: string }
  | { type: 'addFcmToken'; token: string }
  /** Targets a channel reported dead (a 404/410 push endpoint, an unregistered FCM token). */
  | { type: 'dropTargets'; channel: ChannelName; targets: string[] };

const NTFY_TOPIC = /^[-_A-Za-z0-9]{1,64}$/;
const BASE64URL = /^[A-Za-z0-9_-]+=*$/;

/** A new device's settings: nothing is sent until the device turns a channel on. */
export function defaultSettings(ntfyTopic: string): DeviceNotifySettings {
  if (!NTFY_TOPIC.test(ntfyTopic)) throw new NotifySettingsError(`"${ntfyTopic}" is not an ntfy topic`);
  return {
    ntfy: { enabled: false, topic: ntfyTopic },
    webPush: { enabled: false, subscriptions: [] },
    fcm: { enabled: false, tokens: [] },
  };
}

/** Host names and address literals of this machine and private networks. */
const LOCAL_HOST =
  /^(localhost|.*\.localhost|.*\.local|.*\.internal|127\.\d+\.\d+\.\d+|10\.\d+\.\d+\.\d+|192\.168\.\d+\.\d+|172\.(1[6-9]|2\d|3[01])\.\d+\.\d+|169\.254\.\d+\.\d+|0\.0\.0\.0|\[.*\])$/i;

/**
 * A push endpoint the control worker will POST to: https on a public host name, unless
 * `allowLocal` (a test installation). A device must not be able to aim the control plane at a
 * service on its own network. (A public name that resolves to a private address is not caught here.)
 */
export function checkPushEndpoint(endpoint: string, allowLocal: boolean): string | undefined {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return 'the push endpoint is not a URL';
  }
  if (endpoint.length > 1024) return 'the push endpoint is longer than 1024 characters';
  if (url.username || url.password) return 'the push endpoint must not carry credentials';
  if (allowLocal)
    return url.protocol === 'https:' || url.protocol === 'http:'
      ? undefined
      : 'the push endpoint must be https';
  if (url.protocol !== 'https:') return `the push endpoint must be https (got ${url.protocol})`;
  if (LOCAL_HOST.test(url.hostname))
    return `the push endpoint's host ${url.hostname} is on a local or private network`;
  return undefined;
}

export function applyNotifyChange(
  current: DeviceNotifySettings,
  change: NotifyChange,
  nowIso: string,
  options: { allowLocalPushEndpoints: boolean },
): DeviceNotifySettings {
  const next: DeviceNotifySettings = structuredCloneSettings(current);
  switch (change.type) {
    case 'preferences': {
      if (change.quietHours) {
        const problem = checkQuietHours(change.quietHours);
        if (problem) throw new NotifySettingsError(problem);
      }
      next.ntfy.enabled = change.ntfy.enabled;
      next.webPush.enabled = change.webPush.enabled;
      next.fcm.enabled = change.fcm.enabled;
      next.quietHours = change.quietHours ?? undefined;
      return next;
    }
    case 'addWebPush': {
      const { endpoint, keys } = change.subscription;
      const problem = checkPushEndpoint(endpoint, options.allowLocalPushEndpoints);
      if (problem) throw new NotifySettingsError(problem);
      if (!BASE64URL.test(keys.p256dh) || keys.p256dh.length < 80 || keys.p256dh.length > 100)
        throw new NotifySettingsError('keys.p256dh is not a base64url P-256 public key');
      if (!BASE64URL.test(keys.auth) || keys.auth.length < 16 || keys.auth.length > 32)
        throw new NotifySettingsError('keys.auth is not a base64url 16-byte secret');
      const others = next.webPush.subscriptions.filter((s) => s.endpoint !== endpoint);
      // The newest subscriptions are kept: a browser that re-subscribes replaces its old endpoint.
      next.webPush.subscriptions = [...others, { endpoint, keys: { ...keys }, addedAt: nowIso }].slice(
        -SETTINGS_LIMITS.webPushSubscriptions,
      );
      next.webPush.enabled = true;
      return next;
    }
    case 'removeWebPush':
      next.webPush.subscriptions = next.webPush.subscriptions.filter((s) => s.endpoint !== change.endpoint);
      return next;
    case 'addFcmToken': {
      if (!/^[A-Za-z0-9_:.-]{20,4096}$/.test(change.token))
        throw new NotifySettingsError('the FCM registration token is malformed');
      next.fcm.tokens = [...next.fcm.tokens.filter((t) => t !== change.token), change.token].slice(
        -SETTINGS_LIMITS.fcmTokens,
      );
      next.fcm.enabled = true;
      return next;
    }
    case 'dropTargets': {
      const dead = new Set(change.targets);
      if (change.channel === 'webPush')
        next.webPush.subscriptions = next.webPush.subscriptions.filter((s) => !dead.has(s.endpoint));
      else if (change.channel === 'fcm') next.fcm.tokens = next.fcm.tokens.filter((t) => !dead.has(t));
      return next;
    }
  }
}

function structuredCloneSettings(s: DeviceNotifySettings): DeviceNotifySettings {
  return {
    ntfy: { ...s.ntfy },
    webPush: {
      enabled: s.webPush.enabled,
      subscriptions: s.webPush.subscriptions.map((x) => ({ ...x, keys: { ...x.keys } })),
    },
    fcm: { enabled: s.fcm.enabled, tokens: [...s.fcm.tokens] },
    ...(s.quietHours ? { quietHours: { ...s.quietHours } } : {}),
  };
}
