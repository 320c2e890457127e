import { describe, expect, it } from 'vitest';
import { fromBase64, toBase64, utf8ToBytes } from '../bytes.js';
import { signDeviceRecord, type DeviceRecord } from '../devices/records.js';
import { DeviceRegistry } from '../devices/registry.js';
import { keyIdOf, keyPairFromSecret, type KeyPair } from '../keys.js';
import { stepDigest } from '../plan/digest.js';
import { validatePlan } from '../plan/validate.js';
import { planSteps } from '../plan/walk.js';
import {
  APPROVAL_LIMITS,
  ApprovalRefused,
  signApproval,
  verifyApproval,
  type ApprovalExpectation,
  type ApprovalPayload,
  type ApprovalRefusal,
  type ApprovalRequest,
} from './approval.js';
import { PAYLOAD_TYPES, signEnvelope, type Envelope } from './dsse.js';

// ---------------------------------------------------------------------------------------------
// Fixture: a registry with a root, an approver, the policy key and a revoked device; a plan with
// a human step and an auto step; and a valid approval for the human step.
// ---------------------------------------------------------------------------------------------

/** Deterministic keys, so a failure reproduces byte for byte. */
const keyFrom = (n: number): KeyPair => keyPairFromSecret(new Uint8Array(32).fill(n));
const root = keyFrom(1);
const approver = keyFrom(2);
const policyKey = keyFrom(3);
const retired = keyFrom(4);
const stranger = keyFrom(5);

const RECORD_TIME = '2030-01-01T00:00:00.000Z';
const introduce = (device: KeyPair, name: string, role: 'approver' | 'policy', signer: KeyPair): Envelope =>
  signDeviceRecord(
    { type: 'introduce', publicKey: toBase64(device.publicKey), name, role, at: RECORD_TIME },
    signer,
  );
const deviceRecords: Envelope[] = [
  signDeviceRecord(
    { type: 'enroll-root', publicKey: toBase64(root.publicKey), name: 'root phone', at: RECORD_TIME },
    root,
  ),
  introduce(approver, 'laptop', 'approver', root),
  introduce(policyKey, 'policy', 'policy', root),
  introduce(retired, 'old phone', 'approver', root),
  signDeviceRecord(
    { type: 'revoke', keyId: retired.keyId, reason: 'lost on a train', at: '2030-01-01T12:00:00.000Z' },
    root,
  ),
];
const registry = DeviceRegistry.fromRecords(deviceRecords, root.keyId);

const WORKSPACE = 'ws-1';
// A plan recorded before standing approvals (its own autoApprove rule): new plans may only ask.
const spec = validatePlan(
  {
    name: 'release',
    policy: { autoApprove: [{ id: 'lint' }] },
    steps: [
      { id: 'lint', run: 'npm run lint', approval: 'auto' },
      { id: 'deploy', run: 'make deploy', env: { STAGE: 'prod' } },
    ],
  },
  { planRules: 'legacy' },
);
const [lintStep, deployStep] = planSteps(spec);
const digests: Record<string, { digest: string; auto: boolean }> = {
  lint: { digest: stepDigest(lintStep!, WORKSPACE), auto: true },
  deploy: { digest: stepDigest(deployStep!, WORKSPACE), auto: false },
};

const NOW = Date.parse('2030-01-02T03:04:05.000Z');
const NONCE = 'nonce-0123456789abcdef';

function expectation(overrides: Partial<ApprovalExpectation> = {}): ApprovalExpectation {
  return {
    workflowId: 'plan-abc',
    runId: 'run-1',
    step: (path) => digests[path],
    nowMs: NOW,
    nonceUsed: () => false,
    registry,
    ...overrides,
  };
}

function request(overrides: Partial<ApprovalRequest> = {}): ApprovalRequest {
  return {
    workflowId: 'plan-abc',
    runId: 'run-1',
    stepPath: 'deploy',
    stepDigest: digests.deploy!.digest,
    decision: 'approve',
    reason: 'looks good',
    nowMs: NOW,
    nonce: NONCE,
    ...overrides,
  };
}

/** The payload signApproval would write, for hand-built envelopes. */
function payloadFor(key: KeyPair, overrides: Partial<ApprovalRequest> = {}): ApprovalPayload {
  const r = request(overrides);
  return {
    workflowId: r.workflowId,
    runId: r.runId,
    stepPath: r.stepPath,
    stepDigest: r.stepDigest,
    decision: r.decision,
    reason: r.reason ?? '',
    issuedAt: new Date(r.nowMs).toISOString(),
    expiresAt: new Date(r.nowMs + (r.ttlMs ?? 15 * 60_000)).toISOString(),
    nonce: r.nonce,
    keyId: key.keyId,
  };
}

/** Signs arbitrary payload text as an approval, with the envelope naming `keyId`. */
function signText(text: string, signer: KeyPair, keyId = signer.keyId): Envelope {
  return signEnvelope(PAYLOAD_TYPES.approval, utf8ToBytes(text), signer.secretKey, keyId);
}

