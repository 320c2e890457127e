/**
 * Who is told about a gate, and where: devices named by the plan (or every person's device),
 * their enabled channels, and whether they are in quiet hours.
 */
import { inQuietHours } from '../../core/notify/quiet-hours.js';
import type { NoticeKind } from '../../core/notify/types.js';
import type { NotifySettingsView, RegistryView } from '../../workflows/messages.js';
import { labelOf, type Target } from './channels/channel.js';

export interface Audience {
  /** Names or key ids; every active person's device when absent. */
  approvers?: string[] | undefined;
  /** Told too once the gate escalated. */
  escalateTo?: string[] | undefined;
}

export interface ResolvedAudience {
  targets: Target[];
  /** Devices in quiet hours (their targets are not sent to). */
  quiet: Set<string>;
  /** Names the plan gives that match no active device. */
  unknown: string[];
}

export function resolveAudience(
  audience: Audience,
  registry: Pick<RegistryView, 'devices'>,
  settings: NotifySettingsView,
  kind: NoticeKind,
  nowMs: number,
): ResolvedAudience {
  const people = registry.devices.filter((d) => !d.revoked && (d.role === 'root' || d.role === 'approver'));
  const unknown: string[] = [];
  const pick = (names: string[]) =>
    names.flatMap((name) => {
      const found = people.filter((d) => d.keyId === name || d.name === name);
      if (found.length === 0) unknown.push(name);
      return found.map((d) => d.keyId);
    });
  const keyIds = new Set(audience.approvers ? pick(audience.approvers) : people.map((d) => d.keyId));
  const escalated = new Set(audience.escalateTo ? pick(audience.escalateTo) : []);
  for (const keyId of escalated) keyIds.add(keyId);

  const targets: Target[] = [];
  const quiet = new Set<string>();
  for (const keyId of keyIds) {
    const device = settings.devices[keyId];
    if (!device) continue;
    // Quiet hours hold back first notices and reminders; escalations, tests and updates come through.
    const holdsBack =
      kind === 'gate' || kind === 'reminder' || (kind === 'escalation' && !escalated.has(keyId));
    if (holdsBack && inQuietHours(device.quietHours, nowMs)) quiet.add(keyId);
    if (device.ntfy.enabled && settings.offer.ntfyServer)
      targets.push({
        channel: 'ntfy',
        keyId,
        id: device.ntfy.topic,
        label: labelOf('ntfy', device.ntfy.topic),
      });
    if (device.webPush.enabled && settings.offer.webPushPublicKey)
      for (const subscription of device.webPush.subscriptions)
        targets.push({
          channel: 'webPush',
          keyId,
          id: subscription.endpoint,
          label: labelOf('webPush', subscription.endpoint),
          subscription,
        });
    if (device.fcm.enabled && settings.offer.fcm)
      for (const token of device.fcm.tokens)
        targets.push({ channel: 'fcm', keyId, id: token, label: labelOf('fcm', token) });
  }
  return { targets, quiet, unknown: [...new Set(unknown)] };
}
