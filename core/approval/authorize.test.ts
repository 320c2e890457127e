import { describe, expect, it } from 'vitest';
import { toBase64 } from '../bytes.js';
import { signDeviceRecord } from '../devices/records.js';
import { DeviceRegistry } from '../devices/registry.js';
import type { GrantRecord } from '../grants/grant.js';
import { keyPairFromSecret, type KeyPair } from '../keys.js';
import { stepDigest } from '../plan/digest.js';
import type { StepNode } from '../plan/types.js';
import { validatePlan } from '../plan/validate.js';
import { planSteps } from '../plan/walk.js';
import { signApproval, type ApprovalRefusal, type ApprovalRequest, type ExpectedStep } from './approval.js';
import { authorizeStep, type StepAuthority, type StepAuthorityInput } from './authorize.js';
import type { Envelope } from './dsse.js';

// ---------------------------------------------------------------------------------------------
// Fixture: people's devices (one revoked before the run, one revoked after it issued a grant),
// the policy key, an agent, and grants for the agent's `npm test` in every state a grant can be in.
// ---------------------------------------------------------------------------------------------

const keyFrom = (n: number): KeyPair => keyPairFromSecret(new Uint8Array(32).fill(n));
const root = keyFrom(1);
const approver = keyFrom(2);
const policyKey = keyFrom(3);
const retired = keyFrom(4);
const tablet = keyFrom(6);
const leaver = keyFrom(7);

const AT = '2030-01-01T00:00:00.000Z';
const NOW = Date.parse('2030-01-02T00:00:00.000Z');
const LATER = '2030-01-05T00:00:00.000Z';
const AGENT = '0123456789abcdef';

const G = {
  ok: '1000000000000001',
  revoked: '1000000000000002',
  orphan: '1000000000000003',
  short: '1000000000000004',
  limited: '1000000000000005',
  other: '1000000000000006',
} as const;

const introduce = (device: KeyPair, name: string, role: 'approver' | 'policy' = 'approver') =>
  signDeviceRecord({ type: 'introduce', publicKey: toBase64(device.publicKey), name, role, at: AT }, root);
const grantRecord = (grantId: string, name: string, overrides: Partial<GrantRecord> = {}): GrantRecord => ({
  type: 'grant',
  grantId,
  name,
  scope: { agent: AGENT },
  covers: { kind: 'shell', command: 'npm test', match: 'exact' },
  expiresAt: '2030-01-31T00:00:00.000Z',
  at: AT,
  ...overrides,
});
const registry = DeviceRegistry.fromRecords(
  [
    signDeviceRecord(
      { type: 'enroll-root', publicKey: toBase64(root.publicKey), name: 'root phone', at: AT },
      root,
    ),
    introduce(approver, 'laptop'),
    introduce(policyKey, 'policy', 'policy'),
    introduce(retired, 'old phone'),
    introduce(tablet, 'tablet'),
    introduce(leaver, "leaver's phone"),
    signDeviceRecord(
      { type: 'revoke', keyId: retired.keyId, reason: 'lost', at: '2030-01-01T12:00:00.000Z' },
      root,
    ),
    signDeviceRecord(
      { type: 'issue-agent', agentId: AGENT, name: 'builder', secretSha256: 'ab'.repeat(32), at: AT },
      root,
    ),
    signDeviceRecord(grantRecord(G.ok, 'run the tests'), root),
    signDeviceRecord(grantRecord(G.revoked, 'revoked grant'), root),
    signDeviceRecord(grantRecord(G.orphan, 'orphan grant'), leaver),
    signDeviceRecord(grantRecord(G.short, 'short grant', { expiresAt: '2030-01-03T00:00:00.000Z' }), root),
    signDeviceRecord(grantRecord(G.limited, 'twice only', { maxUses: 2 }), tablet),
    signDeviceRecord(
      grantRecord(G.other, 'lint only', {
        covers: { kind: 'shell', command: 'npm run lint', match: 'exact' },
      }),
      root,
    ),
    // After the run's approvals: the grant and the leaver's device are revoked later.
    signDeviceRecord({ type: 'revoke-grant', grantId: G.revoked, reason: 'no more', at: LATER }, approver),
    signDeviceRecord({ type: 'revoke', keyId: leaver.keyId, reason: 'left', at: LATER }, root),
  ],
  root.keyId,
);