/** The refusal verifyApproval throws; fails the test when it accepts or throws anything else. */
function refusal(envelope: unknown, expect_: ApprovalExpectation = expectation()): ApprovalRefused {
  try {
    verifyApproval(envelope, expect_);
  } catch (error) {
    if (error instanceof ApprovalRefused) return error;
    throw new Error(`expected ApprovalRefused, got ${String(error)}`);
  }
  throw new Error('expected the approval to be refused, but it was accepted');
}

/** A reason that makes the payload length leave a remainder of 1 mod 3, so its base64 ends in "==". */
function paddedRequest(): ApprovalRequest {
  for (const reason of ['ok', 'ok.', 'ok..']) {
    const r = request({ reason });
    const length = fromBase64(signApproval(r, root).payload).length;
    if (length % 3 === 1) return r;
  }
  throw new Error('unreachable: three consecutive lengths cover every remainder');
}

const valid = signApproval(request(), root);

// ---------------------------------------------------------------------------------------------

describe('signApproval / verifyApproval: the valid case', () => {
  it('accepts a fresh approval by a paired device and returns what it signed', () => {
    const verified = verifyApproval(valid, expectation());
    expect(verified.device.keyId).toBe(root.keyId);
    expect(verified.device.role).toBe('root');
    expect(verified.payload).toEqual(payloadFor(root));
    expect(JSON.parse(new TextDecoder().decode(fromBase64(valid.payload)))).toEqual(payloadFor(root));
  });

  it('writes a DSSE envelope with exactly one signature by the device key', () => {
    expect(Object.keys(valid).sort()).toEqual(['payload', 'payloadType', 'signatures']);
    expect(valid.payloadType).toBe('application/vnd.countersign.approval+json');
    expect(valid.signatures).toHaveLength(1);
    expect(valid.signatures[0].keyid).toBe(root.keyId);
    expect(fromBase64(valid.signatures[0].sig)).toHaveLength(64);
  });

  it('is deterministic (Ed25519 has no signing randomness), so fixtures are stable', () => {
    expect(signApproval(request(), root)).toEqual(valid);
  });

  it('accepts approvals and denials from any active human device', () => {
    expect(verifyApproval(signApproval(request(), approver), expectation()).device.name).toBe('laptop');
    expect(
      verifyApproval(
        signApproval(request({ decision: 'deny', reason: 'not today' }), approver),
        expectation(),
      ).payload.decision,
    ).toBe('deny');
  });

  it('accepts the policy key on an auto step of a legacy plan, and records that it was the policy key', () => {
    const envelope = signApproval(request({ stepPath: 'lint', stepDigest: digests.lint!.digest }), policyKey);
    // Since standing approvals, the policy key alone counts only when replaying plans recorded before them.
    const verified = verifyApproval(envelope, expectation({ legacyPlanRules: true }));
    expect(verified.device.role).toBe('policy');
    expect(verified.payload.stepPath).toBe('lint');
  });

  it('passes the nonce it read to nonceUsed', () => {
    const seen: string[] = [];
    verifyApproval(valid, expectation({ nonceUsed: (n) => (seen.push(n), false) }));
    expect(seen).toEqual([NONCE]);
  });

  it('does not modify the envelope it checks', () => {
    const copy = structuredClone(valid);
    verifyApproval(copy, expectation());
    expect(copy).toEqual(valid);
  });
});

