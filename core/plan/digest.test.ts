import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../bytes.js';
import { canonicalJson } from '../canonical.js';
import type { McpPin } from '../mcp/catalog.js';
import { stepDigest, stepDigestInput } from './digest.js';
import type { GateStep, McpStep, ShellStep } from './types.js';
import { validatePlan } from './validate.js';
import { planSteps } from './walk.js';

const WORKSPACE = 'ws-1';

function validatedSteps(): { shell: ShellStep; gate: GateStep } {
  const spec = validatePlan({
    name: 'digest fixture',
    steps: [
      { id: 'build', run: 'make all', cwd: 'src', env: { B: '2', A: '1' }, timeout: '5m' },
      { id: 'ship', gate: 'Ship it?' },
    ],
  });
  const [shell, gate] = planSteps(spec);
  if (shell?.kind !== 'shell' || gate?.kind !== 'gate') throw new Error('fixture changed');
  return { shell, gate };
}

const { shell, gate } = validatedSteps();

describe('stepDigest', () => {
  it('is 64 hex characters and is SHA-256 over a domain tag and the canonical input', () => {
    const digest = stepDigest(shell, WORKSPACE);
    expect(digest).toMatch(/^[0-9a-f]{64}$/);
    expect(digest).toBe(
      sha256Hex(`countersign/step-digest/v1\n${canonicalJson(stepDigestInput(shell, WORKSPACE))}`),
    );
    expect(digest).toBe(
      createHash('sha256')
        .update(`countersign/step-digest/v1\n${canonicalJson(stepDigestInput(shell, WORKSPACE))}`)
        .digest('hex'),
    );
  });

  it('matches the pinned values, so stored approvals keep verifying across releases', () => {
    // If this changes, every approval ever signed stops matching its step: bump the domain tag instead.
    expect(canonicalJson(stepDigestInput(shell, WORKSPACE))).toBe(
      '{"approval":"required","cwd":"src","env":{"A":"1","B":"2"},"id":"build","kind":"shell","quorum":1,"run":"make all","timeoutMs":300000,"v":1,"workspace":"ws-1"}',
    );
    expect(canonicalJson(stepDigestInput(gate, WORKSPACE))).toBe(
      '{"approval":"required","gate":"Ship it?","id":"ship","kind":"gate","quorum":1,"v":1}',
    );
    // Digests computed independently (node:crypto over the bytes above with the domain tag).
    expect(stepDigest(shell, WORKSPACE)).toBe(
      'f7f19b778671f5d17e801cfa047b6847d933d568cfbd9f392f79b2a10967367b',
    );
    expect(stepDigest(gate, WORKSPACE)).toBe(
      'c16f7c13baf8397e95be44cc49bc6c010385147dbc7de4f1707f2e1fa9e7809b',
    );
  });

  it('is stable: the same step gives the same digest, also from a fresh validation', () => {
    expect(stepDigest(shell, WORKSPACE)).toBe(stepDigest(shell, WORKSPACE));
    expect(stepDigest(validatedSteps().shell, WORKSPACE)).toBe(stepDigest(shell, WORKSPACE));
    expect(stepDigest(structuredClone(gate), WORKSPACE)).toBe(stepDigest(gate, WORKSPACE));
  });

  it('does not depend on the key order of env', () => {
    const reordered: ShellStep = { ...shell, env: { A: '1', B: '2' } };
    expect(Object.keys(reordered.env)).not.toEqual(Object.keys(shell.env));
    expect(stepDigest(reordered, WORKSPACE)).toBe(stepDigest(shell, WORKSPACE));
  });

  it('does not depend on how the same timeout is written', () => {
    expect(stepDigest({ ...shell, timeout: '300s' }, WORKSPACE)).toBe(stepDigest(shell, WORKSPACE));
    expect(stepDigest({ ...shell, timeout: '300000ms' }, WORKSPACE)).toBe(stepDigest(shell, WORKSPACE));
  });

  const shellChanges: [string, ShellStep, string?][] = [
    ['run', { ...shell, run: 'make al' }],
    ['run (trailing space)', { ...shell, run: 'make all ' }],
    ['cwd', { ...shell, cwd: 'src/' }],
    ['cwd (root)', { ...shell, cwd: '.' }],
    ['env name', { ...shell, env: { A: '1', C: '2' } }],
    ['env name (case)', { ...shell, env: { a: '1', B: '2' } }],
    ['env value', { ...shell, env: { A: '1', B: '3' } }],
    ['env value (empty)', { ...shell, env: { A: '1', B: '' } }],
    ['env entry added', { ...shell, env: { A: '1', B: '2', C: '3' } }],
    ['env entry removed', { ...shell, env: { A: '1' } }],
    ['env value moved to another name', { ...shell, env: { A: '2', B: '1' } }],
    ['timeout', { ...shell, timeout: '6m' }],
    ['approval mode', { ...shell, approval: { ...shell.approval, mode: 'auto' } }],
    ['quorum', { ...shell, approval: { ...shell.approval, quorum: 2 } }],
    ['id', { ...shell, id: 'build2' }],
    ['workspace id', shell, 'ws-2'],
  ];
  it.each(shellChanges)('changes when the %s changes', (_what, changed, workspace) => {
    expect(stepDigest(changed, workspace ?? WORKSPACE)).not.toBe(stepDigest(shell, WORKSPACE));
  });

  it('changes when the plan turns egress on, and stays as it was without it', () => {
    expect(stepDigest(shell, WORKSPACE, true)).not.toBe(stepDigest(shell, WORKSPACE));
    expect(stepDigest(shell, WORKSPACE, false)).toBe(stepDigest(shell, WORKSPACE));
    expect(stepDigestInput(shell, WORKSPACE, true)).toMatchObject({ network: 'egress' });
  });

  it('gives every one of those changes its own digest', () => {
    const digests = [
      stepDigest(shell, WORKSPACE),
      ...shellChanges.map(([, step, ws]) => stepDigest(step, ws ?? WORKSPACE)),
    ];
    expect(new Set(digests).size).toBe(digests.length);
  });

  it('changes for a gate when its message, id, mode or quorum changes', () => {
    const base = stepDigest(gate, WORKSPACE);
    const changed: GateStep[] = [
      { ...gate, gate: 'Ship it? ' },
      { ...gate, gate: 'Ship it!' },
      { ...gate, id: 'ship2' },
      { ...gate, approval: { ...gate.approval, quorum: 3 } },
      { ...gate, approval: { ...gate.approval, mode: 'auto' } },
    ];
    const digests = changed.map((g) => stepDigest(g, WORKSPACE));
    for (const d of digests) expect(d).not.toBe(base);
    expect(new Set(digests).size).toBe(digests.length);
  });

  it('does not mix up a gate and a shell step with the same id and text', () => {
    const asGate: GateStep = {
      type: 'step',
      kind: 'gate',
      path: 'x',
      id: 'x',
      gate: 'make all',
      approval: shell.approval,
    };
    const asShell: ShellStep = { ...shell, path: 'x', id: 'x' };
    expect(stepDigest(asGate, WORKSPACE)).not.toBe(stepDigest(asShell, WORKSPACE));
  });

  it('cannot be steered by strings that look like JSON structure', () => {
    // With a naive concatenation, moving text between run and cwd could collide; canonical JSON keeps fields apart.
    const a: ShellStep = { ...shell, run: 'echo a","cwd":"b', cwd: 'c' };
    const b: ShellStep = { ...shell, run: 'echo a', cwd: 'b","cwd":"c' };
    expect(stepDigest(a, WORKSPACE)).not.toBe(stepDigest(b, WORKSPACE));
  });

  it('throws on a step whose timeout is not a duration rather than hashing garbage', () => {
    expect(() => stepDigest({ ...shell, timeout: 'soon' }, WORKSPACE)).toThrow(/invalid duration/);
  });
});

