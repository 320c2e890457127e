/**
 * The API's view of the control plane: the Temporal client and the device registry, read through
 * one in-flight query at a time so a burst of requests costs one round trip.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import fp from 'fastify-plugin';
import { DeviceRegistry } from '../../core/devices/registry.js';
import { registryView } from '../../services/devices.js';
import { REGISTRY_WORKFLOW_ID } from '../../core/names.js';
import { registryViewQuery, type RegistryView } from '../../workflows/messages.js';
import type { ApiConfig } from '../config.js';
import { PlanReader } from '../live/plans.js';

export class ControlPlane {
  private inFlight?: Promise<{ view: RegistryView; registry: DeviceRegistry }>;

  readonly plans: PlanReader;

  constructor(
    readonly client: Client,
    readonly config: ApiConfig,
  ) {
    this.plans = new PlanReader(client, config.temporalUiUrl);
  }

  /**
   * The registry as it stands now. Never cached across requests: a revocation applies at once,
   * and an approval must travel with the newest records (a plan learns of revocations from them).
   */
  async registry(): Promise<{ view: RegistryView; registry: DeviceRegistry }> {
    this.inFlight ??= this.client.workflow
      .getHandle(REGISTRY_WORKFLOW_ID)
      .query(registryViewQuery)
      // Only a fresh installation has no registry yet: start it then (one more round trip, once).
      .catch((error: unknown) => {
        if (error instanceof WorkflowNotFoundError) return registryView(this.client);
        throw error;
      })
      .then((view) => ({ view, registry: DeviceRegistry.fromRecords(view.records, view.rootKeyId) }))
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