describe('verifyApproval: forgery by mutation', () => {
  it('refuses every single-byte change of the payload (xor 0x01 and xor 0x80 at each position)', () => {
    const bytes = fromBase64(valid.payload);
    let refused = 0;
    const codes = new Set<ApprovalRefusal>();
    for (const flip of [0x01, 0x80]) {
      for (let i = 0; i < bytes.length; i++) {
        const mutated = bytes.slice();
        mutated[i]! ^= flip;
        // Generous expectations: only the signature may stand between the forgery and acceptance.
        const error = refusal({ ...valid, payload: toBase64(mutated) }, expectation({ ignoreTime: true }));
        codes.add(error.code);
        refused++;
      }
    }
    expect(refused).toBe(bytes.length * 2);
    // The payload is decoded and checked, but nothing is trusted before the signature verifies.
    expect([...codes].sort()).toEqual(['bad_signature', 'key_mismatch', 'malformed_payload']);
  });

  it('refuses a changed payload with bad_signature when it is still well formed', () => {
    for (const change of [
      { workflowId: 'plan-abd' },
      { runId: 'run-2' },
      { decision: 'deny' as const },
      { stepDigest: digests.lint!.digest },
      { nonce: 'nonce-0123456789abcdeg' },
    ]) {
      const forged = {
        ...valid,
        payload: toBase64(utf8ToBytes(JSON.stringify({ ...payloadFor(root), ...change }))),
      };
      expect(refusal(forged).code, JSON.stringify(change)).toBe('bad_signature');
    }
    // Even re-serialising the same payload differently (white space) breaks the signature: bytes are what is signed.
    const spaced = { ...valid, payload: toBase64(utf8ToBytes(JSON.stringify(payloadFor(root), null, 1))) };
    expect(refusal(spaced).code).toBe('bad_signature');
  });

  it('refuses every single-bit change of the 64 signature bytes with bad_signature', () => {
    const sig = fromBase64(valid.signatures[0].sig);
    expect(sig).toHaveLength(64);
    let refused = 0;
    for (let i = 0; i < sig.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const mutated = sig.slice();
        mutated[i]! ^= 1 << bit;
        const error = refusal({ ...valid, signatures: [{ keyid: root.keyId, sig: toBase64(mutated) }] });
        expect(error.code, `byte ${i} bit ${bit}`).toBe('bad_signature');
        refused++;
      }
    }
    expect(refused).toBe(64 * 8);
  });

  it('refuses a malleated signature (S + L) that lenient verifiers accept', () => {
    const sig = fromBase64(valid.signatures[0].sig);
    const L = 2n ** 252n + 27742317777372353535851937790883648493n;
    let s = 0n;
    for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(sig[32 + i]!);
    let t = s + L;
    const malleated = sig.slice();
    for (let i = 0; i < 32; i++) {
      malleated[32 + i] = Number(t & 0xffn);
      t >>= 8n;
    }
    expect(malleated).not.toEqual(sig);
    expect(refusal({ ...valid, signatures: [{ keyid: root.keyId, sig: toBase64(malleated) }] }).code).toBe(
      'bad_signature',
    );
  });

  it('refuses truncated, extended, empty and all-zero signatures', () => {
    const sig = fromBase64(valid.signatures[0].sig);
    for (const bad of [
      sig.slice(0, 63),
      Uint8Array.from([...sig, 0]),
      new Uint8Array(0),
      new Uint8Array(64),
    ]) {
      expect(refusal({ ...valid, signatures: [{ keyid: root.keyId, sig: toBase64(bad) }] }).code).toBe(
        'bad_signature',
      );
    }
  });

  it('refuses every one-character change of the base64 texts', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    let refused = 0;
    let positions = 0;
    for (const field of ['payload', 'sig'] as const) {
      const text = field === 'payload' ? valid.payload : valid.signatures[0].sig;
      for (let i = 0; i < text.length; i++) {
        const current = text[i]!;
        const replacement = current === '=' ? 'A' : alphabet[(alphabet.indexOf(current) + 1) % 64]!;
        const mutated = text.slice(0, i) + replacement + text.slice(i + 1);
        const envelope =
          field === 'payload'
            ? { ...valid, payload: mutated }
            : { ...valid, signatures: [{ keyid: root.keyId, sig: mutated }] };
        const error = refusal(envelope);
        expect(['malformed_envelope', 'malformed_payload', 'key_mismatch', 'bad_signature']).toContain(
          error.code,
        );
        refused++;
        positions++;
      }
    }
    expect(refused).toBe(positions);
    expect(positions).toBe(valid.payload.length + valid.signatures[0].sig.length);
  });

  it('refuses base64 that decodes to the right bytes but is not the canonical encoding', () => {
    const padded = signApproval(paddedRequest(), root);
    expect(padded.payload.endsWith('==')).toBe(true);
    expect(verifyApproval(padded, expectation()).device.keyId).toBe(root.keyId);
    const sig = padded.signatures[0].sig;
    expect(sig.endsWith('==')).toBe(true); // 64 bytes: the last symbol before "==" carries 4 spare bits

    /** Sets a spare bit in the last symbol before the padding: Node would decode it to the same bytes. */
    const strayBits = (text: string): string => {
      const i = text.length - 3;
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
      const changed = text.slice(0, i) + alphabet[alphabet.indexOf(text[i]!) | 1]! + text.slice(i + 1);
      expect(Buffer.from(changed, 'base64')).toEqual(Buffer.from(text, 'base64'));
      return changed;
    };
    const variants: [string, Envelope][] = [
      ['stray bits in the payload', { ...padded, payload: strayBits(padded.payload) }],
      [
        'stray bits in the signature',
        { ...padded, signatures: [{ keyid: root.keyId, sig: strayBits(sig) }] },
      ],
      ['payload without padding', { ...padded, payload: padded.payload.replace(/=+$/, '') }],
      [
        'signature without padding',
        { ...padded, signatures: [{ keyid: root.keyId, sig: sig.replace(/=+$/, '') }] },
      ],
      [
        'payload with a line break',
        { ...padded, payload: `${padded.payload.slice(0, 40)}\n${padded.payload.slice(40)}` },
      ],
      ['payload with a trailing newline', { ...padded, payload: `${padded.payload}\n` }],
      ['signature with a leading space', { ...padded, signatures: [{ keyid: root.keyId, sig: ` ${sig}` }] }],
      ['URL-safe alphabet', { ...padded, payload: `-${padded.payload.slice(1)}` }],
    ];
    for (const [what, envelope] of variants) {
      const error = refusal(envelope);
      expect(error.code, what).toBe('malformed_envelope');
      expect(error.message, what).toBe('payload or signature is not valid base64');
    }
  });

  it('binds the payload type: a payload signed as a device record does not pass as an approval', () => {
    const bytes = utf8ToBytes(JSON.stringify(payloadFor(root)));
    const asDevice = signEnvelope(PAYLOAD_TYPES.device, bytes, root.secretKey, root.keyId);
    expect(refusal({ ...asDevice, payloadType: PAYLOAD_TYPES.approval }).code).toBe('bad_signature');
    expect(refusal(asDevice).code).toBe('malformed_envelope');
  });
});

