/**
 * The container policy without an engine: what checkContainerRequest refuses and what
 * hardenedSpec builds. The same requests against the real engine are in test/docker-broker.test.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  BrokerRefused,
  checkContainerRequest,
  DEFAULT_LIMITS,
  EGRESS_NETWORK,
  hardenedSpec,
  LABELS,
  type ContainerRequest,
} from './container-policy.js';

const IMAGE = 'countersign/mcp-everything:latest';
const IMAGE_ID = `sha256:${'c'.repeat(64)}`;
const images = new Map([[IMAGE, IMAGE_ID]]);
const CALL = '0123456789abcdef0123456789abcdef';
const base = { image: IMAGE, owner: { plan: 'plan-1', step: 'echo' } };

/** The refusal of a request, or a failed test when it is accepted. */
function refusal(raw: unknown): BrokerRefused {
  try {
    checkContainerRequest(raw, images);
  } catch (error) {
    expect(error).toBeInstanceOf(BrokerRefused);
    return error as BrokerRefused;
  }
  throw new Error('expected the request to be refused, but it was accepted');
}

describe('checkContainerRequest: env', () => {
  it('accepts upper-case names with short string values', () => {
    const request = { ...base, env: { MEMORY_FILE_PATH: '/workspace/m.jsonl', _X1: '' } };
    expect(checkContainerRequest(request, images)).toEqual(request);
  });

  it.each(['PATH', 'HOME', 'LD_PRELOAD', 'LD_LIBRARY_PATH', 'NODE_OPTIONS'])(
    'refuses the reserved name %s with bad_command',
    (name) => {
      const error = refusal({ ...base, env: { [name]: '/tmp/evil' } });
      expect(error.code).toBe('bad_command');
      expect(error.message).toBe(`[bad_command] env "${name}" is set by the broker, not by the request`);
    },
  );

  it.each(['path', 'Home', 'node_options', '1ABC', 'A-B', 'A B', 'A'.repeat(65)])(
    'refuses the name %j, which is not an upper-case name',
    (name) => {
      const error = refusal({ ...base, env: { [name]: 'x' } });
      expect(error.code).toBe('bad_command');
      expect(error.message).toBe(
        `[bad_command] env "${name}" must be an upper-case name with a short string value`,
      );
    },
  );

  it('refuses a value that is not a string, or is over 4096 characters', () => {
    expect(refusal({ ...base, env: { N: 1 } }).code).toBe('bad_command');
    expect(refusal({ ...base, env: { N: 'x'.repeat(4097) } }).code).toBe('bad_command');
    expect(() => checkContainerRequest({ ...base, env: { N: 'x'.repeat(4096) } }, images)).not.toThrow();
  });

  it('refuses env that is not an object, or holds more than 32 variables', () => {
    const many = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`V${i}`, 'x']));
    for (const env of [['A=1'], 'A=1', null, many])
      expect(refusal({ ...base, env }).message).toBe(
        '[bad_command] env must be an object of at most 32 variables',
      );
    expect(() =>
      checkContainerRequest({ ...base, env: Object.fromEntries(Object.entries(many).slice(0, 32)) }, images),
    ).not.toThrow();
  });

  it('refuses stdio and workspaceReadOnly that are not booleans', () => {
    expect(refusal({ ...base, stdio: 'yes' }).message).toBe('[bad_command] stdio must be true or false');
    expect(refusal({ ...base, workspaceReadOnly: 1 }).message).toBe(
      '[bad_volume] workspaceReadOnly must be true or false',
    );
  });
});

describe('checkContainerRequest: owner.call', () => {
  it.each([CALL, 'a'.repeat(16), 'f'.repeat(64)])('accepts the hex call key %s', (call) => {
    expect(checkContainerRequest({ ...base, owner: { ...base.owner, call } }, images).owner.call).toBe(call);
  });

  it.each([
    ['upper-case hex', CALL.toUpperCase()],
    ['15 digits', 'a'.repeat(15)],
    ['65 digits', 'a'.repeat(65)],
    ['a non-hex letter', `${CALL.slice(1)}g`],
    ['a label injection', `${CALL}\ncountersign.owner=x`],
    ['a number', 1234567890123456],
  ])('refuses a call key with %s', (_what, call) => {
    const error = refusal({ ...base, owner: { ...base.owner, call } });
    expect(error.code).toBe('bad_label');
    expect(error.message).toBe('[bad_label] owner.call must be a call key (hex)');
  });
});

