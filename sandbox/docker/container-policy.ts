/**
 * What the Docker broker will create: a request is checked field by field against a closed
 * allowlist, and every escalation is refused with its own reason. Only requests that pass become
 * a hardened container spec (non-root, no capabilities, read-only root, the workspace volume as
 * the only writable mount, limits, no host namespaces, no devices, no Docker socket).
 */
import type { ContainerCreateOptions } from 'dockerode';
import { PLAN_LIMITS } from '../../core/plan/limits.js';

export type BrokerRefusal =
  | 'not_an_object'
  | 'unknown_field'
  | 'privileged'
  | 'host_bind'
  | 'docker_socket'
  | 'host_network'
  | 'host_pid'
  | 'host_ipc'
  | 'host_uts'
  | 'host_userns'
  | 'capability_added'
  | 'security_opt'
  | 'device'
  | 'unknown_image'
  | 'root_user'
  | 'writable_root'
  | 'limit_too_large'
  | 'bad_volume'
  | 'bad_label'
  | 'bad_command'
  | 'sysctl'
  | 'cgroup_parent'
  | 'egress_unavailable';

export class BrokerRefused extends Error {
  constructor(
    readonly code: BrokerRefusal,
    message: string,
  ) {
    super(`[${code}] ${message}`);
    this.name = 'BrokerRefused';
  }
}

export const LIMIT_CEILINGS = { memoryBytes: 4 * 1024 ** 3, nanoCpus: 2e9, pids: 1024 } as const;
export const DEFAULT_LIMITS = { memoryBytes: 512 * 1024 ** 2, nanoCpus: 1e9, pids: 256 } as const;
const ALLOWED_FIELDS = new Set([
  'image',
  'owner',
  'labels',
  'workspaceVolume',
  'workspaceReadOnly',
  'network',
  'limits',
  'command',
  'env',
  'stdio',
  'step',
]);

/** A step's variable names, as the plan's schema allows them (core/plan/validate.ts). */
const STEP_ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const STEP_ENV_VALUE_CHARS = 4096;

/**
 * Fields people (or a compromised executor) try, each with the reason it is refused. Checked
 * before the allowlist, so the refusal names the escalation rather than just "unknown field".
 */
const ESCALATIONS: [field: string, code: BrokerRefusal, why: string][] = [
  ['privileged', 'privileged', 'privileged containers are never created'],
  ['binds', 'host_bind', 'host bind mounts are refused: the workspace volume is the only mount'],
  ['mounts', 'host_bind', 'extra mounts are refused: the workspace volume is the only mount'],
  [
    'networkMode',
    'host_network',
    'the network is chosen by the broker (none, or egress-only), never the host network',
  ],
  ['pidMode', 'host_pid', "sharing the host (or another container's) pid namespace is refused"],
  ['ipcMode', 'host_ipc', 'sharing an IPC namespace is refused'],
  ['utsMode', 'host_uts', 'sharing the host UTS namespace is refused'],
  ['usernsMode', 'host_userns', 'leaving the user namespace setting of the engine is refused'],
  ['capAdd', 'capability_added', 'capabilities are never added; every capability is dropped'],
  [
    'securityOpt',
    'security_opt',
    'security options are fixed (no-new-privileges, default seccomp and AppArmor)',
  ],
  ['devices', 'device', 'host devices are never passed in'],
  ['deviceRequests', 'device', 'device requests (GPUs and others) are refused'],
  ['user', 'root_user', 'containers run as uid 1000; the user cannot be chosen'],
  ['readonlyRootfs', 'writable_root', 'the root file system is always read-only'],
  ['volumes', 'bad_volume', 'only the workspace volume is mounted'],
  ['sysctls', 'sysctl', 'kernel parameters cannot be set'],
  ['cgroupParent', 'cgroup_parent', 'the cgroup parent cannot be chosen'],
];

