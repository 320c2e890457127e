import { describe, expect, it } from 'vitest';
import { signApproval } from '../approval/approval.js';
import { PAYLOAD_TYPES, signEnvelope, type Envelope } from '../approval/dsse.js';
import { fromBase64, toBase64, utf8ToBytes } from '../bytes.js';
import { agentProposalKey } from '../agents.js';
import type { GrantRecord } from '../grants/grant.js';
import { keyIdOf, keyPairFromSecret, type KeyPair } from '../keys.js';
import { signDeviceRecord, type DeviceRecord } from './records.js';
import { DeviceRecordError, DeviceRegistry } from './registry.js';

const keyFrom = (n: number): KeyPair => keyPairFromSecret(new Uint8Array(32).fill(n));
const root = keyFrom(1);
const approver = keyFrom(2);
const policyKey = keyFrom(3);
const retired = keyFrom(4);
const stranger = keyFrom(5);
const newcomer = keyFrom(6);

const AT = '2030-01-01T00:00:00.000Z';
const enrollRoot = (key: KeyPair, signer: KeyPair = key, keyId = signer.keyId): Envelope =>
  signEnvelope(
    PAYLOAD_TYPES.device,
    utf8ToBytes(
      JSON.stringify({ type: 'enroll-root', publicKey: toBase64(key.publicKey), name: 'root phone', at: AT }),
    ),
    signer.secretKey,
    keyId,
  );
const introduce = (
  device: KeyPair,
  signer: KeyPair,
  role: 'approver' | 'policy' = 'approver',
  name = 'device',
): Envelope =>
  signDeviceRecord({ type: 'introduce', publicKey: toBase64(device.publicKey), name, role, at: AT }, signer);
const revoke = (device: KeyPair, signer: KeyPair): Envelope =>
  signDeviceRecord({ type: 'revoke', keyId: device.keyId, reason: 'lost', at: AT }, signer);

const records: Envelope[] = [
  enrollRoot(root),
  introduce(approver, root, 'approver', 'laptop'),
  introduce(policyKey, root, 'policy', 'policy'),
  introduce(retired, root, 'approver', 'old phone'),
  revoke(retired, root),
];

/** A fresh registry with the fixture records, so a test may change it freely. */
const fixture = (): DeviceRegistry => DeviceRegistry.fromRecords(records, root.keyId);

/** The refusal apply throws; fails the test when the record is accepted or something else is thrown. */
function refusal(registry: DeviceRegistry, envelope: Envelope, pinned?: string): DeviceRecordError {
  const before = {
    devices: JSON.stringify(registry.list(), (_k, v: unknown) => (v instanceof Uint8Array ? toBase64(v) : v)),
    records: registry.records.length,
  };
  try {
    registry.apply(envelope, pinned);
  } catch (error) {
    if (!(error instanceof DeviceRecordError))
      throw new Error(`expected DeviceRecordError, got ${String(error)}`);
    // A refused record changes nothing.
    expect(
      JSON.stringify(registry.list(), (_k, v: unknown) => (v instanceof Uint8Array ? toBase64(v) : v)),
    ).toBe(before.devices);
    expect(registry.records.length).toBe(before.records);
    return error;
  }
  throw new Error('expected the record to be refused, but it was accepted');
}