const WORKSPACE = 'ws-1';
const WORKFLOW = 'plan-abc';
const RUN = 'run-1';
const steps = new Map<string, StepNode>(
  planSteps(
    validatePlan({
      name: 'release',
      steps: [
        { id: 'test', run: 'npm test', approval: 'auto' },
        { id: 'deploy', run: 'make deploy' },
        { id: 'ship', run: 'make ship', approval: { quorum: 2 } },
      ],
    }),
  ).map((s) => [s.path, s]),
);
const stepNamed = (path: string): StepNode => steps.get(path)!;
const expected = (path: string): ExpectedStep => {
  const step = stepNamed(path);
  return {
    digest: stepDigest(step, WORKSPACE),
    auto: step.approval.mode === 'auto',
    granted: { step, egress: false, planName: 'release', proposer: { agent: AGENT } },
  };
};

let nonces = 0;
/** A decision on `path` by `key`, with a fresh nonce unless given. */
function decide(key: KeyPair, path: string, overrides: Partial<ApprovalRequest> = {}): Envelope {
  nonces++;
  return signApproval(
    {
      workflowId: WORKFLOW,
      runId: RUN,
      stepPath: path,
      stepDigest: expected(path).digest,
      decision: 'approve',
      reason: '',
      nowMs: NOW,
      nonce: `nonce-${String(nonces).padStart(16, '0')}`,
      ...overrides,
    },
    key,
  );
}
const grantRef = (grantId: string) => ({ id: grantId, sig: registry.grant(grantId)!.sig });
/** The policy key applying grant `grantId` to the `test` step. */
const applied = (grantId: string, overrides: Partial<ApprovalRequest> = {}) =>
  decide(policyKey, 'test', { grant: grantRef(grantId), use: 1, ...overrides });

function authorize(
  path: string,
  approvals: Envelope[],
  overrides: Partial<StepAuthorityInput> = {},
): StepAuthority {
  return authorizeStep({
    workflowId: WORKFLOW,
    runId: RUN,
    step: stepNamed(path),
    expected: expected(path),
    approvals,
    registry,
    ...overrides,
  });
}

interface Outcome {
  verdict: StepAuthority['verdict'];
  summary: string | RegExp;
  voided?: ApprovalRefusal[];
  people?: number;
  via?: ('device' | 'grant' | 'plan-rule')[];
}

// ---------------------------------------------------------------------------------------------

