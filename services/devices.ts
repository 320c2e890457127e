/** Device operations against the registry workflow: pairing, introduction, revocation. */
import { randomInt } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Client } from '@temporalio/client';
import type { Envelope } from '../core/approval/dsse.js';
import { toBase64 } from '../core/bytes.js';
import { pairingCodeHash } from '../core/devices/pairing.js';
import { signDeviceRecord } from '../core/devices/records.js';
import type { KeyPair } from '../core/keys.js';
import { REGISTRY_WORKFLOW_ID, TASK_QUEUES } from '../core/names.js';
import {
  addDeviceRecordUpdate,
  enrollRootUpdate,
  openPairingUpdate,
  registryViewQuery,
  type RegistryView,
} from '../workflows/messages.js';
import { explain } from './errors.js';
import { queryLongLived } from './long-lived.js';

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

/** The registry as it stands: one query; the workflow is started only the first time it is missing. */
export function registryView(client: Client): Promise<RegistryView> {
  return queryLongLived(client, REGISTRY_WORKFLOW_ID, registryViewQuery, ensureRegistry);
}

/** Opens pairing with a fresh one-time code (only while no root device exists). Returns the code, or undefined when already paired. */
export async function openPairing(client: Client, policyPublicKey: Uint8Array): Promise<string | undefined> {
  const view = await registryView(client);
  if (view.rootKeyId) return undefined;
  const raw = Array.from({ length: 8 }, () => CODE_ALPHABET[randomInt(CODE_ALPHABET.length)]).join('');
  const code = `${raw.slice(0, 4)}-${raw.slice(4)}`;
  await client.workflow
    .getHandle(REGISTRY_WORKFLOW_ID)
    .executeUpdate(openPairingUpdate, {
      args: [{ pairingCodeHash: pairingCodeHash(code), policyPublicKey: toBase64(policyPublicKey) }],
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
  if (pinFile) await pinRootDevice(pinFile, key.keyId);
  return view;
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
