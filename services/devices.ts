/** Device operations against the registry workflow: pairing, introduction, revocation. */
import { randomInt } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Client } from '@temporalio/client';
import type { Envelope } from '../core/approval/dsse.js';
import { fromBase64, toBase64 } from '../core/bytes.js';
import { pairingCodeHash } from '../core/devices/pairing.js';
import { signDeviceRecord } from '../core/devices/records.js';
import { DeviceRegistry } from '../core/devices/registry.js';
import type { KeyPair } from '../core/keys.js';
import { REGISTRY_WORKFLOW_ID, TASK_QUEUES } from '../core/names.js';
import {
  addDeviceRecordUpdate,
  enrollRootUpdate,
  openPairingUpdate,
  registryViewQuery,
  type RegistryView,
} from '../workflows/messages.js';
import { loadOrCreateKeyFile } from '../workers/key-file.js';
import { explain, UserFacingError } from './errors.js';
import { queryLongLived } from './long-lived.js';
import { ChainRefused, type TrustAnchorFile } from './trust-anchor.js';

const CODE_ALPHABET = 'ABCDEFGHJKMNPQRSTVWXYZ23456789';

/** Starts the registry workflow if it is not running. */
export async function ensureRegistry(client: Client): Promise<void> {
  await client.workflow.start('deviceRegistryWorkflow', {
    workflowId: REGISTRY_WORKFLOW_ID,
    taskQueue: TASK_QUEUES.control,
    args: [{ records: [] }],
    workflowIdConflictPolicy: 'USE_EXISTING',
  });
}

/**
 * The registry as it stands: one query; the workflow is started only the first time it is missing.
 * With this process's `anchor` (once a root is pinned here), the registry must extend the chain the
 * process has seen: one that forks from it, starts at another root, or has fewer records (a registry
 * replaced, or restarted without its revocations) is refused with what to do.
 */
export async function registryView(client: Client, anchor?: TrustAnchorFile): Promise<RegistryView> {
  const view = await queryLongLived(client, REGISTRY_WORKFLOW_ID, registryViewQuery, ensureRegistry);
  if (!anchor || !anchor.isPinned()) return view;
  let reconciled;
  try {
    reconciled = await anchor.reconcile(view.records);
  } catch (error) {
    if (!(error instanceof ChainRefused)) throw error;
    throw new UserFacingError(
      `the device registry is not the one this installation trusts: ${error.message}. Nothing was signed or changed; if it was replaced, restore it from a device that holds the chain: countersign registry restore`,
      'registry_untrusted',
    );
  }
  if (reconciled.stale)
    throw new UserFacingError(
      `the device registry has ${view.records.length} records, fewer than the ${(await anchor.held()).length} this process has seen: it was rolled back (revocations may be missing). Nothing was signed or changed; restore it: countersign registry restore`,
      'registry_untrusted',
    );
  return view;
}

/** Opens pairing with a fresh one-time code (only while no root device exists). Returns the code, or undefined when already paired. */
export async function openPairing(
  client: Client,
  policyPublicKey: Uint8Array,
  /** The executor host's result key, introduced with the policy key when the root pairs. */
  executorPublicKey?: Uint8Array,
): Promise<string | undefined> {
  const view = await registryView(client);
  if (view.rootKeyId) return undefined;
  const raw = Array.from({ length: 8 }, () => CODE_ALPHABET[randomInt(CODE_ALPHABET.length)]).join('');
  const code = `${raw.slice(0, 4)}-${raw.slice(4)}`;
  await client.workflow
    .getHandle(REGISTRY_WORKFLOW_ID)
    .executeUpdate(openPairingUpdate, {
      args: [
        {
          pairingCodeHash: pairingCodeHash(code),
          policyPublicKey: toBase64(policyPublicKey),
          ...(executorPublicKey ? { executorPublicKey: toBase64(executorPublicKey) } : {}),
        },
      ],
    })
    .catch((e: unknown) => explain(e, 'open pairing'));
  return code;
}

/**
 * Enrols `key` as the root device with the one-time code, introduces the control worker's
 * policy key (it applies standing approvals people sign; alone it approves nothing), and pins the
 * root for a local executor.
 */