export interface ContainerRequest {
  /** An image tag from the broker's catalog. */
  image: string;
  /**
   * Who asked: goes into the labels the reaper uses. `call` marks an MCP server container made
   * for one tool call (its key, the same on every attempt of that call).
   */
  owner: { plan: string; step?: string | undefined; call?: string | undefined };
  labels?: Record<string, string> | undefined;
  /** Named volume mounted at /workspace, read-write unless `workspaceReadOnly`. */
  workspaceVolume?: string | undefined;
  workspaceReadOnly?: boolean | undefined;
  /** Variables for the container's main process (names A-Z, 0-9, _; at most 32). */
  env?: Record<string, string> | undefined;
  /** Keep stdin open and attach to stdio (an MCP server speaks over it); no TTY. */
  stdio?: boolean | undefined;
  /**
   * A shell step's own container: created with a TTY and stdin open, for its runner to start
   * attached (`docker start -ai`). `run` is the execution's run key (labelled, so the container
   * is found again after an executor restart); `env` is the step's own environment, by the plan's
   * rules for names. Needs the workspace volume, a command and `owner.step`; excludes `env` and
   * `stdio`.
   */
  step?: { run: string; env: Record<string, string> } | undefined;
  /** `none` (the default) or the egress-only network, which reaches nothing of ours. */
  network?: 'none' | 'egress' | undefined;
  limits?: { memoryBytes?: number; nanoCpus?: number; pids?: number } | undefined;
  command?: string[] | undefined;
}

/**
 * Made with the egress firewall by scripts/egress-network: its presence says the firewall is set
 * up. Steps attach to their plan's own egress network (egress-networks.ts), never to this one.
 */
export const EGRESS_NETWORK = 'countersign-egress';

/** The only volumes the broker mounts or removes: a plan's workspace. */
export function isWorkspaceVolumeName(name: unknown): name is string {
  return typeof name === 'string' && /^countersign-ws-[A-Za-z0-9._-]{1,180}$/.test(name);
}

export const LABELS = {
  managed: 'countersign.managed',
  plan: 'countersign.plan',
  step: 'countersign.step',
  owner: 'countersign.owner',
  scope: 'countersign.scope',
  /**
   * `mcp` for a tool call's server container, `step` for a shell step's; workspace containers of
   * earlier versions (one per plan) lack it.
   */
  role: 'countersign.role',
  call: 'countersign.call',
  /** A step container's run key: one execution of one step. */
  run: 'countersign.run',
} as const;

function refuse(code: BrokerRefusal, message: string): never {
  throw new BrokerRefused(code, message);
}

function mentionsDockerSocket(value: unknown): boolean {
  return JSON.stringify(value ?? '').includes('docker.sock');
}

