/**
 * The VAPID key pair that signs Web Push requests: made at the control worker's first start and
 * kept in its state folder (mode 0600). Browsers subscribe with the public half; replacing the
 * pair would orphan every subscription, so an existing file is never overwritten.
 */
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import webpush from 'web-push';

export interface VapidKeys {
  publicKey: string;
  privateKey: string;
}

export async function loadOrCreateVapidKeys(path: string): Promise<VapidKeys> {
  try {
    return await readVapidKeys(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const keys = webpush.generateVAPIDKeys();
  try {
    await writeFile(path, JSON.stringify(keys, null, 2), { mode: 0o600, flag: 'wx' });
    await chmod(path, 0o600);
    return keys;
  } catch (error) {
    // Another process made it first: use theirs.
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return readVapidKeys(path);
    throw error;
  }
}

async function readVapidKeys(path: string): Promise<VapidKeys> {
  const text = await readFile(path, 'utf8');
  const mode = (await stat(path)).mode & 0o777;
  if (mode & 0o077)
    throw new Error(
      `VAPID key file ${path} is readable by others (mode ${mode.toString(8)}); run: chmod 600 ${path}`,
    );
  const keys = JSON.parse(text) as Partial<VapidKeys>;
  if (typeof keys.publicKey !== 'string' || typeof keys.privateKey !== 'string')
    throw new Error(`VAPID key file ${path} is not a {publicKey, privateKey} JSON object`);
  return { publicKey: keys.publicKey, privateKey: keys.privateKey };
}
