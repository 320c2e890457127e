/**
 * Every connection to Temporal is made here, so each carries its process's client certificate
 * when the stack has a door (services/temporal/door.ts) and none is made by accident without one.
 * The SDK loads on first use: the supervisor imports this file and never connects. A worker's
 * connection is in worker-connection.ts, so the API never loads the worker SDK.
 */
import type { Connection } from '@temporalio/client';
import type { Config } from '../../workers/config.js';
import { temporalClientTls, type TemporalClientKind, type TemporalClientTls } from './tls.js';

export type TemporalTarget = Pick<Config, 'temporalAddress' | 'temporalTlsDir'>;

export async function temporalTls(
  target: Pick<Config, 'temporalTlsDir'>,
  kind: TemporalClientKind,
): Promise<TemporalClientTls | undefined> {
  return target.temporalTlsDir ? temporalClientTls(target.temporalTlsDir, kind) : undefined;
}

/** A client connection (grpc-js): the API, the CLI, set-up. */
export async function connectTemporal(
  target: TemporalTarget,
  kind: TemporalClientKind,
  options: { connectTimeout?: number } = {},
): Promise<Connection> {
  const tls = await temporalTls(target, kind);
  const { Connection } = await import('@temporalio/client');
  return Connection.connect({ address: target.temporalAddress, ...(tls ? { tls } : {}), ...options });
}