describe('hardenedSpec for an MCP server container', () => {
  const request: ContainerRequest = {
    image: IMAGE,
    owner: { plan: 'plan-1', step: 'echo', call: CALL },
    workspaceVolume: 'countersign-ws-plan-1',
    workspaceReadOnly: true,
    stdio: true,
    command: ['node', '/opt/mcp/server.js'],
    env: { MEMORY_FILE_PATH: '/workspace/m.jsonl' },
  };
  const spec = hardenedSpec(checkContainerRequest(request, images), IMAGE_ID, 'cs-mcp-1', 'scope-a');

  it('labels the container as an MCP call container with its call key', () => {
    expect(spec.Labels).toEqual({
      [LABELS.managed]: 'true',
      [LABELS.plan]: 'plan-1',
      [LABELS.step]: 'echo',
      [LABELS.role]: 'mcp',
      [LABELS.call]: CALL,
      [LABELS.owner]: 'countersign-executor',
      [LABELS.scope]: 'scope-a',
    });
    expect(LABELS.role).toBe('countersign.role');
    expect(LABELS.call).toBe('countersign.call');
  });

  it('keeps stdin open and attaches stdio, without a TTY', () => {
    expect(spec).toMatchObject({
      OpenStdin: true,
      StdinOnce: true,
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
    });
  });

  it('mounts the workspace read-only, and runs the command with the request env after the fixed one', () => {
    expect(spec.HostConfig?.Mounts).toEqual([
      { Type: 'volume', Source: 'countersign-ws-plan-1', Target: '/workspace', ReadOnly: true },
    ]);
    expect(spec.Cmd).toEqual(['node', '/opt/mcp/server.js']);
    expect(spec.Env).toEqual([
      'HOME=/workspace',
      'LANG=C.UTF-8',
      'TERM=xterm-256color',
      'MEMORY_FILE_PATH=/workspace/m.jsonl',
    ]);
    expect(spec.WorkingDir).toBe('/workspace');
  });

  it('stays hardened: uid 1000, no capabilities, read-only root, no network', () => {
    expect(spec).toMatchObject({
      Image: IMAGE_ID,
      name: 'cs-mcp-1',
      User: '1000:1000',
      NetworkDisabled: true,
    });
    expect(spec.HostConfig).toMatchObject({
      NetworkMode: 'none',
      Privileged: false,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      ReadonlyRootfs: true,
      Memory: DEFAULT_LIMITS.memoryBytes,
      MemorySwap: DEFAULT_LIMITS.memoryBytes,
      PidsLimit: DEFAULT_LIMITS.pids,
    });
  });

  it('mounts the workspace read-write unless workspaceReadOnly is true', () => {
    for (const workspaceReadOnly of [false, undefined]) {
      const writable = hardenedSpec({ ...request, workspaceReadOnly }, IMAGE_ID, 'n');
      expect(writable.HostConfig?.Mounts).toEqual([
        { Type: 'volume', Source: 'countersign-ws-plan-1', Target: '/workspace', ReadOnly: false },
      ]);
    }
  });

  it('uses /tmp as HOME and working folder when there is no workspace volume', () => {
    const noWorkspace = { ...request, workspaceVolume: undefined, workspaceReadOnly: undefined };
    const bare = hardenedSpec(noWorkspace, IMAGE_ID, 'n');
    expect(bare.Env).toEqual([
      'HOME=/tmp',
      'LANG=C.UTF-8',
      'TERM=xterm-256color',
      'MEMORY_FILE_PATH=/workspace/m.jsonl',
    ]);
    expect(bare.WorkingDir).toBe('/tmp');
    expect(bare.HostConfig?.Mounts).toEqual([]);
  });

  it('has no MCP labels and no stdio without a call key and stdio', () => {
    const plain = hardenedSpec({ image: IMAGE, owner: { plan: 'plan-1' } }, IMAGE_ID, 'n');
    expect(plain.Labels).not.toHaveProperty(LABELS.role);
    expect(plain.Labels).not.toHaveProperty(LABELS.call);
    expect(plain.Labels).not.toHaveProperty(LABELS.step);
    for (const key of ['OpenStdin', 'StdinOnce', 'AttachStdin', 'AttachStdout', 'AttachStderr', 'Tty'])
      expect(plain).not.toHaveProperty(key);
    expect(plain.Cmd).toEqual(['sleep', 'infinity']);
    expect(plain.Labels?.[LABELS.scope]).toBe('default');
  });

  it('leaves stdio closed when stdio is false', () => {
    expect(hardenedSpec({ ...request, stdio: false }, IMAGE_ID, 'n')).not.toHaveProperty('OpenStdin');
  });

  it('puts an egress server on the egress network only', () => {
    const egress = hardenedSpec({ ...request, network: 'egress' }, IMAGE_ID, 'n');
    expect(egress.NetworkDisabled).toBe(false);
    expect(egress.HostConfig?.NetworkMode).toBe(EGRESS_NETWORK);
  });

  it('does not let request labels override the broker labels', () => {
    const spoof = hardenedSpec(
      { ...request, labels: { [LABELS.role]: 'workspace', [LABELS.call]: 'f'.repeat(32), note: 'ok' } },
      IMAGE_ID,
      'n',
    );
    expect(spoof.Labels).toMatchObject({ [LABELS.role]: 'mcp', [LABELS.call]: CALL, note: 'ok' });
    // And checkContainerRequest refuses such labels before they get this far.
    expect(refusal({ ...base, labels: { [LABELS.role]: 'mcp' } }).code).toBe('bad_label');
  });
});

