/**
 * `countersign grants` and `agents issue --grant` as a person types them: the preview before
 * signing (what a grant would and would not allow), the list with uses left, a plan the CLI
 * proposes running on its own grant, revocation, and the messages for a grant that cannot be.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPairing, registryView } from '../services/devices.js';
import { PROJECT_ROOT } from '../workers/config.js';
import { readKeyFile } from '../workers/key-file.js';
import { stepOf, waitForView } from './support/plans.js';
import { startTestStack, type TestStack } from './support/stack.js';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack('cli-grants', { pair: false });
  const policy = await readKeyFile(stack.paths.policyKey);
  const code = (await openPairing(stack.client, policy!.publicKey))!;
  expect((await cli('pair', code, '--name', 'grant laptop')).code).toBe(0);
});
afterAll(async () => stack?.close());

async function cli(...args: string[]): Promise<{ code: number; out: string }> {
  const env = {
    ...process.env,
    COUNTERSIGN_HOME: stack.config.home,
    TEMPORAL_ADDRESS: stack.config.temporalAddress,
    COUNTERSIGN_TEMPORAL_TLS_DIR: stack.config.temporalTlsDir ?? '',
    TEMPORAL_NAMESPACE: stack.config.namespace,
    NO_COLOR: '1',
  };
  try {
    const { stdout, stderr } = await promisify(execFile)(join(PROJECT_ROOT, 'bin', 'countersign'), args, {
      env,
      cwd: PROJECT_ROOT,
    });
    return { code: 0, out: stdout + stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

describe('countersign grants', () => {
  it('shows what a prefix grant would and would not allow, signs it, and a plan this CLI proposes runs on it', async () => {
    const added = await cli(
      'grants',
      'add',
      '--run',
      'echo from-the-cli',
      '--prefix',
      '--mine',
      '--uses',
      '2',
      '--expires',
      '2d',
    );
    expect(added.code, added.out).toBe(0);
    expect(added.out).toContain(
      'allows commands starting `echo from-the-cli`, for plans "grant laptop" proposes, at most 2 times',
    );
    expect(added.out).toMatch(/✓ echo from-the-cli src\/app/);
    expect(added.out).toMatch(/✗ echo from-the-cli --node-options=.* \(it adds the option/);
    expect(added.out).toMatch(
      /✗ echo from-the-cli && rm -rf ~ {2}\(the command is not plain words: a background job or a chain/,
    );
    const grantId = /signed standing approval ([0-9a-f]{16})/.exec(added.out)![1]!;

    const dir = await mkdtemp(join(tmpdir(), 'cli-grants-'));
    const file = join(dir, 'plan.yaml');
    await writeFile(
      file,
      'name: on my grant\nsteps:\n  - { id: hello, run: echo from-the-cli twice, approval: auto }\n',
    );
    const run = await cli('plan', 'run', file);
    expect(run.code, run.out).toBe(0);
    const planId = /plan ([a-z0-9]+) started/.exec(run.out)![1]!;
    const done = await waitForView(stack.client, planId, (v) => stepOf(v, 'hello').status === 'succeeded');
    expect(stepOf(done, 'hello').approvals[0]?.grant?.grantId).toBe(grantId);

    const shown = await cli('plan', 'show', planId);
    expect(shown.out).toContain('approved by standing approval "echo from-the-cli" (signed by grant laptop)');
    const history = await cli('history', planId);
    expect(history.out).toMatch(
      /✓ standing approval\s+hello\s+approved by standing approval "echo from-the-cli"/,
    );

    const listed = await cli('grants');
    expect(listed.out).toContain(grantId);
    expect(listed.out).toContain('active, 1 of 2 uses left');
    const revoked = await cli('grants', 'revoke', grantId, '--reason', 'enough');
    expect(revoked.out).toContain(`revoked standing approval ${grantId}`);
    expect((await cli('grants')).out).toMatch(/revoked .* \(enough\)/);
  });

  it('issues an agent token with an exact command it may run, and says what cannot be a grant', async () => {
    const issued = await cli('agents', 'issue', 'ci agent', '--grant', 'npm test');
    expect(issued.code, issued.out).toBe(0);
    expect(issued.out).toContain('allows `npm test` exactly, for agent "ci agent"');
    const view = await registryView(stack.client);
    const agent = view.agents!.find((a) => a.name === 'ci agent')!;
    expect(
      view.grants!.some((g) => 'agent' in g.record.scope && g.record.scope.agent === agent.agentId),
    ).toBe(true);

    const shell = await cli('grants', 'add', '--run', 'bash', '--prefix', '--all-agents');
    expect(shell.code).toBe(64);
    expect(shell.out).toContain(
      '"bash" runs whatever its arguments say: a prefix starting with it would allow any command',
    );
    const syntax = await cli('agents', 'issue', 'bad agent', '--grant-prefix', 'git status; id');
    expect(syntax.out).toContain(
      'a prefix is plain words only, and this one is not: a command separator (;)',
    );
    expect((await registryView(stack.client)).agents!.some((a) => a.name === 'bad agent')).toBe(false);
    const nobody = await cli('grants', 'add', '--run', 'npm test');
    expect(nobody.out).toContain('say whose plans the grant is for, once');
  });
});
