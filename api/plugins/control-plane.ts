/**
 * The API's view of the control plane: the Temporal client and the device registry, read through
 * one in-flight query at a time so a burst of requests costs one round trip.
 */
import type { Client } from '@temporalio/client';
import fp from 'fastify-plugin';
import type { DeviceRegistry } from '../../core/devices/registry.js';
import { cachedRegistry } from '../../core/devices/registry-cache.js';
import { registryView } from '../../services/devices.js';
import { TrustAnchorFile } from '../../services/trust-anchor.js';
import { statePaths } from '../../workers/config.js';
import { pinnedRootReader } from '../../workers/key-file.js';
import type { RegistryView } from '../../workflows/messages.js';
import type { ApiConfig } from '../config.js';
import { PlanReader } from '../live/plans.js';

export class ControlPlane {
  private inFlight?: Promise<{ view: RegistryView; registry: DeviceRegistry }>;

  readonly plans: PlanReader;
  /** The root this server pinned at pairing, and the longest chain from it it has seen. */
  readonly anchor: TrustAnchorFile;

  constructor(
    readonly client: Client,
    readonly config: ApiConfig,
  ) {
    this.plans = new PlanReader(client, config.temporalUiUrl);
    const paths = statePaths(config.home);
    this.anchor = new TrustAnchorFile(paths.apiChain, pinnedRootReader(paths.pinnedRoot));
  }

  /**
   * The registry as it stands now. Never cached across requests: a revocation applies at once,
   * and an approval must travel with the newest records (a plan learns of revocations from them).
   * Once a root is pinned here, a registry from another root, forked or rolled back is refused
   * (503 registry_untrusted): sessions, tokens and approvals are judged by no one else's chain.
   */
  async registry(): Promise<{ view: RegistryView; registry: DeviceRegistry }> {
    this.inFlight ??= registryView(this.client, this.anchor)
      .then((view) => ({
        view,
        registry: cachedRegistry(view.records, this.anchor.pinnedRoot() ?? view.rootKeyId),
      }))
      .finally(() => {
        this.inFlight = undefined;
      });
    return this.inFlight;
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    controlPlane: ControlPlane;
  }
}

export default fp<{ controlPlane: ControlPlane }>(
  async (app, { controlPlane }) => {
    app.decorate('controlPlane', controlPlane);
  },
  { name: 'control-plane' },
);