describe('DeviceRegistry: building from records', () => {
  it('enrols the root, introduces devices and records revocations', () => {
    const registry = fixture();
    expect(registry.rootKeyId).toBe(root.keyId);
    expect(registry.records).toEqual(records);
    expect(registry.list().map((d) => [d.name, d.role, d.introducedBy, d.revoked?.by])).toEqual([
      ['root phone', 'root', undefined, undefined],
      ['laptop', 'approver', root.keyId, undefined],
      ['policy', 'policy', root.keyId, undefined],
      ['old phone', 'approver', root.keyId, root.keyId],
    ]);
    expect(registry.get(retired.keyId)?.revoked).toEqual({ by: root.keyId, at: AT, reason: 'lost' });
    expect(registry.get(approver.keyId)?.publicKey).toEqual(approver.publicKey);
    expect(registry.get(approver.keyId)?.keyId).toBe(keyIdOf(approver.publicKey));
    expect(registry.get(stranger.keyId)).toBeUndefined();
  });

  it('rebuilds the same registry from its own accepted records', () => {
    const again = DeviceRegistry.fromRecords(fixture().records, root.keyId);
    expect(again.list()).toEqual(fixture().list());
  });

  it('lets an approver introduce and revoke other devices', () => {
    const registry = fixture();
    registry.apply(introduce(newcomer, approver));
    expect(registry.get(newcomer.keyId)?.introducedBy).toBe(approver.keyId);
    registry.apply(revoke(newcomer, approver));
    expect(registry.get(newcomer.keyId)?.revoked?.by).toBe(approver.keyId);
  });

  it('starts empty without records', () => {
    const empty = DeviceRegistry.fromRecords([]);
    expect(empty.rootKeyId).toBeUndefined();
    expect(empty.list()).toEqual([]);
  });
});

