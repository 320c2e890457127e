/**
 * Issues the stack's Temporal certificates (tls.ts says what each is for) with the openssl CLI:
 * Node can verify certificates but not issue them. Only set-up loads this file, never the API.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { UserFacingError } from '../errors.js';
import { DOOR_SERVER_NAME, file, TEMPORAL_CLIENT_KINDS, type TemporalServerKind } from './tls.js';

const run = promisify(execFile);

/**
 * Makes the CA, the door's certificate and every client certificate that is missing (idempotent:
 * what exists is kept, so running processes keep working). Returns the folder.
 */
export async function ensureTemporalTls(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  if (!existsSync(file(dir, 'ca.crt'))) {
    await rm(file(dir, 'ca.key'), { force: true });
    await openssl(dir, [
      'req', '-x509', '-new', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
      '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '3650', '-subj', '/CN=Countersign Temporal CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ]); // prettier-ignore
  }
  for (const server of ['door', 'gate-server'] satisfies TemporalServerKind[])
    await issue(dir, server, 'serverAuth', `DNS:${DOOR_SERVER_NAME},DNS:localhost,IP:127.0.0.1`);
  for (const kind of TEMPORAL_CLIENT_KINDS) await issue(dir, kind, 'clientAuth');
  return dir;
}

async function issue(dir: string, name: string, usage: 'serverAuth' | 'clientAuth', altNames?: string) {
  if (existsSync(file(dir, `${name}.crt`)) && existsSync(file(dir, `${name}.key`))) return;
  const extensions = [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    `extendedKeyUsage=${usage}`,
    ...(altNames ? [`subjectAltName=${altNames}`] : []),
  ];
  await writeFile(file(dir, `${name}.ext`), extensions.join('\n') + '\n');
  try {
    await openssl(dir, [
      'req', '-new', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
      '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=countersign-${name}`,
    ]); // prettier-ignore
    await openssl(dir, [
      'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
      '-days', '825', '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.crt`,
    ]); // prettier-ignore
  } finally {
    await rm(file(dir, `${name}.csr`), { force: true });
    await rm(file(dir, `${name}.ext`), { force: true });
  }
}

async function openssl(dir: string, args: string[]): Promise<void> {
  try {
    // The folder is 0700 from the start, so a key is never readable by others before its chmod.
    await run('openssl', args, { cwd: dir });
  } catch (error) {
    const err = error as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT')
      throw new UserFacingError(
        'openssl is not installed: run scripts/setup (it installs it)',
        'unavailable',
      );
    throw new Error(`openssl ${args[0]} failed in ${dir}: ${err.stderr?.trim() || err.message}`);
  }
  for (const name of args.filter((a) => a.endsWith('.key'))) await chmod(file(dir, name), 0o600);
}