describe('authorizeStep: the one rule', () => {
  const cases: [string, string, () => Envelope[], Partial<StepAuthorityInput>, Outcome][] = [
    [
      'no approvals',
      'deploy',
      () => [],
      {},
      { verdict: 'pending', summary: '0 of 1 approval', voided: [], people: 0 },
    ],
    [
      'one person',
      'deploy',
      () => [decide(root, 'deploy')],
      {},
      { verdict: 'approved', summary: 'approved by root phone', people: 1, via: ['device'] },
    ],
    [
      'a person approving an auto step',
      'test',
      () => [decide(approver, 'test')],
      {},
      { verdict: 'approved', summary: 'approved by laptop', people: 1, via: ['device'] },
    ],
    [
      'quorum 2, one person',
      'ship',
      () => [decide(root, 'ship')],
      {},
      { verdict: 'pending', summary: '1 of 2 approvals', people: 1 },
    ],
    [
      'quorum 2, two people',
      'ship',
      () => [decide(root, 'ship'), decide(approver, 'ship')],
      {},
      {
        verdict: 'approved',
        summary: 'approved by root phone, laptop',
        people: 2,
        via: ['device', 'device'],
      },
    ],
    [
      'quorum 2, the same device twice',
      'ship',
      () => [decide(root, 'ship'), decide(root, 'ship')],
      {},
      { verdict: 'pending', summary: '1 of 2 approvals', voided: [], people: 1, via: ['device'] },
    ],
    [
      'a deny after enough approvals',
      'deploy',
      () => [decide(root, 'deploy'), decide(approver, 'deploy', { decision: 'deny', reason: 'not today' })],
      {},
      { verdict: 'denied', summary: 'denied by laptop: not today', people: 1 },
    ],
    [
      'a deny before approvals',
      'ship',
      () => [decide(approver, 'ship', { decision: 'deny' }), decide(root, 'ship'), decide(tablet, 'ship')],
      {},
      { verdict: 'denied', summary: 'denied by laptop', people: 2 },
    ],
    [
      'a deny against a grant',
      'test',
      () => [applied(G.ok), decide(root, 'test', { decision: 'deny', reason: 'flaky' })],
      {},
      { verdict: 'denied', summary: 'denied by root phone: flaky', via: ['grant', 'device'] },
    ],
    [
      'a deny from a revoked device (does not count)',
      'deploy',
      () => [decide(retired, 'deploy', { decision: 'deny' }), decide(root, 'deploy')],
      {},
      { verdict: 'approved', summary: 'approved by root phone', voided: ['revoked_device'], people: 1 },
    ],
    [
      'only a deny from a revoked device',
      'deploy',
      () => [decide(retired, 'deploy', { decision: 'deny' })],
      {},
      {
        verdict: 'pending',
        summary: `0 of 1 approval; not counted: [revoked_device] device "old phone" (${retired.keyId}) was revoked at 2030-01-01T12:00:00.000Z`,
        voided: ['revoked_device'],
      },
    ],
    [
      'a grant on an auto step',
      'test',
      () => [applied(G.ok)],
      {},
      {
        verdict: 'approved',
        summary: `approved by standing approval "run the tests" (${G.ok})`,
        voided: [],
        people: 0,
        via: ['grant'],
      },
    ],
    [
      'a grant on a step that needs a person',
      'deploy',
      () => [decide(policyKey, 'deploy', { grant: grantRef(G.ok), use: 1 })],
      {},
      {
        verdict: 'pending',
        summary:
          /^0 of 1 approval; not counted: \[policy_key_not_allowed\] step "deploy" needs a human approval/,
        voided: ['policy_key_not_allowed'],
      },
    ],
    [
      'the policy key without a grant',
      'test',
      () => [decide(policyKey, 'test')],
      {},
      {
        verdict: 'pending',
        summary:
          /^0 of 1 approval; not counted: \[grant_required\] the policy key applies standing approvals a person signed/,
        voided: ['grant_required'],
      },
    ],
    [
      'the policy key without a grant, replaying a plan from before grants',
      'test',
      () => [decide(policyKey, 'test')],
      { legacyPlanRules: true },
      {
        verdict: 'approved',
        summary: "approved by the plan's own rule (before standing approvals)",
        voided: [],
        people: 0,
        via: ['plan-rule'],
      },
    ],
    [
      'plan rules never approve a step that needs a person',
      'deploy',
      () => [decide(policyKey, 'deploy')],
      { legacyPlanRules: true },
      { verdict: 'pending', summary: /^0 of 1 approval; not counted/, voided: ['policy_key_not_allowed'] },
    ],
    [
      'a revoked grant',
      'test',
      () => [applied(G.revoked)],
      {},
      {
        verdict: 'pending',
        summary: `0 of 1 approval; not counted: [grant_revoked] standing approval "revoked grant" (${G.revoked}) was revoked at ${LATER}`,
        voided: ['grant_revoked'],
      },
    ],
    [
      'a grant revoked after the time asked about',
      'test',
      () => [applied(G.revoked)],
      { revokedAsOfMs: NOW },
      {
        verdict: 'approved',
        summary: `approved by standing approval "revoked grant" (${G.revoked})`,
        voided: [],
      },
    ],
    [
      'a grant revoked at exactly the time asked about',
      'test',
      () => [applied(G.revoked)],
      { revokedAsOfMs: Date.parse(LATER) },
      { verdict: 'pending', summary: /grant_revoked/, voided: ['grant_revoked'] },
    ],
    [
      "a grant whose issuer's device was revoked",
      'test',
      () => [applied(G.orphan)],
      {},
      {
        verdict: 'pending',
        summary: `0 of 1 approval; not counted: [grant_revoked] standing approval "orphan grant" (${G.orphan}) was signed by device "leaver's phone", which was revoked at ${LATER}`,
        voided: ['grant_revoked'],
      },
    ],
    [
      "a grant whose issuer's device was revoked after the time asked about",
      'test',
      () => [applied(G.orphan)],
      { revokedAsOfMs: NOW },
      { verdict: 'approved', summary: `approved by standing approval "orphan grant" (${G.orphan})` },
    ],
    [
      'a grant applied before it expired, checked after',
      'test',
      () => [applied(G.short)],
      {},
      { verdict: 'approved', summary: `approved by standing approval "short grant" (${G.short})` },
    ],
    [
      'a grant applied at the instant it expired',
      'test',
      () => [applied(G.short, { nowMs: Date.parse('2030-01-03T00:00:00.000Z') })],
      {},
      {
        verdict: 'pending',
        summary: `0 of 1 approval; not counted: [grant_expired] standing approval "short grant" (${G.short}) expired at 2030-01-03T00:00:00.000Z`,
        voided: ['grant_expired'],
      },
    ],
    [
      'a grant applied after it expired',
      'test',
      () => [applied(G.short, { nowMs: Date.parse('2030-01-04T00:00:00.000Z') })],
      {},
      { verdict: 'pending', summary: /grant_expired/, voided: ['grant_expired'] },
    ],
    [
      'a grant applied in time, checked by an executor after it expired (a backdated issuedAt proves nothing)',
      'test',
      () => [applied(G.short)],
      { grantsAtMs: Date.parse('2030-01-03T00:00:00.000Z') },
      { verdict: 'pending', summary: /grant_expired/, voided: ['grant_expired'] },
    ],
    [
      'a grant applied in time, checked by an executor while it is in force',
      'test',
      () => [applied(G.short)],
      { grantsAtMs: Date.parse('2030-01-02T23:59:59.000Z') },
      { verdict: 'approved', summary: `approved by standing approval "short grant" (${G.short})` },
    ],
    [
      'a limited grant, its last use',
      'test',
      () => [applied(G.limited, { use: 2 })],
      {},
      { verdict: 'approved', summary: `approved by standing approval "twice only" (${G.limited})` },
    ],
    [
      'a limited grant, one use too many',
      'test',
      () => [applied(G.limited, { use: 3 })],
      {},
      {
        verdict: 'pending',
        summary: `0 of 1 approval; not counted: [grant_used_up] standing approval "twice only" (${G.limited}) allows 2 uses; this would be use 3`,
        voided: ['grant_used_up'],
      },
    ],
    [
      'a limited grant, an uncounted use',
      'test',
      () => [applied(G.limited, { use: undefined })],
      {},
      {
        verdict: 'pending',
        summary: `0 of 1 approval; not counted: [grant_used_up] standing approval "twice only" (${G.limited}) allows 2 uses; this would be an uncounted one`,
        voided: ['grant_used_up'],
      },
    ],
    [
      'a grant that does not cover the step',
      'test',
      () => [applied(G.other)],
      {},
      {
        verdict: 'pending',
        summary: `0 of 1 approval; not counted: [grant_does_not_cover] standing approval "lint only" (${G.other}) does not cover "test": the command is not exactly \`npm run lint\``,
        voided: ['grant_does_not_cover'],
      },
    ],
    [
      'a grant the registry does not hold',
      'test',
      () => [
        decide(policyKey, 'test', { grant: { id: 'ffffffffffffffff', sig: grantRef(G.ok).sig }, use: 1 }),
      ],
      {},
      { verdict: 'pending', summary: /\[unknown_grant\]/, voided: ['unknown_grant'] },
    ],
    [
      'a grant the policy key uses to deny',
      'test',
      () => [applied(G.ok, { decision: 'deny' })],
      {},
      { verdict: 'pending', summary: /can only approve, never deny/, voided: ['malformed_payload'] },
    ],
    [
      'an approval of another step',
      'test',
      () => [decide(root, 'deploy')],
      {},
      { verdict: 'pending', summary: /\[unknown_step\]/, voided: ['unknown_step'] },
    ],
    [
      "an approval of another step's digest",
      'test',
      () => [decide(root, 'test', { stepDigest: expected('deploy').digest })],
      {},
      { verdict: 'pending', summary: /\[wrong_digest\]/, voided: ['wrong_digest'] },
    ],
    [
      'an approval for another workflow',
      'deploy',
      () => [decide(root, 'deploy', { workflowId: 'plan-xyz' })],
      {},
      { verdict: 'pending', summary: /\[wrong_workflow\]/, voided: ['wrong_workflow'] },
    ],
    [
      'an approval for another run',
      'deploy',
      () => [decide(root, 'deploy', { runId: 'run-0' })],
      {},
      { verdict: 'pending', summary: /\[wrong_run\]/, voided: ['wrong_run'] },
    ],
    [
      'a nonce replayed by another device',
      'ship',
      () => [
        decide(root, 'ship', { nonce: 'nonce-replayed-000001' }),
        decide(approver, 'ship', { nonce: 'nonce-replayed-000001' }),
      ],
      {},
      {
        verdict: 'pending',
        summary:
          '1 of 2 approvals; not counted: [nonce_reused] nonce nonce-replayed-000001 was already used: this approval was replayed',
        voided: ['nonce_reused'],
        people: 1,
      },
    ],
    [
      'the same envelope twice',
      'deploy',
      () => {
        const once = decide(root, 'deploy');
        return [once, once];
      },
      {},
      { verdict: 'approved', summary: 'approved by root phone', voided: ['nonce_reused'], people: 1 },
    ],
    [
      'an approval long past its expiry (time is not checked here)',
      'deploy',
      () => [decide(root, 'deploy', { nowMs: NOW - 30 * 86_400_000 })],
      {},
      { verdict: 'approved', summary: 'approved by root phone' },
    ],
    [
      'something that is not an envelope',
      'deploy',
      () => [{ payload: 'x' } as unknown as Envelope],
      {},
      {
        verdict: 'pending',
        summary: /^0 of 1 approval; not counted: \[malformed_envelope\]/,
        voided: ['malformed_envelope'],
      },
    ],
  ];

  it.each(cases)('%s', (_what, path, approvals, overrides, outcome) => {
    const authority = authorize(path, approvals(), overrides);
    expect(authority.verdict).toBe(outcome.verdict);
    if (typeof outcome.summary === 'string') expect(authority.summary).toBe(outcome.summary);
    else expect(authority.summary).toMatch(outcome.summary);
    if (outcome.voided) expect(authority.voided.map((v) => v.code)).toEqual(outcome.voided);
    if (outcome.people !== undefined) expect(authority.people).toBe(outcome.people);
    if (outcome.via) expect(authority.deciders.map((d) => d.via)).toEqual(outcome.via);
    expect(authority.quorum).toBe(stepNamed(path).approval.quorum);
  });
});