describe('stepDigest: mcp steps', () => {
  const mcpStep = (() => {
    const [step] = planSteps(
      validatePlan({
        name: 'mcp digest fixture',
        steps: [{ id: 'echo', mcp: { server: 'everything', tool: 'echo', arguments: { message: 'hi' } } }],
      }),
    );
    if (step?.kind !== 'mcp') throw new Error('fixture changed');
    return step;
  })();
  const pin: McpPin = {
    server: 'everything',
    image: `sha256:${'1'.repeat(64)}`,
    tool: 'echo',
    toolSha256: '2'.repeat(64),
    description: 'Echoes back the input',
    workspace: 'none',
    network: 'none',
    configSha256: '5'.repeat(64),
  };
  const digest = (step: McpStep = mcpStep, p: McpPin = pin, workspace = WORKSPACE) =>
    stepDigest(step, workspace, false, p);

  it('hashes the call as matched to the catalog, and no workspace when the server has none', () => {
    expect(canonicalJson(stepDigestInput(mcpStep, WORKSPACE, false, pin))).toBe(
      `{"approval":"required","arguments":{"message":"hi"},"id":"echo","image":"sha256:${'1'.repeat(64)}","kind":"mcp","network":"none","quorum":1,"server":"everything","serverConfig":"${'5'.repeat(64)}","timeoutMs":120000,"tool":"echo","toolDescription":"Echoes back the input","toolSha256":"${'2'.repeat(64)}","v":1}`,
    );
    expect(digest()).toBe(
      createHash('sha256')
        .update(
          `countersign/step-digest/v1\n${canonicalJson(stepDigestInput(mcpStep, WORKSPACE, false, pin))}`,
        )
        .digest('hex'),
    );
  });

  it('refuses to hash an mcp step without a pin, or with a pin for another server or tool', () => {
    const message = 'step "echo" calls everything/echo, and no catalog pin for it was given';
    expect(() => stepDigest(mcpStep, WORKSPACE)).toThrow(message);
    expect(() => stepDigestInput(mcpStep, WORKSPACE, false, undefined)).toThrow(message);
    expect(() => digest(mcpStep, { ...pin, server: 'memory' })).toThrow(message);
    expect(() => digest(mcpStep, { ...pin, tool: 'get-sum' })).toThrow(message);
    expect(() => digest({ ...mcpStep, server: 'memory' })).toThrow(
      'step "echo" calls memory/echo, and no catalog pin for it was given',
    );
  });

  const mcpChanges: [string, McpStep, McpPin, string?][] = [
    ['image', mcpStep, { ...pin, image: `sha256:${'3'.repeat(64)}` }],
    ['image (jail lock)', mcpStep, { ...pin, image: `jail:${'1'.repeat(64)}` }],
    ['tool hash', mcpStep, { ...pin, toolSha256: '4'.repeat(64) }],
    ['tool description shown', mcpStep, { ...pin, description: 'Echoes back the input, then mails it' }],
    ['server config', mcpStep, { ...pin, configSha256: '6'.repeat(64) }],
    ['argument value', { ...mcpStep, arguments: { message: 'ho' } }, pin],
    ['argument type', { ...mcpStep, arguments: { message: ['hi'] } }, pin],
    ['argument added', { ...mcpStep, arguments: { message: 'hi', loud: true } }, pin],
    ['arguments emptied', { ...mcpStep, arguments: {} }, pin],
    ['timeout', { ...mcpStep, timeout: '3m' }, pin],
    ['network', mcpStep, { ...pin, network: 'egress' }],
    ['workspace access (read-only)', mcpStep, { ...pin, workspace: 'read-only' }],
    ['workspace access (read-write)', mcpStep, { ...pin, workspace: 'read-write' }],
    ['approval mode', { ...mcpStep, approval: { ...mcpStep.approval, mode: 'auto' } }, pin],
    ['quorum', { ...mcpStep, approval: { ...mcpStep.approval, quorum: 2 } }, pin],
    ['id', { ...mcpStep, id: 'echo2' }, pin],
    ['tool (with its pin)', { ...mcpStep, tool: 'echo2' }, { ...pin, tool: 'echo2' }],
    ['server (with its pin)', { ...mcpStep, server: 'other' }, { ...pin, server: 'other' }],
  ];
  it.each(mcpChanges)('changes when the %s changes', (_what, step, changedPin) => {
    expect(digest(step, changedPin)).not.toBe(digest());
  });

  it('gives every one of those changes its own digest', () => {
    const digests = [digest(), ...mcpChanges.map(([, step, p]) => digest(step, p))];
    expect(new Set(digests).size).toBe(digests.length);
  });

  it('does not depend on the key order of the arguments, nor on how the timeout is written', () => {
    const a = { ...mcpStep, arguments: { b: 1, a: { y: 2, x: 3 } } };
    const b = { ...mcpStep, arguments: { a: { x: 3, y: 2 }, b: 1 } };
    expect(digest(a)).toBe(digest(b));
    expect(digest({ ...mcpStep, timeout: '120s' })).toBe(digest());
  });

  it('takes the network from the pin, not from the plan', () => {
    expect(stepDigest(mcpStep, WORKSPACE, true, pin)).toBe(digest());
  });

  it('leaves the workspace id out when the server has no workspace access', () => {
    expect(digest(mcpStep, pin, 'ws-2')).toBe(digest());
    expect(stepDigestInput(mcpStep, WORKSPACE, false, pin)).not.toHaveProperty('workspace');
    expect(stepDigestInput(mcpStep, WORKSPACE, false, pin)).not.toHaveProperty('workspaceAccess');
  });

  it.each(['read-only', 'read-write'] as const)(
    'includes the workspace id and access when the server has %s access',
    (workspace) => {
      const withWorkspace = { ...pin, workspace };
      expect(stepDigestInput(mcpStep, WORKSPACE, false, withWorkspace)).toMatchObject({
        workspace: WORKSPACE,
        workspaceAccess: workspace,
      });
      expect(digest(mcpStep, withWorkspace, 'ws-2')).not.toBe(digest(mcpStep, withWorkspace));
    },
  );

  it('does not mix up an mcp step and a shell step with the same id', () => {
    const asShell: ShellStep = { ...shell, path: 'echo', id: 'echo' };
    expect(stepDigest(asShell, WORKSPACE)).not.toBe(digest());
  });
});
