/**
 * The certificates that make Temporal's frontend Countersign's alone: a private CA made at set-up,
 * server certificates for the door (door.ts) and the worker gate's listening side, and one client
 * certificate per process kind. Only a process holding one of these keys (files of mode 0600 in a folder of mode
 * 0700) gets past the door; another local user, or an agent without the state folder, does not.
 *
 * This file only reads them, so the API, which must spawn nothing, can load it; tls-issue.ts makes them.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserFacingError } from '../errors.js';

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

export const file = (dir: string, name: string) => join(dir, name);

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
