/**
 * Which standing approvals in the registry cover a step right now: signed by a device that is
 * still active, not revoked, not expired, and matching the step (core/grants/match.ts). The
 * control worker applies the first; the verifiers then check that one again on their own.
 */
import { isPerson, type DeviceRegistry, type Grant } from '../devices/registry.js';
import { grantCovers, type GrantedStep } from './match.js';

export interface GrantSearch {
  covering: Grant[];
  /** Why each grant in force for this kind of step did not cover it, for the person who will decide instead. */
  misses: { grant: Grant; reason: string }[];
}

export function grantsInForce(registry: DeviceRegistry, nowMs: number): Grant[] {
  return registry.listGrants().filter((grant) => {
    const issuer = registry.get(grant.issuedBy);
    return (
      !grant.revoked &&
      issuer !== undefined &&
      !issuer.revoked &&
      isPerson(issuer) &&
      Date.parse(grant.record.expiresAt) > nowMs
    );
  });
}

export function coveringGrants(registry: DeviceRegistry, step: GrantedStep, nowMs: number): GrantSearch {
  const covering: Grant[] = [];
  const misses: GrantSearch['misses'] = [];
  for (const grant of grantsInForce(registry, nowMs)) {
    const verdict = grantCovers(grant.record, step);
    if (verdict.ok) covering.push(grant);
    else if (grant.record.covers.kind === step.step.kind) misses.push({ grant, reason: verdict.reason });
  }
  return { covering, misses };
}
