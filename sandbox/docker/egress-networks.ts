/**
 * Each plan with `egress: true` gets an egress-only bridge of its own, so Docker's DNS answers
 * only for the plan's own containers (never another plan's names, nor their addresses by PTR).
 * Every such bridge is named cs-eg…, which the firewall of scripts/egress-network matches as a
 * whole; subnets are /26 blocks of 10.213.0.0/16 above the marker network's /24.
 */
import { createHash, randomInt } from 'node:crypto';
import type Docker from 'dockerode';
import { BrokerRefused, LABELS } from './container-policy.js';

/** The `countersign.role` of a plan's egress network. */
export const PLAN_EGRESS_ROLE = 'plan-egress';
const FIRST_BLOCK = 16; // 10.213.0.0/22 is the marker network's
const BLOCKS = 1024; // /26 blocks in a /16
const ATTEMPTS = 8;

const blockSubnet = (block: number) => `10.213.${Math.floor(block / 4)}.${(block % 4) * 64}/26`;

const isStatus = (error: unknown, status: number) => (error as { statusCode?: number }).statusCode === status;

export interface PlanEgressNetwork {
  name: string;
  bridge: string;
}

/** Names derived from the plan and the installation: no plan id shows in a name a container could see. */
export function planEgressNetwork(scope: string, plan: string): PlanEgressNetwork {
  const digest = createHash('sha256').update(`${scope}\0${plan}`).digest('hex');
  // Linux interface names hold 15 characters: cs-eg and 10 hex digits.
  return { name: `countersign-egress-${digest.slice(0, 24)}`, bridge: `cs-eg${digest.slice(0, 10)}` };
}

/** Makes the plan's egress network if it has none; returns its name. */
export async function ensurePlanEgressNetwork(docker: Docker, scope: string, plan: string): Promise<string> {
  const { name, bridge } = planEgressNetwork(scope, plan);
  const found = await docker
    .getNetwork(name)
    .inspect()
    .catch(() => undefined);
  if (found) return name;
  const existing = await docker.listNetworks({ filters: { label: [`${LABELS.role}=${PLAN_EGRESS_ROLE}`] } });
  const used = new Set(existing.flatMap((n) => (n.IPAM?.Config ?? []).map((c) => c.Subnet)));
  let lastError: unknown;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const subnet = blockSubnet(FIRST_BLOCK + randomInt(BLOCKS - FIRST_BLOCK));
    if (used.has(subnet)) continue;
    try {
      await docker.createNetwork({
        Name: name,
        Driver: 'bridge',
        CheckDuplicate: true,
        IPAM: { Config: [{ Subnet: subnet }] },
        Options: {
          'com.docker.network.bridge.name': bridge,
          'com.docker.network.bridge.enable_icc': 'false',
        },
        Labels: {
          [LABELS.managed]: 'true',
          [LABELS.scope]: scope,
          [LABELS.role]: PLAN_EGRESS_ROLE,
          [LABELS.plan]: plan,
        },
      });
      return name;
    } catch (error) {
      // Made by a parallel step of the plan: it is the plan's all the same.
      if (isStatus(error, 409)) return name;
      lastError = error; // a subnet taken since the list: try another
    }
  }
  throw new BrokerRefused(
    'egress_unavailable',
    `no egress network could be made for the plan (${(lastError as Error | undefined)?.message ?? 'every subnet tried was taken'}); the step was not started`,
  );
}

/**
 * Removes the egress networks of plans not in `livePlans` made before `createdBeforeMs` (or of
 * `onlyPlan`), once nothing is
 * attached to them; returns their names. Docker refuses to remove a network in use: it stays
 * for the next sweep.
 */
export async function removePlanEgressNetworks(
  docker: Docker,
  scope: string,
  which: { onlyPlan: string } | { livePlans: ReadonlySet<string>; createdBeforeMs: number },
): Promise<string[]> {
  const label = [`${LABELS.role}=${PLAN_EGRESS_ROLE}`, `${LABELS.scope}=${scope}`];
  if ('onlyPlan' in which) label.push(`${LABELS.plan}=${which.onlyPlan}`);
  const networks = await docker.listNetworks({ filters: { label } });
  const removed: string[] = [];
  for (const network of networks) {
    if (
      'livePlans' in which &&
      (which.livePlans.has(network.Labels?.[LABELS.plan] ?? '') ||
        Date.parse(network.Created) >= which.createdBeforeMs - 1000)
    )
      continue;
    try {
      await docker.getNetwork(network.Id).remove();
      removed.push(network.Name);
    } catch (error) {
      if (!isStatus(error, 404) && !isStatus(error, 403) && !isStatus(error, 409)) throw error;
    }
  }
  return removed;
}