describe('verifyApproval: keys and devices', () => {
  it('refuses a key that is not a paired device: unknown_device', () => {
    const error = refusal(signApproval(request(), stranger));
    expect(error.code).toBe('unknown_device');
    expect(error.message).toBe(`key ${stranger.keyId} is not a paired device`);
  });

  it('refuses a payload naming one device with a signature by another: key_mismatch', () => {
    // The envelope says who signed; the payload says who approves. They must agree before anything else.
    const error = refusal(signText(JSON.stringify(payloadFor(root)), approver));
    expect(error.code).toBe('key_mismatch');
    expect(error.message).toBe(`payload names key ${root.keyId} but the signature is by ${approver.keyId}`);
  });

  it('refuses a signature by another device that claims to be the named one: bad_signature', () => {
    const byApprover = signText(JSON.stringify(payloadFor(root)), approver, root.keyId);
    expect(refusal(byApprover).code).toBe('bad_signature');
    const byStranger = signText(JSON.stringify(payloadFor(root)), stranger, root.keyId);
    const error = refusal(byStranger);
    expect(error.code).toBe('bad_signature');
    expect(error.message).toBe(`signature does not verify against device "root phone" (${root.keyId})`);
  });

  it('refuses a revoked device, even for an approval signed before the revocation', () => {
    const error = refusal(
      signApproval(request({ nowMs: Date.parse('2030-01-01T06:00:00.000Z') }), retired),
      expectation({ ignoreTime: true }),
    );
    expect(error.code).toBe('revoked_device');
    expect(error.message).toBe(
      `device "old phone" (${retired.keyId}) was revoked at 2030-01-01T12:00:00.000Z`,
    );
  });

  it('refuses the policy key on a step that needs a human: policy_key_not_allowed', () => {
    const error = refusal(signApproval(request(), policyKey));
    expect(error.code).toBe('policy_key_not_allowed');
    expect(error.message).toBe(
      'step "deploy" needs a human approval; the policy key may only sign auto steps',
    );
  });

  it('refuses signatures that only a lenient (ZIP-215, cofactored) verifier accepts, with a weak registered key', () => {
    // A small-order public key (order 2, y = -1) with R = identity and S = 0 "verifies" any message under cofactored
    // rules: anyone could sign as that device. Strict RFC 8032 verification refuses it.
    const weakKey = new Uint8Array(32).fill(0xff);
    weakKey[0] = 0xec;
    weakKey[31] = 0x7f;
    const weakId = keyIdOf(weakKey);
    const withWeak = DeviceRegistry.fromRecords([
      ...deviceRecords,
      signDeviceRecord(
        { type: 'introduce', publicKey: toBase64(weakKey), name: 'weak', role: 'approver', at: RECORD_TIME },
        root,
      ),
    ]);
    const forgedSig = new Uint8Array(64);
    forgedSig[0] = 1; // R = identity point, S = 0
    for (const decision of ['approve', 'deny'] as const) {
      const payload = { ...payloadFor(root, { decision }), keyId: weakId };
      const forged: Envelope = {
        payloadType: PAYLOAD_TYPES.approval,
        payload: toBase64(utf8ToBytes(JSON.stringify(payload))),
        signatures: [{ keyid: weakId, sig: toBase64(forgedSig) }],
      };
      const error = refusal(forged, expectation({ registry: withWeak }));
      expect(error.code).toBe('bad_signature');
      expect(error.message).toBe(`signature does not verify against device "weak" (${weakId})`);
    }
  });

  it('checks against the registry it is given, not a global one', () => {
    const withoutApprover = DeviceRegistry.fromRecords(deviceRecords.slice(0, 1));
    expect(refusal(signApproval(request(), approver), expectation({ registry: withoutApprover })).code).toBe(
      'unknown_device',
    );
  });
});

