/**
 * The Docker sandbox from the attacker's side. A plan step probes every host address on every
 * listening port (the Temporal frontend, stand-ins for the API, the Temporal UI and the push
 * service bound to all addresses, and whatever else listens here), plus a stand-in "outside world"
 * host, and the test reads the verdicts from the step's own output. Controls show the probe is
 * able to succeed: the host reaches every stand-in, and a container on Docker's default bridge
 * (which Countersign never uses) reaches them through the gateway.
 */
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { networkInterfaces } from 'node:os';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WORKSPACE_IMAGE } from '../sandbox/docker/docker-backend.js';
import { removeDockerLeftovers } from './support/docker.js';
import { runApproved } from './support/plans.js';
import { startTestStack, type TestStack } from './support/stack.js';
import { startOutsideWorld, type OutsideWorld } from './support/outside-world.js';

const run = promisify(execFile);
let stack: TestStack;
let outside: OutsideWorld;
const standIns: Server[] = [];
const plans: string[] = [];
const targets: { name: string; host: string; port: number }[] = [];
let standInPorts: { api: number; 'temporal-ui': number; push: number };

async function listen(): Promise<number> {
  const server = createServer((socket) => {
    socket.on('error', () => undefined); // probes hang up abruptly
    socket.end('reached\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  standIns.push(server);
  return (server.address() as { port: number }).port;
}

/** Every TCP port something listens on here, from /proc (IPv4 and IPv6). */
async function hostListeningPorts(): Promise<number[]> {
  const { stdout } = await run('cat', ['/proc/net/tcp', '/proc/net/tcp6']);
  const ports = stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields[3] === '0A')
    .map((fields) => parseInt(fields[1]!.split(':').pop()!, 16));
  return [...new Set(ports)].sort((a, b) => a - b);
}

function hostAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((a) => a?.family === 'IPv4')
    .map((a) => a!.address);
}

/**
 * A POSIX shell script that tries every target at once with bash's /dev/tcp and prints one line
 * per target: `name host:port closed`, or `name host:port open <first line the server sent>`.
 */
function probeScript(list: typeof targets): string {
  const probes = list.map(
    (t) =>
      `(timeout 3 bash -c 'exec 3<>/dev/tcp/${t.host}/${t.port} && echo "${t.name} ${t.host}:${t.port} open $(timeout 1 head -n 1 <&3)"' 2>/dev/null || echo "${t.name} ${t.host}:${t.port} closed") &`,
  );
  return ['echo probe-start', ...probes, 'wait', 'echo probe-end'].join('\n');
}

/** `closed`, or `open` with the banner the server sent (a stand-in says `reached`). */
function verdicts(output: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const match of output.matchAll(/^(\S+) (\S+:\d+) (open|closed)(?: (.*?))?\r?$/gm))
    map.set(`${match[1]} ${match[2]}`, match[4] ? `${match[3]} ${match[4]}` : match[3]!);
  return map;
}

/**
 * Runs the probe in a plan a person approves step by step (the probe script can be longer than a
 * standing approval's command may be, so no grant could cover it).
 */
async function probeFromPlan(egress: boolean): Promise<string> {
  const view = await runApproved(
    stack.client,
    stack.root,
    {
      name: `isolation-${egress ? 'egress' : 'none'}`,
      egress,
      keepWorkspace: false,
      steps: [
        { id: 'probe', run: probeScript(targets), timeout: '2m' },
        {
          id: 'self',
          run: 'id -u; grep CapEff /proc/self/status; ls /var/run/docker.sock 2>&1; touch /etc/x 2>&1; touch /workspace/ok && echo workspace-writable',
        },
      ],
    },
    plans,
  );
  expect(view.steps.map((s) => s.status)).toEqual(['succeeded', 'succeeded']);
  const planId = plans.at(-1)!;
  // keepWorkspace: false: the plan's files went with its container.
  await expect(run('docker', ['volume', 'inspect', `countersign-ws-${planId}`])).rejects.toThrow(
    /no such volume/i,
  );
  return view.steps.map((s) => s.result?.outputTail ?? '').join('\n');
}

beforeAll(async () => {
  stack = await startTestStack('isolation', { backend: 'docker' });
  outside = await startOutsideWorld();
  const named = { api: await listen(), 'temporal-ui': await listen(), push: await listen() };
  standInPorts = named;
  const frontend = Number(stack.config.temporalAddress.split(':').pop());
  const others = (await hostListeningPorts()).filter(
    (p) => p !== frontend && !Object.values(named).includes(p),
  );
  for (const host of hostAddresses()) {
    for (const [name, port] of Object.entries(named)) targets.push({ name, host, port });
    targets.push({ name: 'temporal-frontend', host, port: frontend });
    for (const port of others) targets.push({ name: 'host-port', host, port });
  }
  targets.push({ name: 'outside-world', host: outside.address, port: outside.port });
});
afterAll(async () => {
  await removeDockerLeftovers(plans);
  for (const server of standIns) server.close();
  await outside?.close();
  await stack?.close();
});

describe('a workspace container', () => {
  it('the controls: the host reaches every stand-in, and a container on the default bridge reaches them too', async () => {
    const fromHost = await run('sh', ['-c', probeScript(targets.filter((t) => t.name !== 'host-port'))]);
    for (const target of targets.filter((t) => t.name !== 'host-port' && t.name !== 'temporal-frontend'))
      expect(verdicts(fromHost.stdout).get(`${target.name} ${target.host}:${target.port}`)).toBe(
        target.name === 'outside-world' ? 'open outside' : 'open reached',
      );
    const gateway = '172.17.0.1';
    const bridgeTargets = [{ name: 'api', host: gateway, port: standInPorts.api }];
    const { stdout } = await run('docker', [
      'run',
      '--rm',
      '--network',
      'bridge',
      WORKSPACE_IMAGE,
      'sh',
      '-c',
      probeScript(bridgeTargets),
    ]);
    expect(verdicts(stdout).get(`api ${gateway}:${standInPorts.api}`)).toBe('open reached');
  });

  for (const egress of [false, true]) {
    it(`with egress: ${egress}, reaches no host address on any port${egress ? ', but does reach the outside world' : ', nor the outside world'}`, async () => {
      const output = await probeFromPlan(egress);
      expect(output).toContain('probe-end');
      const seen = verdicts(output);
      expect(seen.size).toBe(targets.length);
      const open = [...seen].filter(
        ([key, verdict]) => verdict !== 'closed' && !key.startsWith('outside-world'),
      );
      expect(open).toEqual([]);
      expect(seen.get(`outside-world ${outside.address}:${outside.port}`)).toBe(
        egress ? 'open outside' : 'closed',
      );
      expect(output).toMatch(/^1000\r?$/m);
      expect(output).toMatch(/^CapEff:\s+0000000000000000\r?$/m);
      expect(output).toContain('No such file or directory'); // no Docker socket
      expect(output).toMatch(/touch: cannot touch '\/etc\/x': Read-only file system/);
      expect(output).toContain('workspace-writable');
    });
  }
});
