/**
 * A worker's connection to Temporal (the Rust core), with its process's client certificate
 * (connection.ts says why every connection is made in one place).
 */
import type { NativeConnection } from '@temporalio/worker';
import { temporalTls, type TemporalTarget } from './connection.js';
import type { TemporalClientKind } from './tls.js';

/** A worker connection (the Rust core): the control worker, the executor. */
export async function connectTemporalWorker(
  target: TemporalTarget,
  kind: TemporalClientKind,
): Promise<NativeConnection> {
  const tls = await temporalTls(target, kind);
  const { NativeConnection } = await import('@temporalio/worker');
  return NativeConnection.connect({ address: target.temporalAddress, ...(tls ? { tls } : {}) });
}