describe('authorizeStep: what it reports', () => {
  it('names the grant and the policy key for a standing approval', () => {
    const authority = authorize('test', [applied(G.ok)]);
    expect(authority.deciders).toHaveLength(1);
    const [decider] = authority.deciders;
    expect(decider).toMatchObject({
      keyId: policyKey.keyId,
      name: 'run the tests',
      decision: 'approve',
      via: 'grant',
    });
    expect(decider!.grant?.grantId).toBe(G.ok);
    expect(decider!.grant?.issuedBy).toBe(root.keyId);
  });

  it('lists each voided approval with its position, claimed key and reason', () => {
    const authority = authorize('deploy', [
      decide(root, 'deploy'),
      decide(retired, 'deploy'),
      { payload: 'x' } as unknown as Envelope,
      decide(policyKey, 'deploy'),
    ]);
    expect(authority.voided.map(({ index, keyId, code }) => ({ index, keyId, code }))).toEqual([
      { index: 1, keyId: retired.keyId, code: 'revoked_device' },
      { index: 2, keyId: '', code: 'malformed_envelope' },
      { index: 3, keyId: policyKey.keyId, code: 'policy_key_not_allowed' },
    ]);
    // Approved: what did not count is in `voided`, not in the summary.
    expect(authority.verdict).toBe('approved');
    expect(authority.summary).toBe('approved by root phone');
  });

  it("a policy key's approval never counts as a person towards a quorum", () => {
    const authority = authorize('test', [applied(G.ok), applied(G.limited)]);
    expect(authority.people).toBe(0);
    expect(authority.deciders.map((d) => d.name)).toEqual(['run the tests', 'twice only']);
    expect(authority.verdict).toBe('approved');
  });

  it('does not change its verdict with the order of independent approvals', () => {
    const a = decide(root, 'ship');
    const b = decide(approver, 'ship');
    const deny = decide(tablet, 'ship', { decision: 'deny' });
    expect(authorize('ship', [a, b]).verdict).toBe('approved');
    expect(authorize('ship', [b, a]).verdict).toBe('approved');
    for (const order of [
      [a, b, deny],
      [deny, a, b],
      [a, deny, b],
    ])
      expect(authorize('ship', order).verdict).toBe('denied');
  });
});
