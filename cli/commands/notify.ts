/** `countersign notify` (who is told, where), `notify test [DEVICE]`, `notify ntfy on|off` for this CLI's device. */
import type { ChannelOutcome, DeviceNotifySettings } from '../../core/notify/types.js';
import { registryView } from '../../services/devices.js';
import { UserFacingError } from '../../services/errors.js';
import { changeNotifySettings, readNotifySettings } from '../../services/notify/settings.js';
import { sendTestNotice } from '../../services/notify/test-notice.js';
import { clean } from '../../services/history/render.js';
import type { CliContext } from '../context.js';
import { bold, dim, green, red, yellow } from '../format.js';

function channelsOf(settings: DeviceNotifySettings | undefined): string {
  if (!settings) return dim('no channels (set them in the app: Settings)');
  const on = [
    settings.ntfy.enabled && `ntfy (${settings.ntfy.topic})`,
    settings.webPush.enabled && `Web Push ×${settings.webPush.subscriptions.length}`,
    settings.fcm.enabled && `FCM ×${settings.fcm.tokens.length}`,
  ].filter(Boolean);
  const quiet = settings.quietHours
    ? dim(` quiet ${settings.quietHours.start}–${settings.quietHours.end} ${settings.quietHours.timeZone}`)
    : '';
  return (on.length ? on.join(', ') : dim('all channels off')) + quiet;
}

export async function notifyStatus(ctx: CliContext): Promise<void> {
  const client = await ctx.client();
  const [registry, settings] = await Promise.all([
    registryView(client, ctx.anchor),
    readNotifySettings(client),
  ]);
  const { offer } = settings;
  console.log(
    `${bold('this installation sends by')}: ${
      [
        offer.ntfyServer ? `ntfy (${offer.ntfyServer})` : undefined,
        offer.webPushPublicKey ? 'Web Push' : undefined,
        offer.fcm ? 'FCM' : undefined,
      ]
        .filter(Boolean)
        .join(', ') || dim('nothing configured (COUNTERSIGN_NTFY_URL, COUNTERSIGN_FCM_SERVICE_ACCOUNT)')
    }`,
  );
  for (const device of registry.devices.filter(
    (d) => !d.revoked && (d.role === 'root' || d.role === 'approver'),
  ))
    console.log(`  ${bold(clean(device.name).padEnd(20))} ${channelsOf(settings.devices[device.keyId])}`);
}

function printOutcome(device: string, o: ChannelOutcome): void {
  const mark =
    o.status === 'sent' || o.status === 'already_sent'
      ? green(o.status)
      : o.status === 'quiet'
        ? yellow(o.status)
        : red(o.status);
  console.log(
    `  ${bold(clean(device).padEnd(20))} ${clean(o.target).padEnd(36)} ${mark} ${dim(clean(o.detail))}`,
  );
}

export async function notifyTest(ctx: CliContext, deviceName?: string): Promise<void> {
  const client = await ctx.client();
  const [registry, settings] = await Promise.all([
    registryView(client, ctx.anchor),
    readNotifySettings(client),
  ]);
  const people = registry.devices.filter((d) => !d.revoked && (d.role === 'root' || d.role === 'approver'));
  const chosen = deviceName
    ? people.filter((d) => d.name === deviceName || d.keyId === deviceName)
    : people.filter((d) => settings.devices[d.keyId]);
  if (deviceName && chosen.length === 0)
    throw new UserFacingError(
      `no active device named "${deviceName}" (countersign devices lists them)`,
      'not_found',
    );
  if (chosen.length === 0) {
    console.log(
      'no device has a notification channel yet: turn one on in the app (Settings), or: countersign notify ntfy on',
    );
    return;
  }
  let delivered = 0;
  let failed = 0;
  for (const device of chosen) {
    const outcomes = await sendTestNotice(client, device.keyId);
    if (outcomes.length === 0)
      console.log(`  ${bold(clean(device.name).padEnd(20))} ${dim('no channel turned on')}`);
    for (const o of outcomes) {
      printOutcome(device.name, o);
      if (o.status === 'sent') delivered++;
      else failed++;
    }
  }
  if (failed > 0) {
    process.exitCode = 1;
    console.log(red(`${failed} test notice${failed > 1 ? 's' : ''} not delivered; ${delivered} delivered`));
  } else console.log(green(`${delivered} test notice${delivered === 1 ? '' : 's'} delivered`));
}

/** Turns ntfy on or off for this CLI's own device and prints the topic to subscribe to. */
export async function notifyNtfy(ctx: CliContext, state: string): Promise<void> {
  if (state !== 'on' && state !== 'off')
    throw new UserFacingError('expected: countersign notify ntfy on|off', 'usage');
  const client = await ctx.client();
  const key = await ctx.deviceKey();
  const view = await readNotifySettings(client);
  const current = view.devices[key.keyId];
  const updated = await changeNotifySettings(client, key.keyId, {
    type: 'preferences',
    ntfy: { enabled: state === 'on' },
    webPush: { enabled: current?.webPush.enabled ?? false },
    fcm: { enabled: current?.fcm.enabled ?? false },
    quietHours: current?.quietHours ?? null,
  });
  if (state === 'off') return console.log(`ntfy ${red('off')} for ${key.name}`);
  if (!view.offer.ntfyServer)
    console.log(
      yellow(
        'ntfy is on for this device, but the control worker has no COUNTERSIGN_NTFY_URL: nothing is sent yet',
      ),
    );
  const server = view.offer.ntfyServer ?? '<ntfy server>';
  console.log(`ntfy ${green('on')} for ${key.name}: subscribe to ${bold(`${server}/${updated.ntfy.topic}`)}`);
  console.log(dim(`  ntfy subscribe ${server}/${updated.ntfy.topic}   (or add the topic in the ntfy app)`));
}
