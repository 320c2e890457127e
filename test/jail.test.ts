/**
 * The jail from the attacker's side: a plan step probes its own sandbox and the test reads the
 * verdicts from the step's output. Nothing here trusts the jail's configuration; only what the
 * step could actually do counts.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decide, planView, submitPlan } from '../services/plans.js';
import { submitGranted } from './support/grants.js';
import { startTestStack, type TestStack } from './support/stack.js';
import { waitForStep } from './support/plans.js';

let stack: TestStack;
beforeAll(async () => {
  process.env.COUNTERSIGN_CANARY_SECRET = 'host-secret-value';
  stack = await startTestStack('jail');
});
afterAll(async () => stack?.close());

async function runProbe(script: string): Promise<string> {
  const { planId, workflowId } = await submitPlan(
    stack.client,
    { name: 'probe', steps: [{ id: 'probe', run: script }] },
    { proposer: 'attacker' },
  );
  await waitForStep(stack.client, planId, 'probe', 'awaiting_approval');
  await decide(stack.client, stack.root, planId, 'probe', { decision: 'approve' });
  await stack.client.workflow
    .getHandle(workflowId)
    .result()
    .catch(() => undefined);
  const step = (await planView(stack.client, planId)).steps[0]!;
  return step.result!.outputTail.replace(/\r/g, '');
}

describe('the bubblewrap jail', () => {
  it('cannot reach the Temporal frontend or any host port, and has no network but loopback', async () => {
    const [, port] = stack.config.temporalAddress.split(':');
    const output = await runProbe(
      [
        `node -e "const s=require('net').connect(${port},'127.0.0.1');s.on('connect',()=>{console.log('TEMPORAL:open');process.exit()});s.on('error',e=>{console.log('TEMPORAL:'+e.code);process.exit()})"`,
        `node -e "console.log('IFACES:'+Object.keys(require('os').networkInterfaces()).join(','))"`,
        `node -e "require('dns').lookup('example.com',e=>{console.log('DNS:'+(e?e.code:'resolved'))})"`,
      ].join('; '),
    );
    expect(output).toContain('TEMPORAL:ECONNREFUSED');
    expect(output).toContain('IFACES:lo');
    expect(output).not.toMatch(/IFACES:.*(eth|ens|veth|docker)/);
    expect(output).not.toContain('DNS:resolved');
  });

  it('refuses a plan that asks for egress (it has no egress-only network) and starts nothing', async () => {
    // Granted (network included), so nothing but the jail stands between the step and running.
    const { planId, workflowId } = await submitGranted(stack.client, stack.root, {
      name: 'wants-egress',
      egress: true,
      steps: [{ id: 'fetch', run: 'echo started > marker', approval: 'auto' }],
    });
    await expect(stack.client.workflow.getHandle(workflowId).result()).rejects.toThrow();
    const step = (await planView(stack.client, planId)).steps[0]!;
    expect(step.status).toBe('failed');
    expect(step.error).toMatch(/egress.*bubblewrap jail has no egress-only network/);
    expect(existsSync(join(stack.paths.workspaces, planId, 'marker'))).toBe(false);
  });

  it('runs as an unprivileged user with no capabilities and no host environment', async () => {
    const output = await runProbe('id -u; grep CapEff /proc/self/status; env | sort; echo ENVEND');
    expect(output).toMatch(/^1000$/m);
    expect(output).toMatch(/CapEff:\s+0000000000000000/);
    expect(output).not.toContain('host-secret-value');
    expect(output).not.toContain('TEMPORAL_ADDRESS');
    expect(output).not.toContain('COUNTERSIGN_HOME');
  });

  it('can write only inside its workspace', async () => {
    const output = await runProbe(
      [
        'touch /usr/evil && echo USR:writable || echo USR:denied',
        'touch /etc/evil 2>/dev/null && echo ETC:writable || echo ETC:denied',
        `ls ${stack.config.home} >/dev/null 2>&1 && echo HOME:visible || echo HOME:hidden`,
        'touch ./mine && echo WS:writable',
      ].join('; '),
    );
    expect(output).toContain('USR:denied');
    expect(output).toContain('ETC:denied');
    expect(output).toContain('HOME:hidden');
    expect(output).toContain('WS:writable');
  });

  it('cannot see the executor or other processes on the host', async () => {
    const output = await runProbe('ls /proc | grep -c "^[0-9]"; cat /proc/1/cmdline | tr "\\0" " "; echo');
    const count = Number(output.trim().split('\n')[0]);
    expect(count).toBeLessThan(5); // its own pid namespace: the shell and its children only
    expect(output).not.toContain('executor');
  });
});