describe('DeviceRegistry: refusals', () => {
  it('refuses a second root enrolment', () => {
    const error = refusal(fixture(), enrollRoot(stranger));
    expect(error.code).toBe('not_allowed');
    expect(error.message).toBe('a root device is already enrolled');
    expect(refusal(fixture(), enrollRoot(root)).code).toBe('not_allowed');
  });

  it('refuses a root enrolment signed by another key', () => {
    const error = refusal(new DeviceRegistry(), enrollRoot(root, stranger));
    expect(error.code).toBe('bad_signature');
    expect(error.message).toBe('root enrolment must be signed by the enrolled key itself');
    // Claiming to be the enrolled key does not help: the signature must verify with it.
    const claimed = refusal(new DeviceRegistry(), enrollRoot(root, stranger, root.keyId));
    expect(claimed.code).toBe('bad_signature');
    expect(claimed.message).toBe('root enrolment signature does not verify');
  });

  it('refuses a root that is not the pinned one', () => {
    const error = refusal(new DeviceRegistry(), enrollRoot(stranger), root.keyId);
    expect(error.code).toBe('untrusted_root');
    expect(error.message).toBe(`root device ${stranger.keyId} is not the pinned root ${root.keyId}`);
    expect(() =>
      DeviceRegistry.fromRecords([enrollRoot(stranger), introduce(approver, stranger)], root.keyId),
    ).toThrow(DeviceRecordError);
    expect(() => DeviceRegistry.fromRecords(records, stranger.keyId)).toThrow(/is not the pinned root/);
    expect(DeviceRegistry.fromRecords(records).rootKeyId).toBe(root.keyId);
  });

  it('refuses records before the root is enrolled', () => {
    const error = refusal(new DeviceRegistry(), introduce(approver, root));
    expect(error.code).toBe('not_allowed');
    expect(error.message).toBe(`record is signed by unknown device ${root.keyId}`);
  });

  it('refuses an introduction signed by an unknown device', () => {
    const error = refusal(fixture(), introduce(newcomer, stranger));
    expect(error.code).toBe('not_allowed');
    expect(error.message).toBe(`record is signed by unknown device ${stranger.keyId}`);
  });

  it('refuses introductions and revocations signed by a revoked device', () => {
    const registry = fixture();
    const error = refusal(registry, introduce(newcomer, retired));
    expect(error.code).toBe('not_allowed');
    expect(error.message).toBe('record is signed by revoked device old phone');
    expect(refusal(registry, revoke(approver, retired)).code).toBe('not_allowed');
  });

  it('refuses the policy key introducing or revoking devices', () => {
    const registry = fixture();
    for (const envelope of [
      introduce(newcomer, policyKey),
      revoke(approver, policyKey),
      introduce(newcomer, policyKey, 'policy'),
    ]) {
      const error = refusal(registry, envelope);
      expect(error.code).toBe('not_allowed');
      expect(error.message).toBe('the policy key cannot introduce or revoke devices, agents or grants');
    }
  });

  it('never revokes the root', () => {
    for (const signer of [root, approver]) {
      const error = refusal(fixture(), revoke(root, signer));
      expect(error.code).toBe('not_allowed');
      expect(error.message).toBe('the root device cannot be revoked; pair a new root instead');
    }
  });

  it('refuses revoking an unknown device or revoking twice', () => {
    expect(refusal(fixture(), revoke(stranger, root)).message).toBe(
      `cannot revoke unknown device ${stranger.keyId}`,
    );
    expect(refusal(fixture(), revoke(retired, approver)).message).toBe('device old phone is already revoked');
  });

  it('refuses introducing a known key again, including a revoked one', () => {
    for (const device of [approver, retired, root]) {
      const error = refusal(fixture(), introduce(device, root));
      expect(error.code).toBe('not_allowed');
      expect(error.message).toBe(`device ${device.keyId} is already known`);
    }
  });

  it('refuses a record whose signature was tampered with', () => {
    for (const [registry, envelope] of [
      [fixture(), introduce(newcomer, root)],
      [fixture(), revoke(approver, root)],
      [new DeviceRegistry(), enrollRoot(root)],
    ] as const) {
      const sig = fromBase64(envelope.signatures[0].sig);
      for (let i = 0; i < sig.length; i++) {
        const mutated = sig.slice();
        mutated[i]! ^= 0x01;
        const error = refusal(registry, {
          ...envelope,
          signatures: [{ keyid: envelope.signatures[0].keyid, sig: toBase64(mutated) }],
        });
        expect(error.code, `byte ${i}`).toBe('bad_signature');
      }
    }
  });

  it('refuses every single-byte change of a record payload', () => {
    const registry = fixture();
    const envelope = introduce(newcomer, root);
    const bytes = fromBase64(envelope.payload);
    const codes = new Set<string>();
    let refused = 0;
    for (let i = 0; i < bytes.length; i++) {
      const mutated = bytes.slice();
      mutated[i]! ^= 0x01;
      codes.add(refusal(registry, { ...envelope, payload: toBase64(mutated) }).code);
      refused++;
    }
    expect(refused).toBe(bytes.length);
    expect([...codes].sort()).toEqual(['bad_signature', 'malformed_record']);
    registry.apply(envelope);
    expect(registry.get(newcomer.keyId)?.keyId).toBe(newcomer.keyId);
  });

  it('refuses malformed records, even when validly signed', () => {
    const signed = (value: unknown) =>
      signEnvelope(PAYLOAD_TYPES.device, utf8ToBytes(JSON.stringify(value)), root.secretKey, root.keyId);
    const introduceNewcomer: DeviceRecord = {
      type: 'introduce',
      publicKey: toBase64(newcomer.publicKey),
      name: 'n',
      role: 'approver',
      at: AT,
    };
    const cases: [string, Envelope][] = [
      ['a second root through an introduction', signed({ ...introduceNewcomer, role: 'root' })],
      ['an extra field', signed({ ...introduceNewcomer, admin: true })],
      ['an unknown record type', signed({ ...introduceNewcomer, type: 'promote' })],
      [
        'a 31-byte public key',
        signed({ ...introduceNewcomer, publicKey: toBase64(newcomer.publicKey.slice(1)) }),
      ],
      [
        'a public key in non-canonical base64',
        signed({
          ...introduceNewcomer,
          publicKey: toBase64(newcomer.publicKey).replace(
            /.=$/,
            (m) => `${String.fromCharCode(m.charCodeAt(0) + 1)}=`,
          ),
        }),
      ],
      ['an empty name', signed({ ...introduceNewcomer, name: '' })],
      ['an "at" that is not a time', signed({ ...introduceNewcomer, at: 'now' })],
      ['a revoke with a bad key id', signed({ type: 'revoke', keyId: 'not-hex', reason: 'x', at: AT })],
      [
        'a "__proto__" key',
        signEnvelope(
          PAYLOAD_TYPES.device,
          utf8ToBytes(`{"__proto__":{"role":"root"},${JSON.stringify(introduceNewcomer).slice(1)}`),
          root.secretKey,
          root.keyId,
        ),
      ],
      [
        'text that is not JSON',
        signEnvelope(PAYLOAD_TYPES.device, utf8ToBytes('{'), root.secretKey, root.keyId),
      ],
    ];
    for (const [what, envelope] of cases) {
      const error = refusal(fixture(), envelope);
      expect(error.code, what).toBe('malformed_record');
      expect(error.message, what).toMatch(/^device record (is malformed: .+|payload is not UTF-8 JSON)$/);
    }
    expect(({} as Record<string, unknown>).role).toBeUndefined();
  });

  it('refuses malformed envelopes and approvals presented as device records', () => {
    const approval = signApproval(
      {
        workflowId: 'w',
        runId: 'r',
        stepPath: 's',
        stepDigest: 'a'.repeat(64),
        decision: 'approve',
        nowMs: Date.parse(AT),
        nonce: 'nonce-0123456789abcdef',
      },
      root,
    );
    const introduction = introduce(newcomer, root);
    const cases: [Envelope | unknown, string][] = [
      [approval, `payloadType is "${PAYLOAD_TYPES.approval}"; expected ${PAYLOAD_TYPES.device}`],
      [
        { ...introduction, extra: 1 },
        'envelope has fields extra,payload,payloadType,signatures; expected payload, payloadType, signatures',
      ],
      [
        { ...introduction, signatures: [...introduction.signatures, ...introduction.signatures] },
        'envelope must carry exactly one signature',
      ],
      [{ ...introduction, payload: `${introduction.payload} ` }, 'payload or signature is not valid base64'],
    ];
    for (const [envelope, message] of cases) {
      const error = refusal(fixture(), envelope as Envelope);
      expect(error.code).toBe('malformed_record');
      expect(error.message).toBe(message);
    }
  });

  it('binds the payload type: an approval-typed signature over a record does not verify', () => {
    const bytes = fromBase64(introduce(newcomer, root).payload);
    const asApproval = signEnvelope(PAYLOAD_TYPES.approval, bytes, root.secretKey, root.keyId);
    expect(refusal(fixture(), { ...asApproval, payloadType: PAYLOAD_TYPES.device }).code).toBe(
      'bad_signature',
    );
  });

  it('uses distinct error codes for distinct failures', () => {
    const codes = new Set([
      refusal(fixture(), { ...introduce(newcomer, root), extra: 1 } as Envelope).code,
      refusal(new DeviceRegistry(), enrollRoot(root, stranger, root.keyId)).code,
      refusal(fixture(), introduce(newcomer, policyKey)).code,
      refusal(new DeviceRegistry(), enrollRoot(stranger), root.keyId).code,
    ]);
    expect([...codes].sort()).toEqual(['bad_signature', 'malformed_record', 'not_allowed', 'untrusted_root']);
  });
});

