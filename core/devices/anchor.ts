/**
 * A process's own hold on the device chain: the root it pinned and the longest chain from that root
 * it has seen. Device records only ever grow, so a chain that is shorter than the one held (records
 * cut off before a revocation) or that forks from it (a registry restarted with other records) is
 * not believed: the held one is used, or the records are refused. Whoever can talk to Temporal can
 * hand a process any records; only ones that extend what it holds can change its mind.
 */
import type { Envelope } from '../approval/dsse.js';
import { DeviceRecordError, DeviceRegistry } from './registry.js';

export class ChainRefused extends Error {
  constructor(
    readonly code: 'untrusted_root' | 'forked_chain' | 'bad_record' | 'no_root',
    message: string,
  ) {
    super(message);
    this.name = 'ChainRefused';
  }
}

export interface Reconciled {
  /** The registry to trust: the held chain, or the records given when they extend it. */
  registry: DeviceRegistry;
  /** The records given extended the held chain (the holder should keep the new one). */
  grew: boolean;
  /** The records given were a prefix of the held chain: older than what this process knows. */
  stale: boolean;
}

const same = (a: Envelope, b: Envelope | undefined) =>
  b !== undefined && a.signatures[0].sig === b.signatures[0]?.sig && a.payload === b.payload;

export class ChainAnchor {
  private constructor(
    readonly rootKeyId: string,
    private held: DeviceRegistry | undefined,
  ) {}

  /** An anchor pinned to `rootKeyId`, holding `records` (already verified when it kept them; checked again). */
  static pinned(rootKeyId: string, records: readonly Envelope[] = []): ChainAnchor {
    let held: DeviceRegistry | undefined;
    if (records.length) {
      try {
        held = DeviceRegistry.fromRecords(records, rootKeyId);
      } catch (error) {
        throw new ChainRefused(
          'bad_record',
          `the chain this process kept does not verify: ${(error as Error).message}`,
        );
      }
    }
    return new ChainAnchor(rootKeyId, held);
  }

  /** The records held (empty before any were seen). */
  get records(): readonly Envelope[] {
    return this.held?.records ?? [];
  }

  /**
   * The registry to trust given `records`: theirs when they extend the held chain from the pinned
   * root, ours when theirs are a prefix of it. Throws ChainRefused for another root, a fork, or a
   * record that does not verify.
   */
  reconcile(records: readonly Envelope[]): Reconciled {
    const held = this.held;
    if (!held) {
      if (!records.length) throw new ChainRefused('no_root', 'no device records: pair a device first');
      try {
        const registry = DeviceRegistry.fromRecords(records, this.rootKeyId);
        this.held = registry;
        return { registry, grew: true, stale: false };
      } catch (error) {
        throw this.refusal(error);
      }
    }
    const known = held.records;
    const common = Math.min(known.length, records.length);
    for (let i = 0; i < common; i++)
      if (!same(known[i]!, records[i]))
        throw new ChainRefused(
          i === 0 ? 'untrusted_root' : 'forked_chain',
          i === 0
            ? `the device records start at another root than the pinned ${this.rootKeyId.slice(0, 12)}…: the registry may have been replaced`
            : `the device records differ from the chain this process holds at record ${i + 1} of ${known.length}: the registry may have been replaced or rewritten`,
        );
    if (records.length <= known.length)
      return { registry: held, grew: false, stale: records.length < known.length };
    try {
      const registry = held.extendedWith(records, this.rootKeyId)!;
      this.held = registry;
      return { registry, grew: true, stale: false };
    } catch (error) {
      throw this.refusal(error);
    }
  }

  private refusal(error: unknown): ChainRefused {
    if (error instanceof DeviceRecordError && error.code === 'untrusted_root')
      return new ChainRefused('untrusted_root', `${error.message}: the registry may have been replaced`);
    return new ChainRefused('bad_record', `a device record does not verify: ${(error as Error).message}`);
  }
}
