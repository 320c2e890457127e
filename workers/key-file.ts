/** Ed25519 key files (mode 0600): the CLI's device key and the control worker's policy key; and the executor's root pin. */
import { readFileSync } from 'node:fs';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fromBase64, toBase64 } from '../core/bytes.js';
import { generateKeyPair, keyPairFromSecret, type KeyPair } from '../core/keys.js';

export async function readKeyFile(path: string): Promise<(KeyPair & { name: string }) | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  const mode = (await stat(path)).mode & 0o777;
  if (mode & 0o077)
    throw new Error(
      `key file ${path} is readable by others (mode ${mode.toString(8)}); run: chmod 600 ${path}`,
    );
  const data = JSON.parse(text) as { secretKey: string; name: string };
  return { ...keyPairFromSecret(fromBase64(data.secretKey)), name: data.name };
}

/** Writes a key file that must not exist yet (mode 0600, folder 0700). */
export async function writeKeyFile(path: string, key: KeyPair & { name: string }): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFile(
    path,
    JSON.stringify(
      {
        name: key.name,
        keyId: key.keyId,
        publicKey: toBase64(key.publicKey),
        secretKey: toBase64(key.secretKey),
      },
      null,
      2,
    ),
    { mode: 0o600, flag: 'wx' },
  );
  await chmod(path, 0o600);
}

export async function createKeyFile(path: string, name: string): Promise<KeyPair & { name: string }> {
  const key = { ...generateKeyPair(), name };
  await writeKeyFile(path, key);
  return key;
}

export async function loadOrCreateKeyFile(path: string, name: string): Promise<KeyPair & { name: string }> {
  const existing = await readKeyFile(path);
  if (existing) return existing;
  try {
    return await createKeyFile(path, name);
  } catch (error) {
    // Two processes raced to create it: the winner's key is the key.
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return (await readKeyFile(path))!;
    throw error;
  }
}

/** The root pin: COUNTERSIGN_ROOT_KEY_ID, else the file `countersign pair` writes. */
export function pinnedRootReader(
  pinFile: string,
  env: NodeJS.ProcessEnv = process.env,
): () => string | undefined {
  return () => {
    if (env.COUNTERSIGN_ROOT_KEY_ID) return env.COUNTERSIGN_ROOT_KEY_ID;
    try {
      return readFileSync(pinFile, 'utf8').trim() || undefined;
    } catch {
      return undefined;
    }
  };
}