describe('agent tokens in the registry', () => {
  const issue = (agentId: string, signer: KeyPair) =>
    signDeviceRecord(
      { type: 'issue-agent', agentId, name: 'agent', secretSha256: 'ab'.repeat(32), at: AT },
      signer,
    );
  const revokeAgent = (agentId: string, signer: KeyPair) =>
    signDeviceRecord({ type: 'revoke-agent', agentId, reason: 'leaked', at: AT }, signer);

  it('are issued and revoked by a device, and kept as hashes', () => {
    const registry = fixture();
    registry.apply(issue('0123456789abcdef', approver));
    expect(registry.agent('0123456789abcdef')).toMatchObject({
      issuedBy: approver.keyId,
      secretSha256: 'ab'.repeat(32),
    });
    registry.apply(revokeAgent('0123456789abcdef', root));
    expect(registry.agent('0123456789abcdef')?.revoked?.by).toBe(root.keyId);
  });

  it('are refused from the policy key, from strangers, twice, or when unknown', () => {
    expect(refusal(fixture(), issue('0123456789abcdef', policyKey)).code).toBe('not_allowed');
    expect(refusal(fixture(), issue('0123456789abcdef', stranger)).code).toBe('not_allowed');
    const registry = fixture();
    registry.apply(issue('0123456789abcdef', approver));
    expect(refusal(registry, issue('0123456789abcdef', approver)).code).toBe('not_allowed');
    expect(refusal(fixture(), revokeAgent('fedcba9876543210', root)).code).toBe('not_allowed');
  });
});

