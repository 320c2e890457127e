/**
 * Web Push helpers shared by the settings screen and the service worker: no DOM, no Svelte, so
 * both bundles import them as they are.
 */
import { fromBase64 } from '../../../core/bytes.js';
import type { WebPushSubscriptionBody } from './types.js';

/** The VAPID public key as the offer carries it (base64url) in the bytes `PushManager.subscribe` takes. */
export function vapidKeyBytes(key: string): Uint8Array<ArrayBuffer> {
  const standard = key.replace(/-/g, '+').replace(/_/g, '/');
  return new Uint8Array(fromBase64(standard + '='.repeat((4 - (standard.length % 4)) % 4)));
}

/** Whether `subscription` was made for the server key `key` (a changed key needs a new subscription). */
export function madeForKey(subscription: PushSubscription, key: Uint8Array): boolean {
  const own = subscription.options.applicationServerKey;
  if (!own) return false;
  const bytes = new Uint8Array(own);
  return bytes.length === key.length && bytes.every((b, i) => b === key[i]);
}

/** What the server keeps of a subscription: its endpoint and the keys that encrypt to it. */
export function subscriptionBody(subscription: PushSubscription): WebPushSubscriptionBody | undefined {
  const json = subscription.toJSON();
  const p256dh = json.keys?.['p256dh'];
  const auth = json.keys?.['auth'];
  if (!json.endpoint || !p256dh || !auth) return undefined;
  return { endpoint: json.endpoint, keys: { p256dh, auth } };
}

/** The host of a push endpoint: what a person can recognise (fcm.googleapis.com, updates.push.services.mozilla.com). */
export function endpointHost(endpoint: string): string {
  try {
    return new URL(endpoint).host;
  } catch {
    return endpoint.slice(0, 40);
  }
}
