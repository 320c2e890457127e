/**
 * The certificates that make Temporal's frontend Countersign's alone: a private CA made at set-up,
 * server certificates for the door (door.ts) and the worker gate's listening side, and one client
 * certificate per process kind. Only a process holding one of these keys (files of mode 0600 in a folder of mode
 * 0700) gets past the door; another local user, or an agent without the state folder, does not.
 *
 * Made with the openssl CLI (Node can verify certificates but not issue them).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { UserFacingError } from '../errors.js';

const run = promisify(execFile);

/**
 * Who connects: each kind has its own client certificate. The gate's passes the door; the
 * executor's passes only the worker gate (which lets the sandbox queue's worker calls through).
 */
export const TEMPORAL_CLIENT_KINDS = ['api', 'control', 'cli', 'gate', 'executor', 'setup'] as const;
/** The two listening sides: the door in front of the frontend, the worker gate in front of the door. */
export type TemporalServerKind = 'door' | 'gate-server';
export type TemporalClientKind = (typeof TEMPORAL_CLIENT_KINDS)[number];

/** The name the door's certificate carries and every client checks, whatever address it dials. */
export const DOOR_SERVER_NAME = 'temporal.countersign.internal';

/** What a Temporal client (grpc-js or the Rust core) needs to pass the door. */
export interface TemporalClientTls {
  serverNameOverride: string;
  serverRootCACertificate: Buffer;
  clientCertPair: { crt: Buffer; key: Buffer };
}

export interface ServerTls {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

const file = (dir: string, name: string) => join(dir, name);

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

/** The client side for one process kind; a clear error when the folder lacks its certificate. */
export async function temporalClientTls(dir: string, kind: TemporalClientKind): Promise<TemporalClientTls> {
  try {
    return {
      serverNameOverride: DOOR_SERVER_NAME,
      serverRootCACertificate: await readFile(file(dir, 'ca.crt')),
      clientCertPair: {
        crt: await readFile(file(dir, `${kind}.crt`)),
        key: await readFile(file(dir, `${kind}.key`)),
      },
    };
  } catch (error) {
    throw new UserFacingError(
      `no Temporal client certificate for "${kind}" in ${dir} (${(error as Error).message}): run \`countersign up\` once, or copy ${kind}.crt, ${kind}.key and ca.crt from the stack's tls folder`,
      'unavailable',
    );
  }
}

/** A listening side's certificate, and the CA its clients must come from. */
export async function serverTls(dir: string, kind: TemporalServerKind): Promise<ServerTls> {
  return {
    ca: await readFile(file(dir, 'ca.crt')),
    cert: await readFile(file(dir, `${kind}.crt`)),
    key: await readFile(file(dir, `${kind}.key`)),
  };
}
