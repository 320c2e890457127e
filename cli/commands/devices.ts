/** `countersign pair`, `countersign devices [add|revoke]`. */
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadApiConfig } from '../../api/config.js';
import { fromBase64, toBase64 } from '../../core/bytes.js';
import {
  introduceDevice,
  introduceExecutor,
  pairRoot,
  registryView,
  revokeDevice,
} from '../../services/devices.js';
import { UserFacingError } from '../../services/errors.js';
import { fingerprintOf, generateKeyPair } from '../../core/keys.js';
import { readKeyFile, writeKeyFile } from '../../workers/key-file.js';
import { clean } from '../../services/history/render.js';
import type { CliContext } from '../context.js';
import { bold, cyan, dim, green, red } from '../format.js';

export async function pair(ctx: CliContext, code: string, options: { name?: string }): Promise<void> {
  // A new key is written to disk only once the pairing succeeded, so a mistyped code leaves nothing behind.
  const existing = await readKeyFile(ctx.paths.cliKey);
  const key = existing ?? { ...generateKeyPair(), name: options.name ?? `cli@${hostname()}` };
  const client = await ctx.client();
  const before = await registryView(client);
  if (before.rootKeyId) {
    throw new UserFacingError(
      before.rootKeyId === key.keyId
        ? 'this CLI is already the root device'
        : 'a root device is already paired: ask it to introduce this device (countersign devices add)',
      'already_paired',
    );
  }
  const view = await pairRoot(client, key, code, ctx.paths.pinnedRoot);
  if (!existing) await writeKeyFile(ctx.paths.cliKey, key);
  console.log(`${green('paired')} ${bold(key.name)} as the root device ${dim(`(key ${key.keyId})`)}`);
  console.log(dim(`  key file ${ctx.paths.cliKey} (mode 0600); executor pin ${ctx.paths.pinnedRoot}`));
  if (view.devices.some((d) => d.role === 'policy'))
    console.log(
      dim(
        "  introduced the control worker's policy key: it applies standing approvals you sign (countersign grants add)",
      ),
    );
}

export async function listDevices(ctx: CliContext): Promise<void> {
  const view = await registryView(await ctx.client(), ctx.anchor);
  if (!view.devices.length) {
    console.log(
      view.pairingOpen
        ? 'no devices yet: pairing is open (the code is printed by countersign up)'
        : 'no devices yet: run countersign up',
    );
    return;
  }
  for (const d of view.devices) {
    const state = d.revoked ? red(`revoked ${d.revoked.at} (${clean(d.revoked.reason)})`) : green('active');
    console.log(
      `${d.keyId}  ${bold(clean(d.name).padEnd(28))} ${d.role.padEnd(9)} ${state}${d.introducedBy ? dim(`  introduced by ${d.introducedBy.slice(0, 12)}…`) : ''}`,
    );
  }
}

export async function addDevice(ctx: CliContext, name: string, publicKeyBase64: string): Promise<void> {
  let publicKey: Uint8Array;
  try {
    publicKey = fromBase64(publicKeyBase64);
  } catch {
    throw new UserFacingError('--public-key must be the base64 of a 32-byte Ed25519 public key', 'bad_input');
  }
  const view = await introduceDevice(await ctx.client(), await ctx.deviceKey(), { publicKey, name });
  const added = view.devices.find((d) => d.name === name);
  console.log(`${green('introduced')} ${bold(name)} ${dim(`(key ${added?.keyId})`)}`);
}

export async function revoke(ctx: CliContext, keyId: string, reason: string): Promise<void> {
  await revokeDevice(await ctx.client(), await ctx.deviceKey(), keyId, reason);
  console.log(
    `${red('revoked')} ${keyId}: its approvals are refused from now on; approvals it gave earlier stay in history`,
  );
}

/**
 * `countersign join CODE`: this CLI asks to join with an invitation code from a device that is
 * already paired (its Devices screen). That device shows this key's fingerprint and signs the
 * introduction; the key file is kept only once it did.
 */
export async function join(
  ctx: CliContext,
  code: string,
  options: { name?: string; api?: string },
): Promise<void> {
  if (await readKeyFile(ctx.paths.cliKey))
    throw new UserFacingError(`this CLI already has a device key (${ctx.paths.cliKey})`, 'already_paired');
  const apiUrl = (options.api ?? loadApiConfig().publicUrl).replace(/\/$/, '');
  const key = { ...generateKeyPair(), name: options.name ?? `cli@${hostname()}` };
  const response = await fetch(`${apiUrl}/api/pairing/requests`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ code, name: key.name, publicKey: toBase64(key.publicKey) }),
  }).catch(() => {
    throw new UserFacingError(
      `cannot reach the API at ${apiUrl}: is the stack up? (--api URL to choose another)`,
      'unavailable',
    );
  });
  const body = (await response.json().catch(() => ({}))) as {
    fingerprint?: string;
    error?: { message: string };
  };
  if (!response.ok)
    throw new UserFacingError(`join refused: ${body.error?.message ?? response.status}`, 'refused');
  console.log(`asked to join as ${bold(key.name)}; fingerprint ${cyan(bold(fingerprintOf(key.keyId)))}`);
  console.log(
    dim(
      '  on the inviting device, check that it shows this fingerprint, then confirm (waiting up to 10 minutes)',
    ),
  );
  for (;;) {
    await sleep(1_000);
    const status = await fetch(`${apiUrl}/api/pairing/requests/${key.keyId}`)
      .then((r) => r.json() as Promise<{ status?: string }>)
      .catch(() => ({ status: 'waiting' }));
    if (status.status === 'introduced') break;
    if (status.status === 'expired')
      throw new UserFacingError(
        'the invitation expired before it was confirmed: ask for a new code (nothing was kept)',
        'expired',
      );
  }
  await writeKeyFile(ctx.paths.cliKey, key);
  console.log(`${green('joined')} ${bold(key.name)} ${dim(`(key ${key.keyId}, file ${ctx.paths.cliKey})`)}`);
}

/**
 * `countersign executor introduce [--public-key B64]`: this CLI's device introduces an executor
 * host's result key (this machine's, from its state folder, unless given): from then on every
 * step's result must come signed by an executor key, and plans check it.
 */
export async function introduceExecutorCommand(ctx: CliContext, publicKeyBase64?: string): Promise<void> {
  let publicKey: Uint8Array;
  if (publicKeyBase64) {
    try {
      publicKey = fromBase64(publicKeyBase64);
    } catch {
      throw new UserFacingError(
        '--public-key must be the base64 of a 32-byte Ed25519 public key',
        'bad_input',
      );
    }
  } else {
    const key = await readKeyFile(ctx.paths.executorKey);
    if (!key)
      throw new UserFacingError(
        `no executor key here (${ctx.paths.executorKey}): start the executor once, or pass --public-key from its host`,
        'not_found',
      );
    publicKey = key.publicKey;
  }
  const view = await introduceExecutor(await ctx.client(), await ctx.deviceKey(), publicKey);
  const added = view.devices.find((d) => d.role === 'executor' && !d.revoked);
  console.log(
    `${green('introduced')} executor key ${dim(`(key ${added?.keyId})`)}: results are signed and checked from now on`,
  );
}
