/**
 * Countersign's service worker, bundled into ui/dist/sw.js by scripts/build-sw.mjs: offline
 * reading (cache.ts), notices from pushes (push.ts), and decisions signed from a notification
 * with this device's key (decide.ts). Tests await `self.countersignLastAction` (scope.ts).
 */
import { installCaching } from './cache.js';
import { onNotificationClick } from './click.js';
import { showPush } from './push.js';
import { keepAlive, sw } from './scope.js';
import { renewSubscription } from './subscription.js';

installCaching();

sw.addEventListener('push', (event) => {
  void keepAlive(event, showPush(event.data?.text()));
});

sw.addEventListener('notificationclick', (event) => {
  void keepAlive(event, onNotificationClick(event.notification, event.action));
});

sw.addEventListener('pushsubscriptionchange', (event) => {
  void keepAlive(event, renewSubscription(event));
});
