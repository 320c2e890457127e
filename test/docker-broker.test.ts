/**
 * The Docker broker against the real engine: escalation attempts are refused, each with its own
 * reason; what it does create is hardened, checked from inside the container and by inspection.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerBroker } from '../sandbox/docker/broker.js';
import { BrokerRefused, LABELS } from '../sandbox/docker/container-policy.js';

const WORKSPACE_IMAGE = 'countersign/workspace:latest';
const quiet = { info: () => undefined };
let broker: DockerBroker;
const created: string[] = [];

beforeAll(async () => {
  broker = await DockerBroker.connect([WORKSPACE_IMAGE], quiet);
});
afterAll(async () => {
  for (const id of created) await broker.remove(id);
});

const base = { image: WORKSPACE_IMAGE, owner: { plan: 'broker-test' } };

describe('the Docker broker refuses every escalation with its own reason', () => {
  const attempts: [string, Record<string, unknown>, string][] = [
    ['privileged mode', { ...base, privileged: true }, 'privileged'],
    ['a host bind mount', { ...base, binds: ['/:/host'] }, 'host_bind'],
    ['an extra mount', { ...base, mounts: [{ Type: 'bind', Source: '/etc', Target: '/etc' }] }, 'host_bind'],
    ['the Docker socket', { ...base, binds: ['/var/run/docker.sock:/var/run/docker.sock'] }, 'docker_socket'],
    ['the host network', { ...base, networkMode: 'host' }, 'host_network'],
    ['a bridge network', { ...base, network: 'bridge' }, 'host_network'],
    ['the host pid namespace', { ...base, pidMode: 'host' }, 'host_pid'],
    ['the host IPC namespace', { ...base, ipcMode: 'host' }, 'host_ipc'],
    ['the host UTS namespace', { ...base, utsMode: 'host' }, 'host_uts'],
    ['the host user namespace', { ...base, usernsMode: 'host' }, 'host_userns'],
    ['an added capability', { ...base, capAdd: ['SYS_ADMIN'] }, 'capability_added'],
    ['a seccomp override', { ...base, securityOpt: ['seccomp=unconfined'] }, 'security_opt'],
    ['a host device', { ...base, devices: [{ PathOnHost: '/dev/kmsg' }] }, 'device'],
    ['a GPU request', { ...base, deviceRequests: [{ Count: -1 }] }, 'device'],
    ['an unknown image', { ...base, image: 'alpine:latest' }, 'unknown_image'],
    ['running as root', { ...base, user: '0:0' }, 'root_user'],
    ['a writable root', { ...base, readonlyRootfs: false }, 'writable_root'],
    ['oversized memory', { ...base, limits: { memoryBytes: 64 * 1024 ** 3 } }, 'limit_too_large'],
    ['an unlimited pid count', { ...base, limits: { pids: -1 } }, 'limit_too_large'],
    ['a foreign volume', { ...base, workspaceVolume: 'other-plan-data' }, 'bad_volume'],
    ['a sysctl', { ...base, sysctls: { 'net.ipv4.ip_forward': '1' } }, 'sysctl'],
    ['a cgroup parent', { ...base, cgroupParent: '/' }, 'cgroup_parent'],
    ['forged broker labels', { ...base, labels: { [LABELS.owner]: 'someone' } }, 'bad_label'],
    ['an unknown field', { ...base, hostConfig: {} }, 'unknown_field'],
  ];

  it.each(attempts)('refuses %s', async (_what, request, code) => {
    const refusal = await broker.run(request).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refusal).toBeInstanceOf(BrokerRefused);
    expect((refusal as BrokerRefused).code).toBe(code);
  });

  it('has a distinct reason for at least 15 kinds of escalation', () => {
    expect(new Set(attempts.map(([, , code]) => code)).size).toBeGreaterThanOrEqual(15);
  });
});

describe('what the broker creates', () => {
  it('is non-root, capability-free, read-only, offline, limited and labelled, seen from inside and by inspection', async () => {
    const probe = [
      'id -u',
      'grep CapEff /proc/self/status',
      'touch /etc/evil 2>/dev/null && echo ROOT:writable || echo ROOT:read-only',
      'touch /tmp/ok && echo TMP:writable',
      'ls /var/run/docker.sock 2>/dev/null && echo SOCKET:present || echo SOCKET:absent',
      'cat /sys/class/net/*/operstate 2>/dev/null | wc -l',
      'ls /sys/class/net',
    ].join('; ');
    const { id } = await broker.run({
      ...base,
      command: ['sh', '-c', probe],
      limits: { memoryBytes: 128 * 1024 ** 2, pids: 64 },
    });
    created.push(id);
    expect(await broker.wait(id)).toBe(0);
    const output = await broker.logs(id);
    expect(output).toMatch(/^1000$/m);
    expect(output).toMatch(/CapEff:\s+0000000000000000/);
    expect(output).toContain('ROOT:read-only');
    expect(output).toContain('TMP:writable');
    expect(output).toContain('SOCKET:absent');
    expect(output.trim().split('\n').at(-1)).toBe('lo');

    const info = await broker.inspect(id);
    expect(info.Config.User).toBe('1000:1000');
    expect(info.HostConfig.Privileged).toBe(false);
    expect(info.HostConfig.CapDrop).toEqual(['ALL']);
    expect(info.HostConfig.SecurityOpt).toEqual(['no-new-privileges']);
    expect(info.HostConfig.ReadonlyRootfs).toBe(true);
    expect(info.HostConfig.NetworkMode).toBe('none');
    expect(info.HostConfig.Memory).toBe(128 * 1024 ** 2);
    expect(info.HostConfig.PidsLimit).toBe(64);
    expect(info.HostConfig.Binds ?? []).toEqual([]);
    expect(info.Image).toBe(broker.imageId(WORKSPACE_IMAGE));
    expect(info.Config.Labels[LABELS.plan]).toBe('broker-test');
  });

  it('reaps containers of plans that are gone, and treats an already removed container as removed', async () => {
    const { id: leftover } = await broker.run({ ...base, owner: { plan: 'vanished-plan' } });
    const { id: live } = await broker.run({ ...base, owner: { plan: 'live-plan' } });
    created.push(live);
    const reaped = await broker.reap(new Set(['live-plan', 'broker-test']));
    expect(reaped).toContain(leftover);
    expect(reaped).not.toContain(live);
    await expect(broker.inspect(leftover)).rejects.toThrow();
    await expect(broker.remove(leftover)).resolves.toBeUndefined();
  });

  it("creates a step's container unstarted, only through createStep, and finds it by its run key", async () => {
    const run = 'ab'.repeat(16);
    const step = {
      ...base,
      owner: { plan: 'broker-test', step: 'build' },
      workspaceVolume: 'countersign-ws-broker-test',
      command: ['true'],
      step: { run, env: { lower_case: 'kept' } },
    };
    await expect(broker.run(step)).rejects.toThrow(
      "[bad_command] a step's container is created for its runner to start (createStep)",
    );
    await expect(broker.createStep(base)).rejects.toThrow(
      '[bad_command] only a step container is created without being started',
    );
    const { id } = await broker.createStep(step);
    created.push(id);
    expect(await broker.stepContainer(run)).toEqual({ id, running: false });
    expect(await broker.planContainers('broker-test')).toContainEqual({ id, running: false, step: 'build' });
    const info = await broker.inspect(id);
    expect(info.Config.Tty).toBe(true);
    expect(info.Config.Env).toContain('lower_case=kept');
    await broker.remove(id);
    expect(await broker.stepContainer(run)).toBeUndefined();
    await broker.removeWorkspaceVolume('countersign-ws-broker-test');
  });
});
