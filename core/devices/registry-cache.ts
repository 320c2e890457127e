/**
 * Rebuilding a registry verifies every record's signature (about a millisecond each in pure JS);
 * the processes that rebuild one per step (the executor, the control worker applying grants) see
 * the same chain over and over, so registries are remembered by their exact records and pin.
 * Not for workflows: they keep their registry in their own state.
 */
import type { Envelope } from '../approval/dsse.js';
import { DeviceRegistry } from './registry.js';

const CACHED = 32;
const cache = new Map<string, DeviceRegistry>();

/** The registry of `records` (chained to `pinnedRootKeyId` when given); throws DeviceRecordError like fromRecords. */
export function cachedRegistry(records: readonly Envelope[], pinnedRootKeyId?: string): DeviceRegistry {
  const key = `${pinnedRootKeyId ?? ''}|${records.map((r) => `${r.signatures[0].sig}:${r.payload}`).join('|')}`;
  let registry = cache.get(key);
  if (!registry) {
    registry = DeviceRegistry.fromRecords(records, pinnedRootKeyId);
    if (cache.size >= CACHED) cache.delete(cache.keys().next().value!);
    cache.set(key, registry);
  }
  return registry;
}