const RUN = 'abcdef0123456789abcdef0123456789';
const stepRequest = {
  image: IMAGE,
  owner: { plan: 'plan-1', step: 'build' },
  workspaceVolume: 'countersign-ws-plan-1',
  command: ['/bin/sh', '-c', 'make'],
  step: { run: RUN, env: { CI: 'true' } },
};

describe('checkContainerRequest: a step container', () => {
  it("accepts the step's own environment by the plan's rules for names", () => {
    const env = {
      lower_case: 'x',
      _: '',
      PATH: '/opt/bin:/usr/bin',
      HOME: '/workspace/home',
      [`A${'b'.repeat(127)}`]: 'x'.repeat(4096),
    };
    const request = { ...stepRequest, step: { run: RUN, env } };
    expect(checkContainerRequest(request, images)).toEqual(request);
    const many = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`V${i}`, 'x']));
    expect(() =>
      checkContainerRequest({ ...stepRequest, step: { run: RUN, env: many } }, images),
    ).not.toThrow();
  });

  it.each(['1X', 'A-B', 'A B', '', `A${'b'.repeat(128)}`, 'É'])('refuses the variable name %j', (name) => {
    const error = refusal({ ...stepRequest, step: { run: RUN, env: { [name]: 'x' } } });
    expect(error.code).toBe('bad_command');
    expect(error.message).toContain('is not a variable name a plan may set');
  });

  it('refuses a value that is not a string, is over 4096 characters or holds a NUL', () => {
    for (const value of [1, null, 'x'.repeat(4097), 'a\0b']) {
      const error = refusal({ ...stepRequest, step: { run: RUN, env: { V: value } } });
      expect(error.message).toBe('[bad_command] step.env "V" must be a string of at most 4096 characters');
    }
  });

  it('refuses an environment that is not an object or holds more than 64 variables', () => {
    const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`V${i}`, 'x']));
    for (const env of [many, ['A=1'], 'A=1', null, undefined])
      expect(refusal({ ...stepRequest, step: { run: RUN, env } }).message).toBe(
        '[bad_command] step.env must be an object of at most 64 variables',
      );
  });

  it.each([
    ['step that is not an object', { step: 'yes' }, '[bad_command] step must be an object with run and env'],
    [
      'field a step does not have',
      { step: { run: RUN, env: {}, tty: false } },
      '[unknown_field] fields "tty" are not part of a step',
    ],
    [
      'run key that is not hex',
      { step: { run: 'RUN-1', env: {} } },
      '[bad_label] step.run must be a run key (hex)',
    ],
    [
      'run key with a label injection',
      { step: { run: `${RUN}\ncountersign.plan=x`, env: {} } },
      '[bad_label] step.run must be a run key (hex)',
    ],
    [
      'missing owner.step',
      { owner: { plan: 'plan-1' } },
      '[bad_label] a step container names its step (owner.step)',
    ],
    [
      'call key',
      { owner: { plan: 'plan-1', step: 'build', call: CALL } },
      '[bad_label] a step container is not an MCP call',
    ],
    [
      'request env beside it',
      { env: { A: '1' } },
      "[bad_command] a step container's variables are the step's own (step.env)",
    ],
    ['stdio', { stdio: true }, '[bad_command] a step container gets a terminal, not stdio'],
    [
      'missing workspace volume',
      { workspaceVolume: undefined },
      '[bad_volume] a step container mounts its workspace volume, writable',
    ],
    [
      'read-only workspace',
      { workspaceReadOnly: true },
      '[bad_volume] a step container mounts its workspace volume, writable',
    ],
    ['missing command', { command: undefined }, '[bad_command] a step container needs its command'],
  ])('refuses a %s', (_what, change, message) => {
    expect(refusal({ ...stepRequest, ...change }).message).toBe(message);
  });

  it('still refuses every escalation in a step request', () => {
    expect(refusal({ ...stepRequest, privileged: true }).code).toBe('privileged');
    expect(refusal({ ...stepRequest, pidMode: 'host' }).code).toBe('host_pid');
    expect(refusal({ ...stepRequest, binds: ['/:/host'] }).code).toBe('host_bind');
    expect(refusal({ ...stepRequest, network: 'host' }).code).toBe('host_network');
    expect(refusal({ ...stepRequest, limits: { pids: 100_000 } }).code).toBe('limit_too_large');
  });
});

