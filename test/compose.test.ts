/**
 * docker-compose.yml, checked for the structure the zones depend on (no Docker Compose needed):
 * the executor reaches Temporal only through the worker gate, the gate is the only bridge between
 * the control and sandbox networks, only the executor holds the Docker socket, nothing is
 * privileged or shares a host namespace, and every image is either built here from a BASE_IMAGE
 * argument or pinned. Also runs the gate's own process entry against the shared dev server.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, inject, it } from 'vitest';
import { parse } from 'yaml';
import { SEARCH_ATTRIBUTES, TASK_QUEUES } from '../core/names.js';
import { gateOptionsFromEnv } from '../sandbox/gate/main.js';
import { doorOptionsFromEnv } from '../services/temporal/door-main.js';
import { TLS_FOLDERS } from '../services/temporal/tls-init.js';
import { connectTemporal } from '../services/temporal/connection.js';
import { PROJECT_ROOT } from '../workers/config.js';
import { freePort } from './support/ports.js';

interface Service {
  image?: string;
  build?: { context?: string; dockerfile?: string; target?: string; args?: Record<string, string> };
  pull_policy?: string;
  depends_on?: Record<string, { condition?: string }>;
  command?: string[];
  environment?: Record<string, string>;
  networks?: string[] | Record<string, unknown>;
  network_mode?: string;
  volumes?: (string | { source?: string; target?: string })[];
  ports?: (string | { host_ip?: string })[];
  privileged?: boolean;
  pid?: string;
  ipc?: string;
  uts?: string;
  userns_mode?: string;
  cap_add?: string[];
  cap_drop?: string[];
  devices?: unknown[];
  security_opt?: string[];
  read_only?: boolean;
}

interface ComposeFile {
  services: Record<string, Service>;
  networks: Record<string, { internal?: boolean } | null>;
  volumes: Record<string, unknown>;
}

const read = (path: string) => readFileSync(resolve(PROJECT_ROOT, path), 'utf8');
const compose = parse(read('docker-compose.yml'), { merge: true }) as ComposeFile;
const services = Object.entries(compose.services);
const service = (name: string): Service => {
  const found = compose.services[name];
  if (!found) throw new Error(`docker-compose.yml has no service "${name}"`);
  return found;
};
const networksOf = (s: Service) => (Array.isArray(s.networks) ? s.networks : Object.keys(s.networks ?? {}));
const onNetwork = (network: string) =>
  services
    .filter(([, s]) => networksOf(s).includes(network))
    .map(([name]) => name)
    .sort();
const mountSources = (s: Service) =>
  (s.volumes ?? []).map((v) => (typeof v === 'string' ? v.split(':')[0]! : (v.source ?? '')));
/** A service's environment as compose resolves it when no variable is set: `${X:-default}` → default. */
const defaults = (env: Record<string, string> = {}) =>
  Object.fromEntries(
    Object.entries(env).map(([k, v]) => [
      k,
      v.replace(/\$\{\w+(?::?-([^}]*))?\}/g, (_, d?: string) => d ?? ''),
    ]),
  );
const hostPort = (address: string) => {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at), port: Number(address.slice(at + 1)) };
};

