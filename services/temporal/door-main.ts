/**
 * The door as a process of its own (the compose deployment, where Temporal shares the door's
 * network namespace and listens on its loopback only). The embedded stack opens the same door
 * in-process instead (server.ts).
 *
 * COUNTERSIGN_DOOR_LISTEN     host:port the door listens on (default 0.0.0.0:7234)
 * COUNTERSIGN_DOOR_UPSTREAM   the frontend, host:port (default 127.0.0.1:7233)
 * COUNTERSIGN_TEMPORAL_TLS_DIR  the door's certificate and the stack's CA
 */
import { ConfigError, loadConfig } from '../../workers/config.js';
import { isMain, runMain } from '../../workers/main.js';
import { openTemporalDoor, type TemporalDoorOptions } from './door.js';

const HOST_PORT = /^([A-Za-z0-9.[\]:-]+):(\d{1,5})$/;

function hostPort(name: string, value: string): { host: string; port: number } {
  const match = HOST_PORT.exec(value);
  const port = Number(match?.[2]);
  if (!match || port < 1 || port > 65_535) throw new ConfigError(`${name} must be host:port, got "${value}"`);
  return { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

export function doorOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): TemporalDoorOptions {
  const tlsDir = loadConfig(env).temporalTlsDir;
  if (!tlsDir)
    throw new ConfigError(
      'COUNTERSIGN_TEMPORAL_TLS_DIR must name the folder with door.crt, door.key and ca.crt',
    );
  return {
    ...hostPort('COUNTERSIGN_DOOR_LISTEN', env.COUNTERSIGN_DOOR_LISTEN || '0.0.0.0:7234'),
    upstream: hostPort('COUNTERSIGN_DOOR_UPSTREAM', env.COUNTERSIGN_DOOR_UPSTREAM || '127.0.0.1:7233'),
    tlsDir,
  };
}

if (isMain(import.meta.url)) {
  runMain('temporal door', async () => {
    const options = doorOptionsFromEnv();
    const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
    const door = await openTemporalDoor({ ...options, log });
    log(
      `temporal door listening on ${door.address} (mutual TLS) → ${process.env.COUNTERSIGN_DOOR_UPSTREAM || '127.0.0.1:7233'}`,
    );
    const stop = () => void door.close().finally(() => process.exit(0));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}
