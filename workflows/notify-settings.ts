/**
 * Notification settings: a long-lived workflow holding each device's channels and quiet hours,
 * and what this installation can send (published by the control worker when it starts). The API
 * changes a device's settings through Updates; the control worker reads them when it notifies.
 * Settings are not signed: a notice only points at a gate, and deciding still takes the device key.
 */
import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { applyNotifyChange, defaultSettings, NotifySettingsError } from '../core/notify/settings.js';
import type { DeviceNotifySettings, NotifyOffer } from '../core/notify/types.js';
import { FAILURE_TYPES } from '../core/names.js';
import {
  changeNotifySettingsUpdate,
  notifySettingsQuery,
  publishNotifyOfferUpdate,
  type NotifySettingsView,
  type NotifySettingsWorkflowInput,
} from './messages.js';

export async function notifySettingsWorkflow(input: NotifySettingsWorkflowInput): Promise<void> {
  const devices = new Map<string, DeviceNotifySettings>(Object.entries(input.devices));
  let offer: NotifyOffer = input.offer ?? { fcm: false };
  let allowLocalPushEndpoints = input.allowLocalPushEndpoints ?? false;

  const view = (): NotifySettingsView => ({ devices: Object.fromEntries(devices), offer });
  function applyChange({
    keyId,
    change,
    ntfyTopic,
  }: {
    keyId: string;
    change: Parameters<typeof applyNotifyChange>[1];
    ntfyTopic: string;
  }) {
    try {
      const current = devices.get(keyId) ?? defaultSettings(ntfyTopic);
      return applyNotifyChange(current, change, new Date(Date.now()).toISOString(), {
        allowLocalPushEndpoints,
      });
    } catch (error) {
      if (error instanceof NotifySettingsError)
        throw ApplicationFailure.create({
          message: error.message,
          type: FAILURE_TYPES.notifySettingsRefused,
          nonRetryable: true,
        });
      throw error;
    }
  }

  setHandler(notifySettingsQuery, view);
  setHandler(
    changeNotifySettingsUpdate,
    (request) => {
      const next = applyChange(request);
      devices.set(request.keyId, next);
      return next;
    },
    { validator: (request) => void applyChange(request) },
  );
  setHandler(publishNotifyOfferUpdate, (request) => {
    offer = request.offer;
    allowLocalPushEndpoints = request.allowLocalPushEndpoints;
    return view();
  });

  await condition(() => workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > 2_000);
  await condition(allHandlersFinished);
  await continueAsNew<typeof notifySettingsWorkflow>({
    devices: Object.fromEntries(devices),
    offer,
    allowLocalPushEndpoints,
  });
}