/** Checks an untrusted request; returns it typed, or throws BrokerRefused with the reason. */
export function checkContainerRequest(
  raw: unknown,
  knownImages: ReadonlyMap<string, string>,
): ContainerRequest {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    refuse('not_an_object', 'a container request must be an object');
  const request = raw as Record<string, unknown>;
  if ([request.binds, request.mounts, request.volumes, request.workspaceVolume].some(mentionsDockerSocket)) {
    refuse('docker_socket', 'the Docker socket is never mounted into a container');
  }
  for (const [field, code, why] of ESCALATIONS) if (field in request) refuse(code, why);
  const unknown = Object.keys(request).filter((k) => !ALLOWED_FIELDS.has(k));
  if (unknown.length)
    refuse(
      'unknown_field',
      `fields ${unknown.map((k) => `"${k}"`).join(', ')} are not part of a container request`,
    );

  if (typeof request.image !== 'string' || !knownImages.has(request.image)) {
    refuse(
      'unknown_image',
      `image ${JSON.stringify(request.image)} is not in the catalog (${[...knownImages.keys()].join(', ')})`,
    );
  }
  const owner = request.owner as ContainerRequest['owner'] | undefined;
  if (typeof owner?.plan !== 'string' || !/^[A-Za-z0-9._-]{1,200}$/.test(owner.plan))
    refuse('bad_label', 'owner.plan must be a plan id');
  if (owner.step !== undefined && (typeof owner.step !== 'string' || owner.step.length > 400))
    refuse('bad_label', 'owner.step must be a step path');
  if (owner.call !== undefined && (typeof owner.call !== 'string' || !/^[0-9a-f]{16,64}$/.test(owner.call)))
    refuse('bad_label', 'owner.call must be a call key (hex)');
  if (request.workspaceReadOnly !== undefined && typeof request.workspaceReadOnly !== 'boolean')
    refuse('bad_volume', 'workspaceReadOnly must be true or false');
  if (request.stdio !== undefined && typeof request.stdio !== 'boolean')
    refuse('bad_command', 'stdio must be true or false');
  const env = request.env as Record<string, unknown> | undefined;
  if (env !== undefined) {
    if (typeof env !== 'object' || env === null || Array.isArray(env) || Object.keys(env).length > 32)
      refuse('bad_command', 'env must be an object of at most 32 variables');
    for (const [name, value] of Object.entries(env)) {
      if (!/^[A-Z_][A-Z0-9_]{0,63}$/.test(name) || typeof value !== 'string' || value.length > 4096)
        refuse('bad_command', `env "${name}" must be an upper-case name with a short string value`);
      if (['HOME', 'PATH', 'LD_PRELOAD', 'LD_LIBRARY_PATH', 'NODE_OPTIONS'].includes(name))
        refuse('bad_command', `env "${name}" is set by the broker, not by the request`);
    }
  }
  if (request.step !== undefined) checkStep(request);
  const labels = request.labels as Record<string, unknown> | undefined;
  for (const [key, value] of Object.entries(labels ?? {})) {
    if (key.startsWith('countersign.')) refuse('bad_label', `label "${key}" is reserved for the broker`);
    if (typeof value !== 'string' || value.length > 1000)
      refuse('bad_label', `label "${key}" must be a short string`);
  }
  if (request.workspaceVolume !== undefined && !isWorkspaceVolumeName(request.workspaceVolume)) {
    refuse('bad_volume', 'workspaceVolume must be a countersign-ws-* named volume');
  }
  if (request.network !== undefined && request.network !== 'none' && request.network !== 'egress')
    refuse(
      'host_network',
      `network must be "none" or "egress" (the egress-only network), got ${JSON.stringify(request.network)}`,
    );
  const limits = (request.limits ?? {}) as Record<string, unknown>;
  for (const [key, value] of Object.entries(limits)) {
    const ceiling = LIMIT_CEILINGS[key as keyof typeof LIMIT_CEILINGS];
    if (ceiling === undefined) refuse('unknown_field', `limit "${key}" is not a known limit`);
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0 || value > ceiling) {
      refuse('limit_too_large', `limit ${key} must be a positive whole number up to ${ceiling}`);
    }
  }
  if (
    request.command !== undefined &&
    (!Array.isArray(request.command) ||
      request.command.some((c) => typeof c !== 'string') ||
      request.command.length > 64)
  ) {
    refuse('bad_command', 'command must be an array of at most 64 strings');
  }
  return request as unknown as ContainerRequest;
}

