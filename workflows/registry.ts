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
  log,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { createControlActivities } from '../activities/control.js';
import type { createExecutorActivities } from '../activities/executor.js';
import { pairingCodeHash as hashPairingCode } from '../core/devices/pairing.js';
import { DeviceRecordError, DeviceRegistry } from '../core/devices/registry.js';
import { FAILURE_TYPES, TASK_QUEUES } from '../core/names.js';
import type { Envelope } from '../core/approval/dsse.js';
import {
  addDeviceRecordUpdate,
  enrollRootUpdate,
  openPairingUpdate,
  registryViewQuery,
  spendGrantUseUpdate,
  type RegistryView,
  type RegistryWorkflowInput,
} from './messages.js';

// Telling open plans about new records: a plan waiting on a grant that was just revoked must hear it.
const control = proxyActivities<ReturnType<typeof createControlActivities>>({
  taskQueue: TASK_QUEUES.control,
  startToCloseTimeout: '2m',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 20 },
});
// And the executor: its own chain grows, so a revocation holds whatever records a step arrives with.
// An executor that is down takes it when it is back (the task waits on its queue).
const executor = proxyActivities<ReturnType<typeof createExecutorActivities>>({
  taskQueue: TASK_QUEUES.sandbox,
  startToCloseTimeout: '30s',
  scheduleToCloseTimeout: '1d',
  retry: { initialInterval: '1s', maximumInterval: '1m' },
});

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
  let executorPublicKey = input.executorPublicKey;
  const grantUses = new Map<string, string[]>(Object.entries(input.grantUses ?? {}));
  let announcing = 0;

  const view = (): RegistryView => ({
    records: [...registry.records],
    rootKeyId: registry.rootKeyId,
    pairingOpen: pairingCodeHash !== undefined,
    policyPublicKey,
    ...(executorPublicKey ? { executorPublicKey } : {}),
    devices: registry.list().map((d) => ({
      keyId: d.keyId,
      name: d.name,
      role: d.role,
      introducedBy: d.introducedBy,
      revoked: d.revoked,
    })),
    agents: registry.listAgents().map(({ proposalKey: _key, ...agent }) => agent),
    grants: registry.listGrants().map((g) => ({
      grantId: g.grantId,
      record: g.record,
      issuedBy: g.issuedBy,
      revoked: g.revoked,
      uses: grantUses.get(g.grantId)?.length ?? 0,
    })),
  });
  /**
   * Every open plan hears of each new record (registries recorded before this replay without it,
   * hence the patch marker). Beside the registry, never in its way: a failure is logged.
   */
  const announce = (): void => {
    if (!patched('announce-records-to-plans')) return;
    const records = [...registry.records];
    const warn = (what: string) => (error: unknown) =>
      log.warn(`could not tell ${what} of new device records`, { error: String(error) });
    announcing++;
    void control
      .announceTrustRecords({ records })
      .catch(warn('open plans'))
      .finally(() => announcing--);
    // Not waited for before continuing as new: an executor that is down takes the task when back,
    // and any later record carries the whole chain again.
    if (patched('announce-records-to-executors'))
      void executor.adoptTrustRecords({ records }).catch(warn('the executor'));
  };
  // Applying to a copy first keeps the live registry untouched when a record is refused.
  const tryApply = (record: Envelope): DeviceRegistry => {
    try {
      return registry.extendedWith([...registry.records, record])!;
    } catch (error) {
      refuse(error);
    }
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
      announce();
      return view();
    },
    { validator: ({ record }) => void tryApply(record) },
  );
  setHandler(
    spendGrantUseUpdate,
    ({ grantId, useKey }) => {
      const uses = grantUses.get(grantId) ?? [];
      const earlier = uses.indexOf(useKey);
      if (earlier >= 0) return { use: earlier + 1 };
      uses.push(useKey);
      grantUses.set(grantId, uses);
      return { use: uses.length };
    },
    {
      validator: ({ grantId, useKey }) => {
        const grant = registry.grant(grantId);
        if (!grant) refuse(new DeviceRecordError('not_allowed', `no standing approval ${grantId}`));
        if (grant.revoked)
          refuse(
            new DeviceRecordError('not_allowed', `standing approval "${grant.record.name}" was revoked`),
          );
        const max = grant.record.maxUses;
        if (max === undefined)
          refuse(
            new DeviceRecordError('not_allowed', `standing approval "${grant.record.name}" has no use limit`),
          );
        if (typeof useKey !== 'string' || useKey.length === 0 || useKey.length > 1000)
          refuse(new DeviceRecordError('malformed_record', 'a use is named by workflowId/stepPath/digest'));
        const uses = grantUses.get(grantId) ?? [];
        if (!uses.includes(useKey) && uses.length >= max)
          refuse(
            new DeviceRecordError(
              'not_allowed',
              `standing approval "${grant.record.name}" is used up (${max} of ${max})`,
            ),
          );
      },
    },
  );
  setHandler(
    openPairingUpdate,
    (request) => {
      pairingCodeHash = request.pairingCodeHash;
      policyPublicKey = request.policyPublicKey ?? policyPublicKey;
      executorPublicKey = request.executorPublicKey ?? executorPublicKey;
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
  await condition(() => announcing === 0);
  await continueAsNew<typeof deviceRegistryWorkflow>({
    records: [...registry.records],
    pairingCodeHash,
    policyPublicKey,
    ...(executorPublicKey ? { executorPublicKey } : {}),
    ...(grantUses.size ? { grantUses: Object.fromEntries(grantUses) } : {}),
  });
}