describe('hardenedSpec for a step container', () => {
  const spec = hardenedSpec(
    checkContainerRequest(
      { ...stepRequest, step: { run: RUN, env: { CI: 'true', HOME: '/workspace/h' } } },
      images,
    ),
    IMAGE_ID,
    'cs-step-1',
    'scope-a',
  );

  it('labels it as a step container with its run key', () => {
    expect(spec.Labels).toEqual({
      [LABELS.managed]: 'true',
      [LABELS.plan]: 'plan-1',
      [LABELS.step]: 'build',
      [LABELS.role]: 'step',
      [LABELS.run]: RUN,
      [LABELS.owner]: 'countersign-executor',
      [LABELS.scope]: 'scope-a',
    });
  });

  it('gives it a terminal with stdin open, for its runner to attach to', () => {
    expect(spec).toMatchObject({
      Tty: true,
      OpenStdin: true,
      StdinOnce: true,
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
    });
  });

  it("runs its command with the step's own variables, which may set HOME for the step", () => {
    expect(spec.Cmd).toEqual(['/bin/sh', '-c', 'make']);
    expect(spec.Env).toEqual(['HOME=/workspace/h', 'LANG=C.UTF-8', 'TERM=xterm-256color', 'CI=true']);
  });

  it('stays hardened, with the workspace writable and a /tmp of its own', () => {
    expect(spec).toMatchObject({ User: '1000:1000', NetworkDisabled: true, WorkingDir: '/workspace' });
    expect(spec.HostConfig).toMatchObject({
      NetworkMode: 'none',
      Privileged: false,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      ReadonlyRootfs: true,
      Tmpfs: { '/tmp': 'rw,nosuid,nodev,size=64m' },
      Mounts: [{ Type: 'volume', Source: 'countersign-ws-plan-1', Target: '/workspace', ReadOnly: false }],
      Memory: DEFAULT_LIMITS.memoryBytes,
      PidsLimit: DEFAULT_LIMITS.pids,
      IpcMode: 'private',
      Init: true,
    });
  });
});
