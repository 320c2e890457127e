/** `countersign pair`, `countersign devices [add|revoke]`. */
import { hostname } from 'node:os';
import { fromBase64 } from '../../core/bytes.js';
import { introduceDevice, pairRoot, registryView, revokeDevice } from '../../services/devices.js';
import { UserFacingError } from '../../services/errors.js';
import { generateKeyPair } from '../../core/keys.js';
import { readKeyFile, writeKeyFile } from '../../workers/key-file.js';
import type { CliContext } from '../context.js';
import { bold, dim, green, red } from '../format.js';

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
    console.log(dim("  introduced the control worker's policy key, so plans may use auto-approve rules"));
}

export async function listDevices(ctx: CliContext): Promise<void> {
  const view = await registryView(await ctx.client());
  if (!view.devices.length) {
    console.log(
      view.pairingOpen
        ? 'no devices yet: pairing is open (the code is printed by countersign up)'
        : 'no devices yet: run countersign up',
    );
    return;
  }
  for (const d of view.devices) {
    const state = d.revoked ? red(`revoked ${d.revoked.at} (${d.revoked.reason})`) : green('active');
    console.log(
      `${d.keyId}  ${bold(d.name.padEnd(28))} ${d.role.padEnd(9)} ${state}${d.introducedBy ? dim(`  introduced by ${d.introducedBy.slice(0, 12)}…`) : ''}`,
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
