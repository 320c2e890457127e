/** Reading and changing notification settings through the settings workflow. */
import { randomBytes } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { NotifyChange } from '../../core/notify/settings.js';
import type { DeviceNotifySettings, NotifyOffer } from '../../core/notify/types.js';
import { NOTIFY_SETTINGS_WORKFLOW_ID, TASK_QUEUES } from '../../core/names.js';
import {
  changeNotifySettingsUpdate,
  notifySettingsQuery,
  publishNotifyOfferUpdate,
  type NotifySettingsView,
} from '../../workflows/messages.js';
import { explain } from '../errors.js';
import { queryLongLived } from '../long-lived.js';

export async function ensureNotifySettings(client: Client): Promise<void> {
  await client.workflow.start('notifySettingsWorkflow', {
    workflowId: NOTIFY_SETTINGS_WORKFLOW_ID,
    taskQueue: TASK_QUEUES.control,
    args: [{ devices: {} }],
    workflowIdConflictPolicy: 'USE_EXISTING',
  });
}

/** One query (every notice reads this); the workflow is started only the first time it is missing. */
export function readNotifySettings(client: Client): Promise<NotifySettingsView> {
  return queryLongLived(client, NOTIFY_SETTINGS_WORKFLOW_ID, notifySettingsQuery, ensureNotifySettings);
}

/** A topic nobody can guess: on a public ntfy server, the topic is the password. */
export function newNtfyTopic(): string {
  return `countersign-${randomBytes(15).toString('base64url')}`;
}

export async function changeNotifySettings(
  client: Client,
  keyId: string,
  change: NotifyChange,
): Promise<DeviceNotifySettings> {
  await ensureNotifySettings(client);
  return client.workflow
    .getHandle(NOTIFY_SETTINGS_WORKFLOW_ID)
    .executeUpdate(changeNotifySettingsUpdate, { args: [{ keyId, change, ntfyTopic: newNtfyTopic() }] })
    .catch((error: unknown) => explain(error, 'notification settings'));
}

export async function publishNotifyOffer(
  client: Client,
  offer: NotifyOffer,
  allowLocalPushEndpoints: boolean,
): Promise<NotifySettingsView> {
  await ensureNotifySettings(client);
  return client.workflow
    .getHandle(NOTIFY_SETTINGS_WORKFLOW_ID)
    .executeUpdate(publishNotifyOfferUpdate, { args: [{ offer, allowLocalPushEndpoints }] });
}