describe('standing approvals (grants) in the registry', () => {
  const AGENT = '0123456789abcdef';
  const GRANT = '1111222233334444';
  const issueAgent = (signer: KeyPair = root) =>
    signDeviceRecord(
      { type: 'issue-agent', agentId: AGENT, name: 'builder', secretSha256: 'ab'.repeat(32), at: AT },
      signer,
    );
  const record = (overrides: Partial<GrantRecord> = {}): GrantRecord => ({
    type: 'grant',
    grantId: GRANT,
    name: 'run the tests',
    scope: { agents: 'all' },
    covers: { kind: 'shell', command: 'npm test', match: 'exact' },
    expiresAt: '2030-01-31T00:00:00.000Z',
    at: AT,
    ...overrides,
  });
  const grant = (signer: KeyPair, overrides: Partial<GrantRecord> = {}) =>
    signDeviceRecord(record(overrides), signer);
  const revokeGrant = (signer: KeyPair, grantId = GRANT, at = '2030-01-02T00:00:00.000Z') =>
    signDeviceRecord({ type: 'revoke-grant', grantId, reason: 'done with it', at }, signer);
  /** The fixture with an agent, so grants may name it. */
  const withAgent = (): DeviceRegistry => {
    const registry = fixture();
    registry.apply(issueAgent());
    return registry;
  };
  const grantCount = (registry: DeviceRegistry) => registry.listGrants().length;

  it.each([
    ['the root', root],
    ['an approver', approver],
  ])('accepts a grant signed by %s, keeping the record, its signature and its issuer', (_who, signer) => {
    const registry = withAgent();
    const envelope = grant(signer, { scope: { agent: AGENT } });
    registry.apply(envelope);
    const held = registry.grant(GRANT);
    expect(held).toEqual({
      grantId: GRANT,
      record: record({ scope: { agent: AGENT } }),
      sig: envelope.signatures[0].sig,
      issuedBy: signer.keyId,
    });
    expect(registry.listGrants()).toEqual([held]);
    expect(registry.records.at(-1)).toBe(envelope);
    // Rebuilding from the accepted records gives the same grants.
    expect(DeviceRegistry.fromRecords(registry.records, root.keyId).listGrants()).toEqual([held]);
  });

  it.each([
    ['all agents', { agents: 'all' } as const],
    ['a known agent', { agent: AGENT }],
    ["a person's device", { device: approver.keyId }],
    ['the root', { device: root.keyId }],
  ])('accepts a scope of %s', (_what, scope) => {
    const registry = withAgent();
    registry.apply(grant(root, { scope }));
    expect(registry.grant(GRANT)?.record.scope).toEqual(scope);
  });

  it('refuses a grant signed by the policy key, a stranger or a revoked device', () => {
    const cases: [KeyPair, string][] = [
      [policyKey, 'the policy key cannot introduce or revoke devices, agents or grants'],
      [stranger, `record is signed by unknown device ${stranger.keyId}`],
      [retired, 'record is signed by revoked device old phone'],
    ];
    for (const [signer, message] of cases) {
      const registry = fixture();
      const error = refusal(registry, grant(signer));
      expect(error.code).toBe('not_allowed');
      expect(error.message).toBe(message);
      expect(grantCount(registry)).toBe(0);
    }
  });

  it('refuses a second grant with the same id, even from another device or with another content', () => {
    const registry = fixture();
    registry.apply(grant(root));
    for (const again of [grant(root), grant(approver, { name: 'something else' })]) {
      const error = refusal(registry, again);
      expect(error.code).toBe('not_allowed');
      expect(error.message).toBe(`grant ${GRANT} is already issued`);
    }
    expect(registry.grant(GRANT)?.issuedBy).toBe(root.keyId);
    expect(grantCount(registry)).toBe(1);
  });

  it('refuses a scope naming an unknown agent or device, or the policy key', () => {
    const cases: [GrantRecord['scope'], string][] = [
      [{ agent: AGENT }, `the grant names unknown agent ${AGENT}`],
      [{ device: stranger.keyId }, `the grant names unknown device ${stranger.keyId}`],
      [{ device: policyKey.keyId }, `the grant names unknown device ${policyKey.keyId}`],
    ];
    for (const [scope, message] of cases) {
      const registry = fixture();
      const error = refusal(registry, grant(root, { scope }));
      expect(error.code).toBe('not_allowed');
      expect(error.message).toBe(message);
      expect(grantCount(registry)).toBe(0);
    }
  });

  it('refuses a malformed grant record with the schema reason', () => {
    const error = refusal(
      fixture(),
      grant(root, { covers: { kind: 'shell', command: 'sh', match: 'prefix' } }),
    );
    expect(error.code).toBe('malformed_record');
    expect(error.message).toBe(
      'device record is malformed: covers.command: "sh" runs whatever its arguments say: a prefix starting with it would allow any command; grant the exact command instead',
    );
    const expired = refusal(fixture(), grant(root, { expiresAt: AT }));
    expect(expired.message).toBe('device record is malformed: expiresAt: a grant expires after it is issued');
  });

  it.each([
    ['its issuer', root],
    ['another person', approver],
  ])('lets %s revoke a grant', (_who, signer) => {
    const registry = fixture();
    registry.apply(grant(root));
    registry.apply(revokeGrant(signer));
    expect(registry.grant(GRANT)?.revoked).toEqual({
      by: signer.keyId,
      at: '2030-01-02T00:00:00.000Z',
      reason: 'done with it',
    });
    // Revoked grants stay listed, with their fate.
    expect(registry.listGrants().map((g) => g.revoked?.by)).toEqual([signer.keyId]);
  });

  it('refuses revoking a grant from the policy key, a stranger or a revoked device', () => {
    for (const [signer, message] of [
      [policyKey, 'the policy key cannot introduce or revoke devices, agents or grants'],
      [stranger, `record is signed by unknown device ${stranger.keyId}`],
      [retired, 'record is signed by revoked device old phone'],
    ] as const) {
      const registry = fixture();
      registry.apply(grant(root));
      expect(refusal(registry, revokeGrant(signer)).message).toBe(message);
      expect(registry.grant(GRANT)?.revoked).toBeUndefined();
    }
  });

  it('refuses revoking a grant twice, keeping the first revocation', () => {
    const registry = fixture();
    registry.apply(grant(root));
    registry.apply(revokeGrant(approver));
    const error = refusal(registry, revokeGrant(root, GRANT, '2030-01-03T00:00:00.000Z'));
    expect(error.code).toBe('not_allowed');
    expect(error.message).toBe('grant "run the tests" is already revoked');
    expect(registry.grant(GRANT)?.revoked?.by).toBe(approver.keyId);
  });

  it('refuses revoking an unknown grant', () => {
    const error = refusal(fixture(), revokeGrant(root, 'ffffffffffffffff'));
    expect(error.code).toBe('not_allowed');
    expect(error.message).toBe('cannot revoke unknown grant ffffffffffffffff');
  });

  it('lists every grant in the order issued, and finds each by id', () => {
    const registry = withAgent();
    const ids = ['aaaaaaaaaaaaaaa1', 'aaaaaaaaaaaaaaa2', 'aaaaaaaaaaaaaaa3'];
    ids.forEach((grantId, i) => registry.apply(grant(i % 2 ? approver : root, { grantId, name: `g${i}` })));
    expect(registry.listGrants().map((g) => [g.grantId, g.record.name, g.issuedBy])).toEqual([
      [ids[0], 'g0', root.keyId],
      [ids[1], 'g1', approver.keyId],
      [ids[2], 'g2', root.keyId],
    ]);
    for (const grantId of ids) expect(registry.grant(grantId)?.grantId).toBe(grantId);
    expect(registry.grant(GRANT)).toBeUndefined();
    expect(fixture().listGrants()).toEqual([]);
  });

  it('a grant is not a device: grant records change neither the devices nor the agents', () => {
    const registry = withAgent();
    const devices = registry.list();
    const agents = registry.listAgents();
    registry.apply(grant(root));
    registry.apply(revokeGrant(root));
    expect(registry.list()).toEqual(devices);
    expect(registry.listAgents()).toEqual(agents);
  });
});

