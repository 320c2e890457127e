/**
 * The README's first command path: `countersign up --example` on a fresh state folder, pairing,
 * approving, then `down` and `up` again: the plan resumes where it stopped, nothing re-runs.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../workers/config.js';
import { unmountWorkspaceDisks } from '../sandbox/workspace-disk.js';
import { readWorkspaceFile, removeDockerLeftovers } from './support/docker.js';
import { freePort } from './support/ports.js';

let home: string;
const startedPlans: string[] = [];
let env: NodeJS.ProcessEnv;
let apiPort: number;

async function cli(...args: string[]): Promise<string> {
  const { stdout, stderr } = await promisify(execFile)(join(PROJECT_ROOT, 'bin', 'countersign'), args, {
    env,
    cwd: PROJECT_ROOT,
    timeout: 240_000,
  });
  return stdout + stderr;
}

async function waitForOutput(args: string[], pattern: RegExp, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    last = await cli(...args).catch((e: { stdout?: string }) => e.stdout ?? '');
    if (pattern.test(last)) return last;
    await sleep(300);
  }
  throw new Error(`"countersign ${args.join(' ')}" never matched ${pattern}; last output:\n${last}`);
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'countersign-up-'));
  apiPort = await freePort();
  env = {
    ...process.env,
    COUNTERSIGN_API_PORT: String(apiPort),
    COUNTERSIGN_HOME: home,
    TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}`,
    COUNTERSIGN_TEMPORAL_UI_PORT: String(await freePort()),
    NO_COLOR: '1',
  };
});
afterAll(async () => {
  await cli('down').catch(() => undefined);
  await removeDockerLeftovers(startedPlans);
  // The executor's workspace file systems first, or rm empties them and fails on their mount points.
  await unmountWorkspaceDisks(home);
  await rm(home, { recursive: true, force: true });
});

describe('countersign up', () => {
  it('brings the stack up, runs the example to its first approval, and survives down/up mid-plan', async () => {
    const up = await cli('up', '--example', 'examples/hello.yaml');
    const code = /countersign pair (\w{4}-\w{4})/.exec(up)?.[1];
    const planId = /Example plan started: (\w+)/.exec(up)?.[1];
    if (planId) startedPlans.push(planId);
    expect(code).toBeDefined();
    expect(planId).toBeDefined();
    expect(up).toContain(`countersign approve ${planId} scaffold`);
    expect(up).toMatch(/Temporal\s+127\.0\.0\.1:\d+/);
    expect(up).toContain('backend: docker');
    expect(up).toMatch(/via worker gate 127\.0\.0\.1:\d+/);

    // The phone's way in: the web app answers, and the pairing link carries the same code.
    const web = `http://127.0.0.1:${apiPort}`;
    expect(up).toMatch(new RegExp(`web app\\s+${web}\\n`));
    expect(up).toContain(`a phone: open ${web}/#/pair?code=${code}`);
    expect(up).toMatch(/[▄▀█]{10}/); // the QR code, drawn in the terminal
    expect(await (await fetch(`${web}/`)).text()).toContain('<title>Countersign</title>');
    expect(await (await fetch(`${web}/api/pairing`)).json()).toMatchObject({
      rootPaired: false,
      pairingOpen: true,
    });

    await cli('pair', code!);
    await cli('approve', planId!, 'scaffold');
    // `up` starts the example before any device is paired: no standing approval can cover its
    // read-only listing, so a person approves that one too.
    await waitForOutput(['plan', 'show', planId!], /look-around .*◆ awaiting approval/);
    await cli('approve', planId!, 'look-around');
    await waitForOutput(['plan', 'show', planId!], /count-lines\s+◆ awaiting approval/);
    await cli('approve', planId!, 'count-lines');

    // The whole stack goes away and comes back on the same SQLite file.
    expect(await cli('down')).toContain('stopped');
    const again = await cli('up');
    expect(again).toContain('Countersign is up');
    expect(again).not.toContain('Pair your first device'); // the registry survived too

    await cli('approve', planId!, 'check-syntax');
    // The approver sees what the tool claims to do, from the catalog's pin.
    const shown = await waitForOutput(['plan', 'show', planId!], /review-source.*◆ awaiting approval/);
    expect(shown).toContain('tool: filesystem/read_text_file with arguments');
    expect(shown).toContain('"path": "/workspace/src/index.js"');
    expect(shown).toContain(
      'the tool says: "Read the complete contents of a file from the file system as text.',
    );
    await cli('approve', planId!, 'review-source');
    await waitForOutput(['plan', 'show', planId!], /write-readme\s+◆ awaiting approval/);
    await cli('approve', planId!, 'docs/write-readme');
    await waitForOutput(['plan', 'show', planId!], /ship-it\s+◆ awaiting approval/);
    await cli('approve', planId!, 'ship-it');
    const done = await waitForOutput(['plan', 'show', planId!], /hello countersign"\s+✓ succeeded/);
    expect(done).toMatch(/scaffold.*✓ succeeded/);
    expect(done).toMatch(/review-source.*✓ succeeded.*answered/);
    // The plan's files are in its workspace volume (the Docker sandbox is the default here).
    const created = await readWorkspaceFile(planId!, 'src/index.js');
    expect(created).toContain('answer = 42');
    const history = await cli('history', planId!);
    expect(history.match(/step finished\s+scaffold/g)).toHaveLength(1); // ran once, across the restart
  }, 300_000); // processes start, stop and start again: minutes on a loaded two-core machine
});