describe('verifyApproval: what the approval is for', () => {
  it('refuses another workflow: wrong_workflow', () => {
    const error = refusal(signApproval(request({ workflowId: 'plan-xyz' }), root));
    expect(error.code).toBe('wrong_workflow');
    expect(error.message).toBe('approval is for plan plan-xyz, not plan-abc');
  });

  it('refuses another run of the same workflow: wrong_run', () => {
    const error = refusal(valid, expectation({ runId: 'run-2' }));
    expect(error.code).toBe('wrong_run');
    expect(error.message).toBe('approval is for run run-1, not the current run run-2');
  });

  it('refuses a step the plan does not have: unknown_step', () => {
    const error = refusal(signApproval(request({ stepPath: 'nope' }), root));
    expect(error.code).toBe('unknown_step');
    expect(error.message).toBe('plan has no step "nope"');
  });

  it('refuses an approval signed over another digest: wrong_digest', () => {
    // The approver saw another version of the step (here: a changed command).
    const changed = stepDigest(
      { ...deployStep!, run: 'make deploy --force' } as typeof deployStep & object,
      WORKSPACE,
    );
    const error = refusal(signApproval(request({ stepDigest: changed }), root));
    expect(error.code).toBe('wrong_digest');
    expect(error.message).toMatch(
      /^step "deploy" has digest [0-9a-f]{16}…; the approval signed [0-9a-f]{16}… \(the step changed, or the approval is for another step\)$/,
    );
    // An approval of one step cannot be moved to another.
    expect(refusal(signApproval(request({ stepDigest: digests.lint!.digest }), root)).code).toBe(
      'wrong_digest',
    );
  });
});

describe('verifyApproval: time and replay', () => {
  const ttl = 15 * 60_000;

  it('refuses an expired approval, including at the exact expiry instant', () => {
    expect(refusal(valid, expectation({ nowMs: NOW + ttl })).code).toBe('expired');
    const error = refusal(valid, expectation({ nowMs: NOW + ttl + 1 }));
    expect(error.code).toBe('expired');
    expect(error.message).toBe('approval expired at 2030-01-02T03:19:05.000Z');
    expect(verifyApproval(valid, expectation({ nowMs: NOW + ttl - 1 })).payload.nonce).toBe(NONCE);
  });

  it('refuses an approval issued beyond the tolerated clock skew: not_yet_valid', () => {
    const skew = APPROVAL_LIMITS.clockSkewMs;
    const error = refusal(signApproval(request({ nowMs: NOW + skew + 1 }), root));
    expect(error.code).toBe('not_yet_valid');
    expect(error.message).toBe(
      'approval is issued at 2030-01-02T03:09:05.001Z, in the future (check the device clock)',
    );
    expect(refusal(signApproval(request({ nowMs: NOW + 365 * 86_400_000 }), root)).code).toBe(
      'not_yet_valid',
    );
    expect(() =>
      verifyApproval(signApproval(request({ nowMs: NOW + skew }), root), expectation()),
    ).not.toThrow();
  });

  it('refuses an approval that lives longer than 24 hours: lifetime_too_long', () => {
    const day = APPROVAL_LIMITS.maxLifetimeMs;
    expect(day).toBe(24 * 3_600_000);
    const error = refusal(signApproval(request({ ttlMs: day + 1 }), root));
    expect(error.code).toBe('lifetime_too_long');
    expect(error.message).toBe('approval lives longer than 24 hours; sign a fresh one');
    expect(() => verifyApproval(signApproval(request({ ttlMs: day }), root), expectation())).not.toThrow();
  });

  it('skips time checks only when told to (the executor re-checking an accepted approval)', () => {
    const old = signApproval(request({ nowMs: NOW - 7 * 86_400_000 }), root);
    expect(refusal(old).code).toBe('expired');
    expect(verifyApproval(old, expectation({ ignoreTime: true })).device.keyId).toBe(root.keyId);
  });

  it('refuses an approval that expires at or before it is issued, even when time is not checked: malformed_payload', () => {
    for (const [what, envelope] of [
      ['signed with no lifetime', signApproval(request({ ttlMs: 0 }), root)],
      ['signed with a negative lifetime', signApproval(request({ ttlMs: -60_000 }), root)],
      [
        'expiring a year before it is issued',
        signText(JSON.stringify({ ...payloadFor(root), expiresAt: '2029-01-02T03:04:05.000Z' }), root),
      ],
    ] as const) {
      for (const ignoreTime of [false, true]) {
        const error = refusal(envelope, expectation({ ignoreTime }));
        expect(error.code, what).toBe('malformed_payload');
        expect(error.message, what).toBe(
          'approval payload is malformed at expiresAt: must be after issuedAt',
        );
      }
    }
    // Any ISO 8601 form of the same instants passes: a zone offset, more or fewer fractional digits.
    const offset = {
      ...payloadFor(root),
      issuedAt: '2030-01-02T05:04:05+02:00',
      expiresAt: '2030-01-02T03:19:05Z',
    };
    expect(verifyApproval(signText(JSON.stringify(offset), root), expectation()).payload.issuedAt).toBe(
      offset.issuedAt,
    );
    expect(() => verifyApproval(signApproval(request({ ttlMs: 1 }), root), expectation())).not.toThrow();
  });

  it('refuses a replayed nonce: nonce_reused', () => {
    const used = new Set([NONCE]);
    const error = refusal(valid, expectation({ nonceUsed: (n) => used.has(n) }));
    expect(error.code).toBe('nonce_reused');
    expect(error.message).toBe(`nonce ${NONCE} was already used: this approval was replayed`);
    expect(() =>
      verifyApproval(
        signApproval(request({ nonce: 'nonce-fedcba9876543210' }), root),
        expectation({ nonceUsed: (n) => used.has(n) }),
      ),
    ).not.toThrow();
  });
});