describe('agent tokens with a proposal key', () => {
  const secret = 'an-agent-token-secret-0123456789abcdef';
  const key = agentProposalKey(secret);

  it('exposes the public half of the proposal key as bytes', () => {
    const registry = fixture();
    registry.apply(
      signDeviceRecord(
        {
          type: 'issue-agent',
          agentId: '0123456789abcdef',
          name: 'builder',
          secretSha256: 'ab'.repeat(32),
          proposalKey: toBase64(key.publicKey),
          at: AT,
        },
        approver,
      ),
    );
    const agent = registry.agent('0123456789abcdef');
    expect(agent?.proposalKey).toBeInstanceOf(Uint8Array);
    expect(agent?.proposalKey).toEqual(key.publicKey);
    expect(agent?.issuedBy).toBe(approver.keyId);
    expect(agent?.issuedAt).toBe(AT);
  });

  it('leaves it out for tokens issued before signed proposals', () => {
    const registry = fixture();
    registry.apply(
      signDeviceRecord(
        {
          type: 'issue-agent',
          agentId: '0123456789abcdef',
          name: 'old',
          secretSha256: 'ab'.repeat(32),
          at: AT,
        },
        root,
      ),
    );
    expect(registry.agent('0123456789abcdef')).not.toHaveProperty('proposalKey');
  });

  it('refuses a proposal key that is not 32 bytes', () => {
    const error = refusal(
      fixture(),
      signDeviceRecord(
        {
          type: 'issue-agent',
          agentId: '0123456789abcdef',
          name: 'builder',
          secretSha256: 'ab'.repeat(32),
          proposalKey: toBase64(key.publicKey.slice(1)),
          at: AT,
        },
        root,
      ),
    );
    expect(error.code).toBe('malformed_record');
    expect(error.message).toBe(
      'device record is malformed: proposalKey: publicKey must be base64 of 32 bytes',
    );
  });
});

describe('DeviceRegistry.extendedWith: adopting a longer chain verifies only the new records', () => {
  it('gives the same registry as rebuilding from all records, and leaves the original as it was', () => {
    const base = DeviceRegistry.fromRecords(records.slice(0, 3), root.keyId);
    const extended = base.extendedWith(records, root.keyId)!;
    const rebuilt = DeviceRegistry.fromRecords(records, root.keyId);
    expect(extended.list()).toEqual(rebuilt.list());
    expect(extended.records).toEqual(rebuilt.records);
    expect(base.records).toHaveLength(3);
    // The revocation in the longer chain changed the copy, never the device object the base holds.
    expect(base.get(retired.keyId)?.revoked).toBeUndefined();
    expect(extended.get(retired.keyId)?.revoked).toBeDefined();
  });

  it('answers undefined for a chain that does not extend this one, and throws for a bad new record', () => {
    const base = fixture();
    expect(base.extendedWith(records.slice(0, 2))).toBeUndefined();
    expect(base.extendedWith([records[0]!, records[2]!, records[1]!, ...records.slice(3)])).toBeUndefined();
    expect(() => base.extendedWith([...records, introduce(newcomer, stranger, 'approver', 'stray')])).toThrow(
      DeviceRecordError,
    );
  });
});
