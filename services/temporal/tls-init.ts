/**
 * The compose deployment's certificate job: makes the stack's CA and certificates once (in the
 * CA's own volume) and gives each process kind a folder with only its own key, the certificates
 * it presents and the CA it checks against. Idempotent: an existing CA and its certificates stay.
 *
 * Usage: tls-init.js <ca folder> <output root>   (writes <output root>/<kind>/)
 */
import { chmod, copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isMain, runMain } from '../../workers/main.js';
import { ensureTemporalTls } from './tls-issue.js';
import { TEMPORAL_CLIENT_KINDS } from './tls.js';

/** Which certificates each folder gets: the door and the gate also present a server certificate. */
export const TLS_FOLDERS: Record<string, string[]> = {
  door: ['door'],
  gate: ['gate', 'gate-server'],
  ...Object.fromEntries(TEMPORAL_CLIENT_KINDS.filter((k) => k !== 'gate').map((k) => [k, [k]])),
};

export async function exportTemporalTls(caDir: string, outRoot: string): Promise<void> {
  await ensureTemporalTls(caDir);
  for (const [folder, names] of Object.entries(TLS_FOLDERS)) {
    const target = join(outRoot, folder);
    await mkdir(target, { recursive: true, mode: 0o700 });
    await copyFile(join(caDir, 'ca.crt'), join(target, 'ca.crt'));
    for (const name of names)
      for (const ext of ['crt', 'key']) {
        await copyFile(join(caDir, `${name}.${ext}`), join(target, `${name}.${ext}`));
        await chmod(join(target, `${name}.${ext}`), ext === 'key' ? 0o600 : 0o644);
      }
  }
}

if (isMain(import.meta.url)) {
  runMain('temporal certificates', async () => {
    const [caDir, outRoot] = process.argv.slice(2);
    if (!caDir || !outRoot) throw new Error('usage: tls-init <ca folder> <output root>');
    await exportTemporalTls(caDir, outRoot);
    process.stderr.write(`certificates for ${Object.keys(TLS_FOLDERS).join(', ')} in ${outRoot}\n`);
  });
}