describe('verifyApproval: malformed envelopes', () => {
  const sigEntry = valid.signatures[0];
  const cases: [string, unknown, string][] = [
    ['null', null, 'envelope is not an object'],
    ['a string', JSON.stringify(valid), 'envelope is not an object'],
    ['an array', [valid], 'envelope has fields 0; expected payload, payloadType, signatures'],
    [
      'an extra field',
      { ...valid, extra: 1 },
      'envelope has fields extra,payload,payloadType,signatures; expected payload, payloadType, signatures',
    ],
    [
      'a missing payloadType',
      { payload: valid.payload, signatures: valid.signatures },
      'envelope has fields payload,signatures; expected payload, payloadType, signatures',
    ],
    [
      'a wrong payloadType',
      { ...valid, payloadType: 'application/json' },
      'payloadType is "application/json"; expected application/vnd.countersign.approval+json',
    ],
    [
      'the device payloadType',
      { ...valid, payloadType: PAYLOAD_TYPES.device },
      `payloadType is "${PAYLOAD_TYPES.device}"; expected ${PAYLOAD_TYPES.approval}`,
    ],
    [
      'a payloadType of another case',
      { ...valid, payloadType: PAYLOAD_TYPES.approval.toUpperCase() },
      `payloadType is "${PAYLOAD_TYPES.approval.toUpperCase()}"; expected ${PAYLOAD_TYPES.approval}`,
    ],
    [
      'two signatures',
      { ...valid, signatures: [sigEntry, sigEntry] },
      'envelope must carry exactly one signature',
    ],
    ['no signature', { ...valid, signatures: [] }, 'envelope must carry exactly one signature'],
    [
      'signatures not a list',
      { ...valid, signatures: sigEntry },
      'envelope must carry exactly one signature',
    ],
    [
      'a signature without keyid',
      { ...valid, signatures: [{ sig: sigEntry.sig }] },
      'signature entry needs keyid and sig strings',
    ],
    [
      'a signature that is not a string',
      { ...valid, signatures: [{ keyid: root.keyId, sig: [1, 2] }] },
      'signature entry needs keyid and sig strings',
    ],
    [
      'a null signature entry',
      { ...valid, signatures: [null] },
      'signature entry needs keyid and sig strings',
    ],
    [
      'a payload that is not a string',
      { ...valid, payload: fromBase64(valid.payload) },
      'payload must be base64 text up to 64 KiB',
    ],
    [
      'a payload over 64 KiB',
      { ...valid, payload: 'A'.repeat(64 * 1024 + 4) },
      'payload must be base64 text up to 64 KiB',
    ],
  ];
  it.each(cases)('refuses %s', (_what, envelope, message) => {
    const error = refusal(envelope);
    expect(error.code).toBe('malformed_envelope');
    expect(error.message).toBe(message);
  });
});

