/**
 * Notifications, per device: this device's channels and quiet hours, its Web Push subscriptions,
 * and a test notice sent through the control worker the way a gate's notices go.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import type { NotifyChange } from '../../core/notify/settings.js';
import type { DeviceNotifySettings } from '../../core/notify/types.js';
import { UserFacingError } from '../../services/errors.js';
import { changeNotifySettings, readNotifySettings } from '../../services/notify/settings.js';
import { sendTestNotice } from '../../services/notify/test-notice.js';
import { ApiError } from '../errors.js';
import { AUTH_ERRORS, ErrorBody } from '../schemas/common.js';

const Enabled = Type.Object({ enabled: Type.Boolean() }, { additionalProperties: false });
const QuietHours = Type.Object(
  {
    start: Type.String({ maxLength: 5 }),
    end: Type.String({ maxLength: 5 }),
    timeZone: Type.String({ minLength: 1, maxLength: 64 }),
  },
  { additionalProperties: false },
);
const Preferences = Type.Object(
  { ntfy: Enabled, webPush: Enabled, fcm: Enabled, quietHours: Type.Union([QuietHours, Type.Null()]) },
  { additionalProperties: false },
);
const Subscription = Type.Object(
  {
    endpoint: Type.String({ minLength: 1, maxLength: 1024 }),
    keys: Type.Object(
      { p256dh: Type.String({ maxLength: 200 }), auth: Type.String({ maxLength: 64 }) },
      { additionalProperties: false },
    ),
    // Browsers' PushSubscription.toJSON() includes it; it is not used.
    expirationTime: Type.Optional(Type.Union([Type.Number(), Type.Null()])),
  },
  { additionalProperties: false },
);
const Outcome = Type.Object({
  channel: Type.String(),
  keyId: Type.String(),
  target: Type.String(),
  status: Type.String(),
  detail: Type.String(),
  httpStatus: Type.Optional(Type.Number()),
  at: Type.String(),
});
const SettingsBody = Type.Object({
  settings: Type.Object({
    ntfy: Type.Object({ enabled: Type.Boolean(), topic: Type.String() }),
    webPush: Type.Object({
      enabled: Type.Boolean(),
      subscriptions: Type.Array(Type.Object({ endpoint: Type.String(), addedAt: Type.String() })),
    }),
    fcm: Type.Object({ enabled: Type.Boolean(), tokens: Type.Number() }),
    quietHours: Type.Union([QuietHours, Type.Null()]),
  }),
  offer: Type.Object({
    ntfyServer: Type.Optional(Type.String()),
    webPushPublicKey: Type.Optional(Type.String()),
    fcm: Type.Boolean(),
  }),
});
type SettingsBody = Static<typeof SettingsBody>;

/** What the app sees: push keys and FCM tokens stay on the server. */
function publicSettings(settings: DeviceNotifySettings | undefined): SettingsBody['settings'] {
  return {
    ntfy: { enabled: settings?.ntfy.enabled ?? false, topic: settings?.ntfy.topic ?? '' },
    webPush: {
      enabled: settings?.webPush.enabled ?? false,
      subscriptions: (settings?.webPush.subscriptions ?? []).map((s) => ({
        endpoint: s.endpoint,
        addedAt: s.addedAt,
      })),
    },
    fcm: { enabled: settings?.fcm.enabled ?? false, tokens: settings?.fcm.tokens.length ?? 0 },
    quietHours: settings?.quietHours ?? null,
  };
}

const settingsReply = { 200: SettingsBody, 400: ErrorBody, ...AUTH_ERRORS };

const notifyRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { client } = app.controlPlane;

  const current = async (keyId: string): Promise<SettingsBody> => {
    const view = await readNotifySettings(client);
    // A device's first read gives it its settings, all off, with the ntfy topic it will use: the
    // screen can show the topic to subscribe to before anything is turned on.
    const settings =
      view.devices[keyId] ??
      (await changeNotifySettings(client, keyId, {
        type: 'preferences',
        ntfy: { enabled: false },
        webPush: { enabled: false },
        fcm: { enabled: false },
        quietHours: null,
      }));
    return { settings: publicSettings(settings), offer: view.offer };
  };
  const change = async (keyId: string, notifyChange: NotifyChange): Promise<SettingsBody> => {
    try {
      await changeNotifySettings(client, keyId, notifyChange);
    } catch (error) {
      if (error instanceof UserFacingError && error.code === 'NotifySettingsRefused')
        throw new ApiError(400, 'invalid_settings', error.message.replace(/^.*refused \[[A-Za-z]+\]: /, ''));
      throw error;
    }
    return current(keyId);
  };

  app.get('/api/notify/settings', { schema: { response: settingsReply } }, async (request) =>
    current(request.device!.keyId),
  );

  app.put(
    '/api/notify/settings',
    { schema: { body: Preferences, response: settingsReply } },
    async (request) => change(request.device!.keyId, { type: 'preferences', ...request.body }),
  );

  app.post(
    '/api/notify/web-push',
    {
      schema: {
        body: Type.Object({ subscription: Subscription }, { additionalProperties: false }),
        response: settingsReply,
      },
    },
    async (request) => {
      const { endpoint, keys } = request.body.subscription;
      return change(request.device!.keyId, { type: 'addWebPush', subscription: { endpoint, keys } });
    },
  );

  app.post(
    '/api/notify/web-push/remove',
    {
      schema: {
        body: Type.Object({ endpoint: Type.String({ maxLength: 1024 }) }, { additionalProperties: false }),
        response: settingsReply,
      },
    },
    async (request) =>
      change(request.device!.keyId, { type: 'removeWebPush', endpoint: request.body.endpoint }),
  );

  app.post(
    '/api/notify/fcm',
    {
      schema: {
        body: Type.Object({ token: Type.String({ maxLength: 4096 }) }, { additionalProperties: false }),
        response: settingsReply,
      },
    },
    async (request) => change(request.device!.keyId, { type: 'addFcmToken', token: request.body.token }),
  );

  app.post(
    '/api/notify/test',
    {
      config: { rateLimit: { max: 10, timeWindow: '1 minute' } },
      schema: { response: { 200: Type.Object({ outcomes: Type.Array(Outcome) }), ...AUTH_ERRORS } },
    },
    async (request) => ({ outcomes: await sendTestNotice(client, request.device!.keyId) }),
  );
};

export default notifyRoutes;
