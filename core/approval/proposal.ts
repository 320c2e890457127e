/**
 * Proposals: who asked for a plan, signed. A CLI device signs with its own key; an agent signs
 * with the key its token derives (core/agents.ts), whose public half the issuing device put in the
 * registry. A grant scoped to "agent A" or "device D's plans" applies only to a plan whose
 * proposal verifies as A's or D's: a program that merely names A cannot borrow A's grants.
 */
import { z } from 'zod';
import { sha256Hex, utf8Decode, utf8ToBytes } from '../bytes.js';
import { canonicalJson } from '../canonical.js';
import type { DeviceRegistry } from '../devices/registry.js';
import type { KeyPair } from '../keys.js';
import { openEnvelope, PAYLOAD_TYPES, signEnvelope, verifyEnvelopeSignature, type Envelope } from './dsse.js';

/** Who proposed a plan, as verified. */
export type Proposer = { device: string } | { agent: string };

export interface ProposalPayload {
  workflowId: string;
  planName: string;
  /** `planSha256(raw)` of the plan as submitted. */
  planSha256: string;
  proposer: Proposer;
  at: string;
}

const payloadSchema = z
  .object({
    workflowId: z.string().min(1).max(400),
    planName: z.string().min(1).max(200),
    planSha256: z.string().regex(/^[0-9a-f]{64}$/),
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

export function signProposal(payload: ProposalPayload, key: KeyPair): Envelope {
  const ordered: ProposalPayload = {
    workflowId: payload.workflowId,
    planName: payload.planName,
    planSha256: payload.planSha256,
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
 * its top plan's proposal). With `raw`, the plan must hash to what was signed. Throws ProposalRefused.
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
    if (hash !== payload.planSha256)
      throw new ProposalRefused('the plan is not the one the proposal signed (its hash differs)');
  }
  let publicKey: Uint8Array;
  if ('device' in payload.proposer) {
    const device = expect.registry.get(payload.proposer.device);
    if (!device || device.role === 'policy')
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
