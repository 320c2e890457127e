/** What every CLI command needs: configuration, a Temporal client, and this CLI's device key. */
import { Client, type Connection } from '@temporalio/client';
import { connectTemporal } from '../services/temporal/connection.js';
import { UserFacingError } from '../services/errors.js';
import { loadConfig, stackTemporalTlsDir, statePaths, type Config } from '../workers/config.js';
import { pinnedRootReader, readKeyFile } from '../workers/key-file.js';
import { TrustAnchorFile } from '../services/trust-anchor.js';
import type { KeyPair } from '../core/keys.js';

export class CliContext {
  readonly config: Config = loadConfig();
  readonly paths = statePaths(this.config.home);
  /** The root this CLI pinned, and the longest chain from it it has seen: a replaced registry is refused. */
  readonly anchor = new TrustAnchorFile(this.paths.cliChain, pinnedRootReader(this.paths.pinnedRoot));
  private connection?: Connection;

  async client(): Promise<Client> {
    if (!this.connection) {
      try {
        // `countersign up` makes the stack's certificates after this context was made.
        const temporalTlsDir = this.config.temporalTlsDir ?? stackTemporalTlsDir(this.config.home);
        this.connection = await connectTemporal({ ...this.config, temporalTlsDir }, 'cli', {
          connectTimeout: 3_000,
        });
      } catch (error) {
        if (error instanceof UserFacingError) throw error;
        throw new UserFacingError(
          `cannot reach Temporal at ${this.config.temporalAddress}: is the stack up? Run: countersign up`,
          'unavailable',
        );
      }
    }
    return new Client({ connection: this.connection, namespace: this.config.namespace });
  }

  /** This CLI's device key; commands that sign need it paired first. */
  async deviceKey(): Promise<KeyPair & { name: string }> {
    const key = await readKeyFile(this.paths.cliKey);
    if (!key)
      throw new UserFacingError(
        `this CLI has no device key yet: pair it first with \`countersign pair CODE\` (key file: ${this.paths.cliKey})`,
        'not_paired',
      );
    return key;
  }

  async close(): Promise<void> {
    await this.connection?.close();
  }
}
