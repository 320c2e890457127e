/**
 * The jail holds (issue 15): plan steps attack the host from inside the bubblewrap jail, through
 * the whole product (plan → signed approval → executor → runner → jail), and the test judges
 * from the host what they could do. The executor runs as root here, as it does on this machine.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxRefused } from '../sandbox/backend.js';
import { createJailBackend } from '../sandbox/jail/jail-backend.js';
import { JAIL_USER, jailUser } from '../sandbox/jail/launch.js';
import { runApproved, stepOf } from './support/plans.js';
import { startTestStack, type TestStack } from './support/stack.js';

let stack: TestStack;
let hostDir: string;
let jailUid: number;

beforeAll(async () => {
  stack = await startTestStack('jail-isolation', { backend: 'jail' });
  hostDir = await mkdtemp(join(tmpdir(), 'countersign-host-'));
  const user = await jailUser();
  if (!user) throw new Error(`the user ${JAIL_USER} is missing: run scripts/setup`);
  jailUid = user.uid;
}, 60_000);
afterAll(async () => {
  await stack?.close();
  if (hostDir) await rm(hostDir, { recursive: true, force: true });
});

const run = (name: string, steps: Record<string, unknown>[], extra: Record<string, unknown> = {}) =>
  runApproved(stack.client, stack.root, { name, steps, ...extra });

const output = (view: Awaited<ReturnType<typeof run>>, path: string) =>
  (stepOf(view, path).result?.outputTail ?? '').replace(/\r/g, '');

/** Host processes whose command line contains `marker` (other than this test's own). */
function hostProcessesWith(marker: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(marker)) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

describe('the jail is never host root', () => {
  it('maps the step to the unprivileged jail user on the host, with seccomp and read-only kernel knobs', async () => {
    const view = await run('not-root', [
      {
        id: 'probe',
        run: [
          'id -u',
          'touch made-by-step',
          // Opened for writing, nothing written: a live kernel setting is never changed.
          'for knob in vm/stat_interval kernel/core_pattern vm/overcommit_memory; do (true >> /proc/sys/$knob) 2>/dev/null && echo "SYSCTL $knob writable" || echo "SYSCTL $knob denied"; done',
          'grep -E "^(Seccomp|NoNewPrivs|CapEff|CapBnd):" /proc/self/status',
          'unshare -r true 2>/dev/null && echo USERNS:allowed || echo USERNS:denied',
          'unshare -U true 2>/dev/null && echo USERNS-PLAIN:allowed || echo USERNS-PLAIN:denied',
          'mkdir -p m && (mount -t tmpfs none m) 2>/dev/null && echo MOUNT:allowed || echo MOUNT:denied',
          'unshare -rm sh -c "mount -t tmpfs none /tmp && echo NESTED-MOUNT:allowed" 2>/dev/null || echo NESTED-MOUNT:denied',
          'cat /proc/sys/user/max_user_namespaces',
        ].join('; '),
      },
    ]);
    const probe = stepOf(view, 'probe');
    expect(probe.status).toBe('succeeded');
    const said = output(view, 'probe');
    expect(said).toMatch(/^1000$/m);
    // What the host sees: the file the step made belongs to the jail user, not to root.
    const made = statSync(join(stack.paths.workspaces, view.workspaceId, 'made-by-step'));
    expect(made.uid).toBe(jailUid);
    expect(made.uid).not.toBe(0);
    expect(said).not.toMatch(/SYSCTL \S+ writable/);
    expect(said).toContain('SYSCTL vm/stat_interval denied');
    expect(said).toContain('SYSCTL kernel/core_pattern denied');
    expect(said).toMatch(/^Seccomp:\s+2$/m);
    expect(said).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(said).toMatch(/^CapEff:\s+0+$/m);
    expect(said).toContain('USERNS:denied');
    expect(said).toContain('USERNS-PLAIN:denied');
    expect(said).toContain('MOUNT:denied');
    expect(said).toContain('NESTED-MOUNT:denied');
  });

  it('refuses to start a step it cannot limit, saying which limit and why', async () => {
    const notACgroup = await mkdtemp(join(tmpdir(), 'countersign-not-a-cgroup-'));
    try {
      const backend = createJailBackend({
        workspacesDir: join(notACgroup, 'workspaces'),
        env: { COUNTERSIGN_JAIL_CGROUP: notACgroup },
      });
      const refusal = backend.prepareWorkspace('plan-x', '.', { egress: false });
      await expect(refusal).rejects.toBeInstanceOf(SandboxRefused);
      await expect(refusal).rejects.toThrow(
        /the jail cannot limit a step's memory and number of processes .*COUNTERSIGN_JAIL_CGROUP=.* is not a cgroup v2 directory with the memory and pids controllers/,
      );
    } finally {
      await rm(notACgroup, { recursive: true, force: true });
    }
  });
});