describe('verifyApproval: malformed payloads (validly signed by a paired device)', () => {
  const good = payloadFor(root);
  const json = JSON.stringify(good);
  const cases: [string, string, RegExp][] = [
    [
      'an extra field',
      JSON.stringify({ ...good, extra: 'x' }),
      /^approval payload is malformed at \(root\): Unrecognized key: "extra"$/,
    ],
    [
      'an own "__proto__" key',
      `{"__proto__":{"polluted":1},${json.slice(1)}`,
      /^approval payload is malformed at \(root\): Unrecognized key: "__proto__"$/,
    ],
    ['a "constructor" key', `{"constructor":{},${json.slice(1)}`, /Unrecognized key: "constructor"/],
    [
      'a missing field',
      JSON.stringify({ ...good, nonce: undefined }),
      /^approval payload is malformed at nonce: /,
    ],
    [
      'a nonce that is too short',
      JSON.stringify({ ...good, nonce: 'short' }),
      /^approval payload is malformed at nonce: /,
    ],
    [
      'a digest in upper case',
      JSON.stringify({ ...good, stepDigest: good.stepDigest.toUpperCase() }),
      /^approval payload is malformed at stepDigest: /,
    ],
    [
      'a decision other than approve or deny',
      JSON.stringify({ ...good, decision: 'maybe' }),
      /^approval payload is malformed at decision: /,
    ],
    [
      'a time that is not a time',
      JSON.stringify({ ...good, expiresAt: 'tomorrow' }),
      /^approval payload is malformed at expiresAt: expected an ISO 8601 time$/,
    ],
    ...[
      ['an RFC 2822 date', 'Wed, 02 Jan 2030 03:04:05 GMT'],
      ['a time without a zone (read in the local zone)', '2030-01-02T03:04:05'],
      ['a date and time with a space', '2030-01-02 03:04:05Z'],
      ['a date alone', '2030-01-02'],
      ['an extended year', '+275760-09-13T00:00:00.000Z'],
      ['a time with control characters', '2030-01-02T03:04:05.000Z\u001b[2J'],
    ].map(([what, time]): [string, string, RegExp] => [
      `${what} as issuedAt`,
      JSON.stringify({ ...good, issuedAt: time }),
      /^approval payload is malformed at issuedAt: expected an ISO 8601 time$/,
    ]),
    ['a top-level array', JSON.stringify([good]), /^approval payload is malformed at \(root\): /],
    ['text that is not JSON', json.slice(0, -1), /^approval payload is not UTF-8 JSON$/],
    ['an empty payload', '', /^approval payload is not UTF-8 JSON$/],
  ];
  it.each(cases)('refuses %s', (_what, text, message) => {
    const error = refusal(signText(text, root));
    expect(error.code).toBe('malformed_payload');
    expect(error.message).toMatch(message);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('refuses a payload that is not valid UTF-8', () => {
    const bytes = Uint8Array.from([...utf8ToBytes(json.slice(0, -2)), 0xff, 0x22, 0x7d]);
    const envelope = signEnvelope(PAYLOAD_TYPES.approval, bytes, root.secretKey, root.keyId);
    expect(refusal(envelope).code).toBe('malformed_payload');
  });
});

describe('refusal codes', () => {
  it('gives each kind of refusal its own code and a readable sentence', () => {
    const scenarios: [ApprovalRefusal, () => ApprovalRefused][] = [
      ['malformed_envelope', () => refusal({ ...valid, extra: true })],
      ['malformed_payload', () => refusal(signText(JSON.stringify({ ...payloadFor(root), extra: 1 }), root))],
      ['key_mismatch', () => refusal(signText(JSON.stringify(payloadFor(root)), approver))],
      ['unknown_device', () => refusal(signApproval(request(), stranger))],
      ['revoked_device', () => refusal(signApproval(request(), retired))],
      ['bad_signature', () => refusal(signText(JSON.stringify(payloadFor(root)), stranger, root.keyId))],
      ['wrong_workflow', () => refusal(valid, expectation({ workflowId: 'plan-other' }))],
      ['wrong_run', () => refusal(valid, expectation({ runId: 'run-other' }))],
      ['unknown_step', () => refusal(valid, expectation({ step: () => undefined }))],
      ['wrong_digest', () => refusal(valid, expectation({ step: () => digests.lint }))],
      ['not_yet_valid', () => refusal(valid, expectation({ nowMs: NOW - 3_600_000 }))],
      ['expired', () => refusal(valid, expectation({ nowMs: NOW + 3_600_000 }))],
      ['lifetime_too_long', () => refusal(signApproval(request({ ttlMs: 25 * 3_600_000 }), root))],
      ['nonce_reused', () => refusal(valid, expectation({ nonceUsed: () => true }))],
      ['policy_key_not_allowed', () => refusal(signApproval(request(), policyKey))],
    ];
    const seen = new Map<ApprovalRefusal, string>();
    for (const [code, run] of scenarios) {
      const error = run();
      expect(error.code).toBe(code);
      expect(error.name).toBe('ApprovalRefused');
      expect(error).toBeInstanceOf(Error);
      // A sentence: several words, no leaked placeholders, one line, no trailing punctuation noise.
      expect(error.message.split(' ').length, code).toBeGreaterThanOrEqual(4);
      expect(error.message, code).not.toMatch(/undefined|\[object |NaN|^\s|\s$|\n/);
      expect(error.message, code).toMatch(/^[a-z"]/);
      seen.set(error.code, error.message);
    }
    expect(seen.size).toBe(scenarios.length);
    expect(new Set(seen.values()).size).toBe(scenarios.length);
  });
});

describe('device record envelopes are not approvals', () => {
  it('refuses a signed device record presented as an approval', () => {
    const record: DeviceRecord = {
      type: 'introduce',
      publicKey: toBase64(stranger.publicKey),
      name: 'x',
      role: 'approver',
      at: RECORD_TIME,
    };
    expect(refusal(signDeviceRecord(record, root)).code).toBe('malformed_envelope');
  });
});

describe('verifyApproval: standing approvals (grants)', () => {
  const AGENT = '0123456789abcdef';
  const GRANT = '1111222233334444';
  const grantRecord: DeviceRecord = {
    type: 'grant',
    grantId: GRANT,
    name: 'lint anything',
    scope: { agents: 'all' },
    covers: { kind: 'shell', command: 'npm run lint', match: 'exact' },
    expiresAt: '2030-01-31T00:00:00.000Z',
    at: RECORD_TIME,
  };
  const grantEnvelope = signDeviceRecord(grantRecord, root);
  const withGrant = DeviceRegistry.fromRecords(
    [
      ...deviceRecords,
      signDeviceRecord(
        {
          type: 'issue-agent',
          agentId: AGENT,
          name: 'builder',
          secretSha256: 'ab'.repeat(32),
          at: RECORD_TIME,
        },
        root,
      ),
      grantEnvelope,
    ],
    root.keyId,
  );
  const sig = grantEnvelope.signatures[0].sig;
  const lint = (grant?: { id: string; sig: string }, use?: number) =>
    request({ stepPath: 'lint', stepDigest: digests.lint!.digest, grant, use });
  /** The lint step as the workflow knows it: with what a grant looks at. */
  const granted = expectation({
    registry: withGrant,
    step: (path) =>
      path === 'lint'
        ? {
            ...digests.lint!,
            granted: { step: lintStep!, egress: false, planName: 'release', proposer: { agent: AGENT } },
          }
        : digests[path],
  });

  it('accepts the policy key applying a grant that covers the step, and returns the grant', () => {
    const verified = verifyApproval(signApproval(lint({ id: GRANT, sig }), policyKey), granted);
    expect(verified.device.role).toBe('policy');
    expect(verified.grant?.grantId).toBe(GRANT);
    expect(verified.grant?.issuedBy).toBe(root.keyId);
    expect(verified.payload.grant).toEqual({ id: GRANT, sig });
  });

  it('refuses a grant when the verifier does not know what the step looks like: grant_does_not_cover', () => {
    // The plain expectation knows the lint step's digest and that it is auto, but no `granted` context.
    const error = refusal(
      signApproval(lint({ id: GRANT, sig }), policyKey),
      expectation({ registry: withGrant }),
    );
    expect(error.code).toBe('grant_does_not_cover');
    expect(error.message).toBe(
      `standing approval "lint anything" (${GRANT}): the step it would approve is not known here`,
    );
  });

  it("refuses a person's approval that names a grant (or a use): malformed_payload", () => {
    for (const [what, r] of [
      ['a grant', lint({ id: GRANT, sig })],
      ['a grant and a use', lint({ id: GRANT, sig }, 1)],
      ['only a use', lint(undefined, 1)],
      ['a grant on a human step', request({ grant: { id: GRANT, sig } })],
    ] as const) {
      const error = refusal(signApproval(r, root), granted);
      expect(error.code, what).toBe('malformed_payload');
      expect(error.message, what).toBe(
        "a person's approval does not name a standing approval: only the control worker applies those",
      );
    }
  });

  it('refuses a grant named with another signature: unknown_grant', () => {
    const otherSig = signDeviceRecord({ ...grantRecord, name: 'lint anything!' }, root).signatures[0].sig;
    expect(otherSig).not.toBe(sig);
    const error = refusal(signApproval(lint({ id: GRANT, sig: otherSig }), policyKey), granted);
    expect(error.code).toBe('unknown_grant');
    expect(error.message).toBe(
      `the approval names standing approval ${GRANT}, which was signed differently (a record replayed under another id?)`,
    );
  });

  it('refuses a grant the device records do not hold: unknown_grant', () => {
    const error = refusal(signApproval(lint({ id: 'ffffffffffffffff', sig }), policyKey), granted);
    expect(error.code).toBe('unknown_grant');
    expect(error.message).toBe(
      'the approval names standing approval ffffffffffffffff, which is not in the device records',
    );
  });

  it('refuses the policy key without a grant, unless replaying a plan from before grants: grant_required', () => {
    const envelope = signApproval(lint(), policyKey);
    const error = refusal(envelope, granted);
    expect(error.code).toBe('grant_required');
    expect(error.message).toBe(
      'the policy key applies standing approvals a person signed; this approval of "lint" names none, so it counts for nothing',
    );
    expect(verifyApproval(envelope, { ...granted, legacyPlanRules: true }).grant).toBeUndefined();
  });

  it('refuses a grant applied to a step that needs a person, before looking at the grant', () => {
    const error = refusal(signApproval(request({ grant: { id: GRANT, sig }, use: 1 }), policyKey), granted);
    expect(error.code).toBe('policy_key_not_allowed');
  });

  it('refuses a grant applied after it expired, even when time is not checked: grant_expired', () => {
    const late = { ...lint({ id: GRANT, sig }), nowMs: Date.parse('2030-01-31T00:00:00.000Z') };
    const error = refusal(signApproval(late, policyKey), { ...granted, ignoreTime: true });
    expect(error.code).toBe('grant_expired');
    expect(error.message).toBe(
      `standing approval "lint anything" (${GRANT}) expired at 2030-01-31T00:00:00.000Z`,
    );
    // Signed a minute before the grant expired, checked live at its expiry (the envelope itself still fresh).
    const expiry = Date.parse('2030-01-31T00:00:00.000Z');
    const justBefore = signApproval({ ...lint({ id: GRANT, sig }), nowMs: expiry - 60_000 }, policyKey);
    expect(refusal(justBefore, { ...granted, nowMs: expiry }).code).toBe('grant_expired');
    expect(verifyApproval(justBefore, { ...granted, nowMs: expiry - 1 }).grant?.grantId).toBe(GRANT);
  });
});
