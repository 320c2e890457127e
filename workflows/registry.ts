/**
 * The device registry: a long-lived workflow whose history is the signed record of every
 * device enrolment, introduction and revocation. Validators refuse bad records before they
 * reach history.
 */
import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { pairingCodeHash as hashPairingCode } from '../core/devices/pairing.js';
import { DeviceRecordError, DeviceRegistry } from '../core/devices/registry.js';
import { FAILURE_TYPES } from '../core/names.js';
import type { Envelope } from '../core/approval/dsse.js';
import {
  addDeviceRecordUpdate,
  enrollRootUpdate,
  openPairingUpdate,
  registryViewQuery,
  type RegistryView,
  type RegistryWorkflowInput,
} from './messages.js';

function refuse(error: unknown): never {
  if (error instanceof DeviceRecordError) {
    throw ApplicationFailure.create({
      message: `[${error.code}] ${error.message}`,
      type: FAILURE_TYPES.deviceRecordRefused,
      nonRetryable: true,
      details: [error.code],
    });
  }
  throw error;
}

export async function deviceRegistryWorkflow(input: RegistryWorkflowInput): Promise<void> {
  let registry = DeviceRegistry.fromRecords(input.records);
  let pairingCodeHash = registry.rootKeyId ? undefined : input.pairingCodeHash;
  let policyPublicKey = input.policyPublicKey;

  const view = (): RegistryView => ({
    records: [...registry.records],
    rootKeyId: registry.rootKeyId,
    pairingOpen: pairingCodeHash !== undefined,
    policyPublicKey,
    devices: registry.list().map((d) => ({
      keyId: d.keyId,
      name: d.name,
      role: d.role,
      introducedBy: d.introducedBy,
      revoked: d.revoked,
    })),
    agents: registry.listAgents(),
  });
  // Applying to a copy first keeps the live registry untouched when a record is refused.
  const tryApply = (record: Envelope): DeviceRegistry => {
    const next = DeviceRegistry.fromRecords(registry.records);
    try {
      next.apply(record);
    } catch (error) {
      refuse(error);
    }
    return next;
  };

  setHandler(registryViewQuery, view);
  setHandler(
    enrollRootUpdate,
    ({ record }) => {
      registry = tryApply(record);
      pairingCodeHash = undefined;
      return view();
    },
    {
      validator: ({ record, pairingCode }) => {
        if (registry.rootKeyId)
          refuse(new DeviceRecordError('not_allowed', 'a root device is already paired'));
        if (!pairingCodeHash)
          refuse(
            new DeviceRecordError(
              'not_allowed',
              'pairing is not open: run `countersign up` to print a pairing code',
            ),
          );
        if (typeof pairingCode !== 'string' || hashPairingCode(pairingCode) !== pairingCodeHash) {
          refuse(new DeviceRecordError('not_allowed', 'wrong pairing code'));
        }
        tryApply(record);
      },
    },
  );
  setHandler(
    addDeviceRecordUpdate,
    ({ record }) => {
      registry = tryApply(record);
      return view();
    },
    { validator: ({ record }) => void tryApply(record) },
  );
  setHandler(
    openPairingUpdate,
    (request) => {
      pairingCodeHash = request.pairingCodeHash;
      policyPublicKey = request.policyPublicKey ?? policyPublicKey;
      return view();
    },
    {
      validator: (request) => {
        if (registry.rootKeyId)
          refuse(
            new DeviceRecordError(
              'not_allowed',
              'a root device is already paired; introduce new devices from it',
            ),
          );
        if (!/^[0-9a-f]{64}$/.test(request.pairingCodeHash))
          refuse(new DeviceRecordError('malformed_record', 'pairingCodeHash must be SHA-256 hex'));
      },
    },
  );

  // The registry lives forever; it starts a fresh run before its history grows long.
  await condition(() => workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > 2_000);
  await condition(allHandlersFinished);
  await continueAsNew<typeof deviceRegistryWorkflow>({
    records: [...registry.records],
    pairingCodeHash,
    policyPublicKey,
  });
}