describe("the executor never follows a step's symlink on the host", () => {
  it('makes and enters a symlinked cwd inside the jail, not on the host', async () => {
    const target = join(hostDir, 'cwd-target');
    await mkdir(target);
    const view = await run('symlinked-cwd', [
      { id: 'plant', run: `ln -s ${target} evil && echo planted` },
      { id: 'use', run: 'pwd; touch here', cwd: 'evil/x' },
    ]);
    expect(stepOf(view, 'plant').status).toBe('succeeded');
    // Inside the jail the link points into the jail's own /tmp: whatever happens there, the host is untouched.
    expect(existsSync(join(target, 'x'))).toBe(false);
    expect(readdirSync(target)).toEqual([]);
  });

  it("removes a workspace's symlinks, never what they point at, when the plan keeps no files", async () => {
    const outside = join(hostDir, 'outside');
    await mkdir(outside);
    await writeFile(join(outside, 'precious'), 'keep me');
    const view = await run(
      'links-at-release',
      [
        {
          id: 'plant',
          run: `ln -s ${outside} dir-link; ln -s ${outside}/precious file-link; mkdir d; ln -s ${outside} d/deep`,
        },
      ],
      { keepWorkspace: false },
    );
    expect(stepOf(view, 'plant').status).toBe('succeeded');
    const workspace = join(stack.paths.workspaces, view.workspaceId);
    const deadline = Date.now() + 10_000;
    while (existsSync(workspace) && Date.now() < deadline) await sleep(100);
    expect(existsSync(workspace)).toBe(false);
    expect(readFileSync(join(outside, 'precious'), 'utf8')).toBe('keep me');
  });
});

describe('limits in the jail', () => {
  it('stops a memory hog at 512 MiB and says so', async () => {
    const view = await run('memory-hog', [
      { id: 'hog', run: `node -e "const a=[];for(;;)a.push(Buffer.alloc(1<<20,1))"` },
    ]);
    const hog = stepOf(view, 'hog');
    expect(hog.status).toBe('failed');
    expect(hog.error).toMatch(
      /stopped by the jail's limits: the out-of-memory killer stopped \d+ of its processes at its memory limit of 512 MiB/,
    );
  });

  it('stops a fork storm at 256 processes and says so', async () => {
    const view = await run('fork-storm', [
      {
        id: 'storm',
        run: 'i=0; while [ $i -lt 1000 ]; do sleep 60 & i=$((i+1)); done; echo all-started',
        timeout: '1m',
      },
    ]);
    const storm = stepOf(view, 'storm');
    expect(storm.status).toBe('failed');
    expect(output(view, 'storm')).not.toContain('all-started');
    expect(storm.error).toMatch(/stopped by the jail's limits: it reached its limit of 256 processes/);
    expect(storm.result!.durationMs).toBeLessThan(30_000);
  });

  it('caps /tmp at 64 MiB', async () => {
    const view = await run('tmp-flood', [
      { id: 'flood', run: 'dd if=/dev/zero of=/tmp/flood bs=1M count=300 2>&1; du -m /tmp/flood' },
    ]);
    const said = output(view, 'flood');
    expect(said).toContain('No space left on device');
    const megabytes = Number(/^(\d+)\s+\/tmp\/flood$/m.exec(said)?.[1]);
    expect(megabytes).toBeLessThanOrEqual(64);
  });
});

describe("a step's processes end with it", () => {
  it('leaves no setsid daemon behind when the step ends', async () => {
    const marker = `daemon-${Date.now().toString(36)}`;
    const view = await run('daemon', [
      {
        id: 'spawn',
        run: `setsid sh -c 'while :; do echo ${marker} >> daemon.log; sleep 0.1; done' </dev/null >/dev/null 2>&1 & sleep 0.5; echo spawned`,
      },
    ]);
    expect(stepOf(view, 'spawn').status).toBe('succeeded');
    const log = join(stack.paths.workspaces, view.workspaceId, 'daemon.log');
    // The step is reported ended only once nothing of it runs: no grace needed.
    expect(hostProcessesWith(marker)).toEqual([]);
    const before = readFileSync(log, 'utf8').length;
    await sleep(600);
    expect(readFileSync(log, 'utf8').length).toBe(before);
  });

  it('stops a SIGTERM-ignoring step and its setsid child at the time limit, and reports it only then', async () => {
    const marker = `stubborn-${Date.now().toString(36)}`;
    const view = await run('stubborn', [
      {
        id: 'stubborn',
        run: `trap "" TERM; setsid sh -c 'trap "" TERM; while :; do echo ${marker} >> ticks; sleep 0.1; done' </dev/null >/dev/null 2>&1 & while :; do sleep 1; done`,
        timeout: '2s',
      },
    ]);
    const step = stepOf(view, 'stubborn');
    expect(step.status).toBe('failed');
    expect(step.result!.timedOut).toBe(true);
    expect(hostProcessesWith(marker)).toEqual([]);
    const ticks = join(stack.paths.workspaces, view.workspaceId, 'ticks');
    const before = readFileSync(ticks, 'utf8').length;
    await sleep(600);
    expect(readFileSync(ticks, 'utf8').length).toBe(before);
  });

  it('leaves no cgroup of its steps behind', () => {
    for (const base of ['/sys/fs/cgroup/memory/countersign', '/sys/fs/cgroup/pids/countersign']) {
      if (!existsSync(base)) continue;
      // Other suites may be running steps right now: only those of this stack's runs would show.
      const runs = readdirSync(stack.paths.runs);
      const left = readdirSync(base).filter((name) => runs.some((key) => name === `step-${key}`));
      expect(left).toEqual([]);
    }
  });
});
