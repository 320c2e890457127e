/**
 * Proposals: who asked for a plan, signed. A CLI device signs with its own key; an agent signs
 * with the key its token derives (core/agents.ts), whose public half the issuing device put in the
 * registry. A grant scoped to "agent A" or "device D's plans" applies only to a plan whose
 * proposal verifies as A's or D's, and only to a step of the plan that was signed (the proposal
 * binds the plan's hash and each sub-plan's): a program that merely names A, or replays A's
 * proposal for a plan of its own, cannot borrow A's grants.
 */
import { z } from 'zod';
import { sha256Hex, utf8Decode, utf8ToBytes } from '../bytes.js';
import { canonicalJson } from '../canonical.js';
import { isPerson, type DeviceRegistry } from '../devices/registry.js';
import type { KeyPair } from '../keys.js';
import type { PlanSpec, StepNode } from '../plan/types.js';
import { validatePlan } from '../plan/validate.js';
import { planSteps, subPlans } from '../plan/walk.js';
import { openEnvelope, PAYLOAD_TYPES, signEnvelope, verifyEnvelopeSignature, type Envelope } from './dsse.js';

/** Who proposed a plan, as verified. */
export type Proposer = { device: string } | { agent: string };

export interface ProposalPayload {
  workflowId: string;
  planName: string;
  /** `planSha256(raw)` of the plan as submitted. */
  planSha256: string;
  /** Each sub-plan as written, by its path of ids (`docs`, `docs.review`): the child workflow's id suffix. */
  subPlans: Record<string, string>;
  proposer: Proposer;
  at: string;
}

const payloadSchema = z
  .object({
    workflowId: z.string().min(1).max(400),
    planName: z.string().min(1).max(200),
    planSha256: z.string().regex(/^[0-9a-f]{64}$/),
    subPlans: z.record(z.string().max(400), z.string().regex(/^[0-9a-f]{64}$/)),
    proposer: z.union([
      z.object({ device: z.string().regex(/^[0-9a-f]{32}$/) }).strict(),
      z.object({ agent: z.string().regex(/^[0-9a-f]{16}$/) }).strict(),
    ]),
    at: z
      .string()
      .max(40)
      .refine((s) => !Number.isNaN(Date.parse(s)), 'expected an ISO 8601 time'),
  })
  .strict();

/** The hash a proposal signs: the plan as submitted, in canonical JSON. */
export function planSha256(raw: unknown): string {
  return sha256Hex(`countersign/plan/v1\n${canonicalJson(raw)}`);
}

/** The hash of every sub-plan of `spec` as written, by its path of ids. */
export function subPlanHashes(spec: PlanSpec, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const sub of subPlans(spec)) {
    const path = prefix ? `${prefix}.${sub.id}` : sub.id;
    out[path] = planSha256(sub.raw);
    Object.assign(out, subPlanHashes(sub.plan, path));
  }
  return out;
}

export function signProposal(payload: ProposalPayload, key: KeyPair): Envelope {
  const ordered: ProposalPayload = {
    workflowId: payload.workflowId,
    planName: payload.planName,
    planSha256: payload.planSha256,
    subPlans: payload.subPlans,
    proposer: payload.proposer,
    at: payload.at,
  };
  return signEnvelope(PAYLOAD_TYPES.proposal, utf8ToBytes(JSON.stringify(ordered)), key.secretKey, key.keyId);
}

export class ProposalRefused extends Error {
  override readonly name = 'ProposalRefused';
}

export interface VerifiedProposal {
  proposer: Proposer;
  planName: string;
  workflowId: string;
}

/**
 * Checks a proposal for the plan workflow `workflowId` (a sub-plan, `<parent>.<id>`, runs under
 * its top plan's proposal). With `raw` (the workflow's plan as written), it must be the plan or
 * sub-plan the proposal signed at that place. Throws ProposalRefused.
 */
export function verifyProposal(
  envelope: unknown,
  expect: { workflowId: string; registry: DeviceRegistry; raw?: unknown },
): VerifiedProposal {
  const opened = openEnvelope(envelope, PAYLOAD_TYPES.proposal);
  if (typeof opened === 'string') throw new ProposalRefused(`the proposal is malformed: ${opened}`);
  let payload: ProposalPayload;
  try {
    payload = payloadSchema.parse(JSON.parse(utf8Decode(opened.payloadBytes)));
  } catch {
    throw new ProposalRefused('the proposal payload is malformed');
  }
  const top = payload.workflowId;
  if (expect.workflowId !== top && !expect.workflowId.startsWith(`${top}.`))
    throw new ProposalRefused(`the proposal is for ${top}, not ${expect.workflowId}`);
  if (expect.raw !== undefined) {
    let hash = '';
    try {
      hash = planSha256(expect.raw);
    } catch {
      // not plain JSON: cannot be the plan that was signed
    }
    const subPlan = expect.workflowId === top ? undefined : expect.workflowId.slice(top.length + 1);
    const signed =
      subPlan === undefined
        ? payload.planSha256
        : Object.hasOwn(payload.subPlans, subPlan)
          ? payload.subPlans[subPlan]
          : undefined;
    if (signed === undefined || hash !== signed)
      throw new ProposalRefused(
        subPlan === undefined
          ? 'the plan is not the one the proposal signed (its hash differs)'
          : `the sub-plan "${subPlan}" is not one the proposal signed`,
      );
  }
  let publicKey: Uint8Array;
  if ('device' in payload.proposer) {
    const device = expect.registry.get(payload.proposer.device);
    if (!device || !isPerson(device))
      throw new ProposalRefused(`device ${payload.proposer.device} is not a paired person's device`);
    if (device.revoked)
      throw new ProposalRefused(`device "${device.name}" was revoked at ${device.revoked.at}`);
    publicKey = device.publicKey;
  } else {
    const agent = expect.registry.agent(payload.proposer.agent);
    if (!agent) throw new ProposalRefused(`agent ${payload.proposer.agent} is not known`);
    if (agent.revoked) throw new ProposalRefused(`agent "${agent.name}" was revoked at ${agent.revoked.at}`);
    if (!agent.proposalKey)
      throw new ProposalRefused(
        `agent "${agent.name}" has a token from before signed proposals: issue it a new token`,
      );
    publicKey = agent.proposalKey;
  }
  if (!verifyEnvelopeSignature(opened, PAYLOAD_TYPES.proposal, publicKey))
    throw new ProposalRefused('the proposal signature does not verify');
  return { proposer: payload.proposer, planName: payload.planName, workflowId: top };
}

/**
 * The proposal, verified for a step about to be approved on a grant: the plan the step comes from
 * (`raw`, as written) is the one the proposal signed at `workflowId`, and the step is that plan's
 * step at its path, unchanged. Throws ProposalRefused.
 */
export function verifyProposedStep(
  envelope: unknown,
  expect: { workflowId: string; registry: DeviceRegistry; raw: unknown; step: StepNode },
): VerifiedProposal {
  const verified = verifyProposal(envelope, expect);
  let planned: StepNode | undefined;
  try {
    planned = planSteps(validatePlan(expect.raw, { planRules: 'read' })).find(
      (s) => s.path === expect.step.path,
    );
  } catch {
    throw new ProposalRefused('the signed plan does not validate');
  }
  let same = false;
  try {
    same = planned !== undefined && canonicalJson(planned) === canonicalJson(expect.step);
  } catch {
    same = false;
  }
  if (!same)
    throw new ProposalRefused(`step "${expect.step.path}" is not the step the signed plan has there`);
  return verified;
}