describe('docker-compose.yml', () => {
  it('runs the processes of the embedded stack, with Temporal on PostgreSQL', () => {
    for (const name of ['postgres', 'temporal', 'control', 'gate', 'executor']) service(name);
    expect(service('postgres').image).toMatch(/^postgres:16/);
    expect(service('temporal').environment?.DB).toBe('postgres12');
    expect(service('control').command).toEqual(['control']);
    expect(service('gate').command).toEqual(['gate']);
    expect(service('executor').command).toEqual(['executor']);
  });

  it('keeps the executor off the control network: its only network is the sandbox one', () => {
    expect(networksOf(service('executor'))).toEqual(['sandbox']);
    expect(service('executor').network_mode).toBeUndefined();
  });

  it('bridges the control and sandbox networks with the worker gate only', () => {
    const both = services.filter(([, s]) => ['control', 'sandbox'].every((n) => networksOf(s).includes(n)));
    expect(both.map(([name]) => name)).toEqual(['gate']);
    expect(networksOf(service('gate')).sort()).toEqual(['control', 'sandbox']);
    expect(onNetwork('sandbox')).toEqual(['executor', 'gate']);
    for (const name of ['postgres', 'temporal-door', 'control'])
      expect(networksOf(service(name))).toContain('control');
  });

  it("keeps Temporal inside the door's network namespace, on its loopback, behind mutual TLS", () => {
    // No network of its own: only the door's namespace, where it binds loopback alone.
    for (const name of ['temporal', 'temporal-namespace']) {
      expect(service(name).network_mode, name).toBe('service:temporal-door');
      expect(networksOf(service(name)), name).toEqual([]);
    }
    expect(service('temporal').environment?.BIND_ON_IP).toBe('127.0.0.1');
    const door = doorOptionsFromEnv(defaults(service('temporal-door').environment));
    expect(door).toMatchObject({ host: '0.0.0.0', port: 7234, upstream: { host: '127.0.0.1', port: 7233 } });
    // Every app process reaches Temporal through the door (or the gate), with its own certificate
    // folder, and mounts no other kind's.
    const tlsVolume = (s: Service) => mountSources(s).filter((m) => m.startsWith('tls-'));
    for (const [name, folder] of [
      ['api', 'api'],
      ['control', 'control'],
      ['gate', 'gate'],
      ['executor', 'executor'],
      ['cli', 'cli'],
      ['temporal-door', 'door'],
    ] as const) {
      const s = service(name);
      expect(s.environment?.COUNTERSIGN_TEMPORAL_TLS_DIR, name).toBe(`/tls/${folder}`);
      expect(tlsVolume(s), name).toEqual([`tls-${folder}`]);
      const address = hostPort(s.environment?.TEMPORAL_ADDRESS ?? '');
      expect(address.host, name).toBe(name === 'executor' ? 'gate' : 'temporal-door');
    }
    // Only the certificate job holds the CA's key.
    expect(services.filter(([, s]) => mountSources(s).includes('tls-ca')).map(([n]) => n)).toEqual([
      'temporal-tls',
    ]);
    // The job makes a folder for every kind it names, each one mounted by the job.
    expect(Object.keys(TLS_FOLDERS).sort()).toEqual(
      tlsVolume(service('temporal-tls'))
        .filter((v) => v !== 'tls-ca')
        .map((v) => v.replace(/^tls-/, ''))
        .sort(),
    );
  });

  it('marks the control and sandbox networks internal', () => {
    expect(compose.networks.control?.internal).toBe(true);
    expect(compose.networks.sandbox?.internal).toBe(true);
  });

  it("points the executor's TEMPORAL_ADDRESS at the gate, and the gate at Temporal", () => {
    const executorEnv = service('executor').environment ?? {};
    const gateEnv = service('gate').environment ?? {};
    const target = hostPort(executorEnv.TEMPORAL_ADDRESS ?? '');
    expect(target.host).toBe('gate');
    expect(target.port).toBe(hostPort(gateEnv.COUNTERSIGN_GATE_LISTEN ?? '').port);
    expect(hostPort(gateEnv.COUNTERSIGN_GATE_UPSTREAM ?? '').host).toBe('temporal-door');
    // Every other app process talks to Temporal through the door, on the control network.
    expect(service('control').environment?.TEMPORAL_ADDRESS).toBe(gateEnv.COUNTERSIGN_GATE_UPSTREAM);
  });

  it('gives the gate an environment its process entry accepts, limited to the sandbox queue', () => {
    const options = gateOptionsFromEnv(defaults(service('gate').environment));
    expect(options).toMatchObject({
      upstream: 'temporal-door:7234',
      tlsDir: '/tls/gate',
      host: '0.0.0.0',
      port: 7233,
      taskQueue: TASK_QUEUES.sandbox,
    });
    expect(() => gateOptionsFromEnv({ COUNTERSIGN_GATE_LISTEN: 'nowhere' })).toThrow(
      /COUNTERSIGN_GATE_LISTEN/,
    );
    expect(() => gateOptionsFromEnv({ COUNTERSIGN_GATE_UPSTREAM: 'a b:1' })).toThrow(
      /COUNTERSIGN_GATE_UPSTREAM/,
    );
  });

  it('runs the executor in Docker mode with a root pin and its own state volume', () => {
    const executor = service('executor');
    expect(executor.environment?.COUNTERSIGN_SANDBOX).toBe('docker');
    expect(executor.environment).toHaveProperty('COUNTERSIGN_ROOT_KEY_ID');
    expect(executor.environment?.TEMPORAL_NAMESPACE).toBe(service('control').environment?.TEMPORAL_NAMESPACE);
    for (const name of ['control', 'executor']) {
      const s = service(name);
      const home = s.environment?.COUNTERSIGN_HOME;
      const mount = (s.volumes ?? []).find((v) => typeof v === 'string' && v.endsWith(`:${home}`));
      expect(mount, `${name} keeps COUNTERSIGN_HOME in a volume`).toMatch(/^[a-z-]+-home:/);
    }
    // Separate state: the control worker's policy key never sits where the executor can read it.
    const shared = mountSources(service('control')).filter((m) => mountSources(executor).includes(m));
    expect(shared).toEqual([]);
  });

  it("builds every MCP catalog server's image before the executor starts, from the catalog's own folders", () => {
    const catalog = JSON.parse(read('sandbox/mcp/catalog.json')) as {
      servers: { id: string; image: string; source: string }[];
    };
    const executor = service('executor');
    for (const server of catalog.servers) {
      const name = `mcp-${server.id}-image`;
      const built = service(name);
      expect(built.image, name).toBe(server.image);
      expect(built.build?.context, name).toBe(server.source);
      expect(executor.depends_on?.[name]).toEqual({
        condition: 'service_completed_successfully',
      });
    }
  });

  it('mounts the Docker socket into the executor only', () => {
    const withSocket = services.filter(([, s]) => mountSources(s).some((m) => m.includes('docker.sock')));
    expect(withSocket.map(([name]) => name)).toEqual(['executor']);
  });

  it('runs nothing privileged, in a host namespace or with added capabilities beyond the executor drop', () => {
    for (const [name, s] of services) {
      expect(s.privileged ?? false, name).toBe(false);
      // Sharing the door's namespace is Temporal's way of having no network of its own.
      expect([undefined, 'none', 'service:temporal-door'], `${name} network_mode`).toContain(s.network_mode);
      for (const mode of [s.pid, s.ipc, s.uts, s.userns_mode]) expect(mode, name).not.toBe('host');
      expect(s.devices, name).toBeUndefined();
      expect(s.security_opt ?? [], name).not.toEqual(
        expect.arrayContaining([expect.stringMatching(/unconfined|apparmor|seccomp|label/)]),
      );
      // Only the executor adds anything: what its root init needs to drop to uid 1000 and signal it.
      expect(s.cap_add ?? [], name).toEqual(name === 'executor' ? ['SETUID', 'SETGID', 'KILL'] : []);
    }
    for (const name of ['control', 'gate', 'executor']) {
      expect(service(name).cap_drop).toEqual(['ALL']);
      expect(service(name).read_only).toBe(true);
      expect(service(name).security_opt).toContain('no-new-privileges:true');
    }
  });

  it('keeps PostgreSQL and Temporal off the sandbox network and publishes only on loopback', () => {
    for (const name of ['postgres', 'temporal', 'temporal-schema', 'temporal-namespace', 'control', 'api'])
      expect(networksOf(service(name)), name).not.toContain('sandbox');
    for (const [name, s] of services)
      for (const port of s.ports ?? [])
        expect(typeof port === 'string' ? port : port.host_ip, name).toMatch(/^127\.0\.0\.1/);
    expect(services.filter(([, s]) => s.ports?.length).map(([name]) => name)).toEqual(['api']);
  });

  it('builds every image of its own from a BASE_IMAGE argument, and never pulls one by that name', () => {
    const built = services.filter(([, s]) => s.build);
    expect(built.length).toBeGreaterThan(0);
    for (const [name, s] of built) {
      expect(s.build?.args?.BASE_IMAGE, name).toMatch(/BASE_IMAGE:-node:20-bookworm-slim/);
      expect(s.pull_policy, name).toBe('build');
      const dockerfile = read(resolve(s.build?.context ?? '.', s.build?.dockerfile ?? 'Dockerfile'));
      expect(dockerfile, name).toMatch(/^ARG BASE_IMAGE=node:20-bookworm-slim$/m);
      // Every stage starts from the base image or from an earlier stage, never from a registry.
      const stages: string[] = [];
      for (const [, from, stage] of dockerfile.matchAll(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/gim)) {
        expect(['${BASE_IMAGE}', ...stages], `${name}: FROM ${from}`).toContain(from);
        if (stage) stages.push(stage);
      }
      if (s.build?.target) expect(stages, name).toContain(s.build.target);
    }
  });

  it('pins every pulled image, with Temporal server and admin-tools on the same version', () => {
    for (const [name, s] of services.filter(([, s]) => !s.build))
      expect(s.image, name).toMatch(/^[\w./-]+:(?!latest$)[\w.-]+$/);
    const versions = services
      .map(([, s]) => s.image ?? '')
      .filter((image) => /^temporalio\/(server|admin-tools):/.test(image))
      .map((image) => image.split(':')[1]);
    expect(versions.length).toBeGreaterThanOrEqual(2);
    expect(new Set(versions).size).toBe(1);
  });

  it("creates exactly Countersign's search attributes in the namespace job", () => {
    const script = read('deploy/temporal/setup-namespace.sh');
    const created = [...script.matchAll(/^attribute (\w+) (\w+)$/gm)].map(([, name, type]) => ({
      name,
      type,
    }));
    expect(created).toEqual(Object.values(SEARCH_ATTRIBUTES).map(({ name, type }) => ({ name, type })));
    // The scripts the jobs run are the ones in deploy/temporal.
    for (const job of ['temporal-schema', 'temporal-namespace'])
      for (const source of mountSources(service(job))) expect(read(source)).toMatch(/^#!\/bin\/sh/);
  });
});

describe('the worker gate process (sandbox/gate/main.ts)', () => {
  it('passes worker RPCs to Temporal, refuses the rest, and exits cleanly on SIGTERM', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'sandbox/gate/main.ts'], {
      cwd: PROJECT_ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: {
        ...process.env,
        COUNTERSIGN_GATE_UPSTREAM: inject('temporalAddress'),
        COUNTERSIGN_TEMPORAL_TLS_DIR: inject('temporalTlsDir'),
        COUNTERSIGN_GATE_LISTEN: `127.0.0.1:${port}`,
        TEMPORAL_NAMESPACE: 'default',
      },
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = once(child, 'exit');
    const until = async (done: () => boolean) => {
      for (const deadline = Date.now() + 30_000; !done(); await sleep(50))
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`gate log so far: ${stderr}`);
    };
    try {
      await until(() => stderr.includes('listening'));
      const connection = await connectTemporal(
        { temporalAddress: `127.0.0.1:${port}`, temporalTlsDir: inject('temporalTlsDir') },
        'executor',
      );
      try {
        const info = await connection.workflowService.getSystemInfo({});
        expect(info.capabilities).toBeTruthy();
        await expect(
          connection.workflowService.listWorkflowExecutions({ namespace: 'default' }),
        ).rejects.toThrow(/worker gate/);
      } finally {
        await connection.close();
      }
      // The refusal is logged by the gate process: its stderr may arrive after the answer.
      await until(() => stderr.includes('refused ListWorkflowExecutions'));
    } finally {
      child.kill('SIGTERM');
    }
    const [code] = await exited;
    expect(code).toBe(0);
  });
});