/** The `step` of a request: the step's own container, and nothing an MCP server's request sets. */
function checkStep(request: Record<string, unknown>): void {
  const step = request.step as Record<string, unknown> | null;
  if (typeof step !== 'object' || step === null || Array.isArray(step))
    refuse('bad_command', 'step must be an object with run and env');
  const extra = Object.keys(step).filter((k) => k !== 'run' && k !== 'env');
  if (extra.length)
    refuse('unknown_field', `fields ${extra.map((k) => `"${k}"`).join(', ')} are not part of a step`);
  if (typeof step.run !== 'string' || !/^[0-9a-f]{16,64}$/.test(step.run))
    refuse('bad_label', 'step.run must be a run key (hex)');
  if ((request.owner as { step?: unknown }).step === undefined)
    refuse('bad_label', 'a step container names its step (owner.step)');
  if ((request.owner as { call?: unknown }).call !== undefined)
    refuse('bad_label', 'a step container is not an MCP call');
  if (request.env !== undefined)
    refuse('bad_command', "a step container's variables are the step's own (step.env)");
  if (request.stdio !== undefined) refuse('bad_command', 'a step container gets a terminal, not stdio');
  if (request.workspaceVolume === undefined || request.workspaceReadOnly === true)
    refuse('bad_volume', 'a step container mounts its workspace volume, writable');
  if (request.command === undefined) refuse('bad_command', 'a step container needs its command');
  const env = step.env as Record<string, unknown> | null;
  if (
    typeof env !== 'object' ||
    env === null ||
    Array.isArray(env) ||
    Object.keys(env).length > PLAN_LIMITS.maxEnvEntries
  )
    refuse('bad_command', `step.env must be an object of at most ${PLAN_LIMITS.maxEnvEntries} variables`);
  for (const [name, value] of Object.entries(env)) {
    if (!STEP_ENV_NAME.test(name))
      refuse('bad_command', `step.env "${name.slice(0, 200)}" is not a variable name a plan may set`);
    if (typeof value !== 'string' || value.length > STEP_ENV_VALUE_CHARS || value.includes('\0'))
      refuse(
        'bad_command',
        `step.env "${name}" must be a string of at most ${STEP_ENV_VALUE_CHARS} characters`,
      );
  }
}

/** The hardened create options for a request that passed `checkContainerRequest`. */
export function hardenedSpec(
  request: ContainerRequest,
  imageId: string,
  name: string,
  scope = 'default',
  /** The plan's own egress-only network, for a request with `network: 'egress'`. */
  egressNetwork = EGRESS_NETWORK,
): ContainerCreateOptions {
  const limits = { ...DEFAULT_LIMITS, ...request.limits };
  const home = request.workspaceVolume ? '/workspace' : '/tmp';
  // A step's own variables may set HOME, PATH, TERM or LANG for itself, as it could in its shell.
  const env = { HOME: home, LANG: 'C.UTF-8', TERM: 'xterm-256color', ...(request.step?.env ?? request.env) };
  return {
    name,
    Image: imageId,
    Cmd: request.command ?? ['sleep', 'infinity'],
    User: '1000:1000',
    WorkingDir: home,
    Env: Object.entries(env).map(([name, value]) => `${name}=${value}`),
    // A step gets a terminal (its runner's PTY, through `docker start -ai`); an MCP server, stdio.
    ...(request.stdio || request.step
      ? {
          OpenStdin: true,
          StdinOnce: true,
          AttachStdin: true,
          AttachStdout: true,
          AttachStderr: true,
          Tty: request.step !== undefined,
        }
      : {}),
    Labels: {
      ...request.labels,
      [LABELS.managed]: 'true',
      [LABELS.plan]: request.owner.plan,
      ...(request.owner.step ? { [LABELS.step]: request.owner.step } : {}),
      ...(request.owner.call ? { [LABELS.role]: 'mcp', [LABELS.call]: request.owner.call } : {}),
      ...(request.step ? { [LABELS.role]: 'step', [LABELS.run]: request.step.run } : {}),
      [LABELS.owner]: 'countersign-executor',
      [LABELS.scope]: scope,
    },
    NetworkDisabled: request.network !== 'egress',
    HostConfig: {
      NetworkMode: request.network === 'egress' ? egressNetwork : 'none',
      Privileged: false,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      ReadonlyRootfs: true,
      Tmpfs: { '/tmp': 'rw,nosuid,nodev,size=64m' },
      Mounts: request.workspaceVolume
        ? [
            {
              Type: 'volume',
              Source: request.workspaceVolume,
              Target: '/workspace',
              ReadOnly: request.workspaceReadOnly === true,
            },
          ]
        : [],
      Memory: limits.memoryBytes,
      MemorySwap: limits.memoryBytes,
      NanoCpus: limits.nanoCpus,
      PidsLimit: limits.pids,
      IpcMode: 'private',
      Init: true,
      AutoRemove: false,
    },
  };
}
