/**
 * A push service that rotates or drops this browser's subscription fires `pushsubscriptionchange`
 * (Firefox does; Chrome does not): subscribe again with the same server key, and tell the server
 * when this device can open a session. Otherwise the settings screen offers it on its next visit.
 */
import { loadDevice } from '../lib/keystore.js';
import { subscriptionBody, vapidKeyBytes } from '../lib/notify.js';
import type { NotifySettingsBody } from '../lib/types.js';
import { sw } from './scope.js';
import { openSession, server } from './server.js';

export async function renewSubscription(
  event: PushSubscriptionChangeEvent,
): Promise<'renewed' | 'left_for_app'> {
  const old = event.oldSubscription;
  const device = await loadDevice().catch(() => undefined);
  const signedIn =
    device?.status === 'active' &&
    (await openSession(device).then(
      () => true,
      () => false,
    ));
  let key: BufferSource | null = old?.options.applicationServerKey ?? null;
  if (!key && signedIn) {
    const offer = await server.get<NotifySettingsBody>('/api/notify/settings').then(
      (body) => body.offer,
      () => undefined,
    );
    key = offer?.webPushPublicKey ? vapidKeyBytes(offer.webPushPublicKey) : null;
  }
  // A push service that cannot be reached now leaves it to the settings screen, like no session does.
  const fresh =
    event.newSubscription ??
    (key
      ? await sw.registration.pushManager
          .subscribe({ userVisibleOnly: true, applicationServerKey: key })
          .catch(() => null)
      : null);
  const body = fresh ? subscriptionBody(fresh) : undefined;
  if (!signedIn || !body) return 'left_for_app';
  await server.post<NotifySettingsBody>('/api/notify/web-push', { subscription: body });
  if (old && old.endpoint !== body.endpoint)
    await server
      .post<NotifySettingsBody>('/api/notify/web-push/remove', { endpoint: old.endpoint })
      .catch(() => undefined);
  return 'renewed';
}