export async function pairRoot(
  client: Client,
  key: KeyPair & { name: string },
  code: string,
  pinFile?: string,
): Promise<RegistryView> {
  const handle = client.workflow.getHandle(REGISTRY_WORKFLOW_ID);
  const at = new Date().toISOString();
  const record = signDeviceRecord(
    { type: 'enroll-root', publicKey: toBase64(key.publicKey), name: key.name, at },
    key,
  );
  let view = await handle
    .executeUpdate(enrollRootUpdate, { args: [{ record, pairingCode: code }] })
    .catch((e: unknown) => explain(e, 'pair'));
  if (view.policyPublicKey) {
    const intro = signDeviceRecord(
      {
        type: 'introduce',
        publicKey: view.policyPublicKey,
        name: 'policy (applies standing approvals)',
        role: 'policy',
        at,
      },
      key,
    );
    view = await addDeviceRecord(client, intro, 'introduce policy key');
  }
  if (view.executorPublicKey) view = await introduceExecutor(client, key, fromBase64(view.executorPublicKey));
  if (pinFile) await pinRootDevice(pinFile, key.keyId);
  return view;
}

/** Introduces an executor host's result key (role executor): from then on, results must come signed by it. */
export async function introduceExecutor(
  client: Client,
  by: KeyPair,
  publicKey: Uint8Array,
  name = 'executor (signs what ran)',
): Promise<RegistryView> {
  const record = signDeviceRecord(
    {
      type: 'introduce',
      publicKey: toBase64(publicKey),
      name,
      role: 'executor',
      at: new Date().toISOString(),
    },
    by,
  );
  return addDeviceRecord(client, record, 'introduce the executor key');
}

export async function introduceDevice(
  client: Client,
  by: KeyPair,
  device: { publicKey: Uint8Array; name: string },
): Promise<RegistryView> {
  const record = signDeviceRecord(
    {
      type: 'introduce',
      publicKey: toBase64(device.publicKey),
      name: device.name,
      role: 'approver',
      at: new Date().toISOString(),
    },
    by,
  );
  return addDeviceRecord(client, record, 'introduce device');
}

export async function revokeDevice(
  client: Client,
  by: KeyPair,
  keyId: string,
  reason: string,
): Promise<RegistryView> {
  const record = signDeviceRecord({ type: 'revoke', keyId, reason, at: new Date().toISOString() }, by);
  return addDeviceRecord(client, record, 'revoke device');
}

/** Applies one signed device record (introduce, revoke, issue or revoke an agent) to the registry. */
export async function addDeviceRecord(client: Client, record: Envelope, what: string): Promise<RegistryView> {
  return client.workflow
    .getHandle(REGISTRY_WORKFLOW_ID)
    .executeUpdate(addDeviceRecordUpdate, { args: [{ record }] })
    .catch((e: unknown) => explain(e, what));
}

/** The executor on this host trusts approvals chaining to this root from now on. */
export async function pinRootDevice(pinFile: string, rootKeyId: string): Promise<void> {
  await mkdir(dirname(pinFile), { recursive: true });
  await writeFile(pinFile, `${rootKeyId}\n`, { mode: 0o644 });
}

/**
 * Puts back a device registry that was replaced or rolled back: the current one is terminated and
 * a new one starts with `records`, the longest chain from the pinned root a process here holds
 * (records prove themselves: each is signed). Refused when the registry already extends them.
 */
export async function restoreRegistry(
  client: Client,
  records: readonly Envelope[],
  pinnedRootKeyId: string,
): Promise<{ had: number; restored: number }> {
  DeviceRegistry.fromRecords(records, pinnedRootKeyId);
  const current = await client.workflow
    .getHandle(REGISTRY_WORKFLOW_ID)
    .query(registryViewQuery)
    .catch(() => undefined);
  const had = current?.records.length ?? 0;
  const extendsOurs =
    current !== undefined &&
    had >= records.length &&
    records.every((r, i) => r.signatures[0].sig === current.records[i]?.signatures[0].sig);
  if (extendsOurs)
    throw new UserFacingError(
      `the device registry already holds this chain (${had} records): nothing to restore`,
      'not_needed',
    );
  await client.workflow
    .getHandle(REGISTRY_WORKFLOW_ID)
    .terminate(
      `restored: it had ${had} records that do not extend the ${records.length} held from the pinned root`,
    )
    .catch(() => undefined);
  await client.workflow.start('deviceRegistryWorkflow', {
    workflowId: REGISTRY_WORKFLOW_ID,
    taskQueue: TASK_QUEUES.control,
    args: [{ records: [...records] }],
  });
  return { had, restored: records.length };
}

/**
 * Opens pairing on this machine, offering the control worker's policy key and the executor's
 * result key from the state folder (made here if the workers have not started yet).
 */
export async function openLocalPairing(
  client: Client,
  paths: { policyKey: string; executorKey: string },
): Promise<string | undefined> {
  const [policy, executor] = await Promise.all([
    loadOrCreateKeyFile(paths.policyKey, 'policy'),
    loadOrCreateKeyFile(paths.executorKey, 'executor'),
  ]);
  return openPairing(client, policy.publicKey, executor.publicKey);
}
