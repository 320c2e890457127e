/**
 * `countersign join`: with a phone as the root device, the CLI joins through an invitation. It
 * shows its fingerprint, waits for the inviting device to sign the introduction, keeps its key
 * only then, and can approve from that moment. An expired or unknown code keeps nothing.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PAYLOAD_TYPES, signEnvelope } from '../core/approval/dsse.js';
import { deviceRecordBytes } from '../core/approval/payload.js';
import { fingerprintOf } from '../core/keys.js';
import { submitPlan } from '../services/plans.js';
import { PROJECT_ROOT } from '../workers/config.js';
import { login, startApi, type ApiUnderTest, type DeviceSession } from './support/api.js';
import { waitForStep } from './support/plans.js';
import { freePort } from './support/ports.js';
import { startTestStack, type TestStack } from './support/stack.js';

let stack: TestStack;
let api: ApiUnderTest;
let url: string;
let root: DeviceSession;

beforeAll(async () => {
  stack = await startTestStack('cli-join');
  const port = await freePort();
  api = await startApi(stack, { COUNTERSIGN_API_PORT: String(port) });
  await api.app.listen({ host: '127.0.0.1', port });
  url = `http://127.0.0.1:${port}`;
  root = await login(api, stack.root);
});
afterAll(async () => {
  await api?.close();
  await stack?.close();
});

/** Runs the CLI in its own state folder (a second machine), collecting its output as it comes. */
function startCli(home: string, ...args: string[]) {
  const child = spawn(join(PROJECT_ROOT, 'bin', 'countersign'), args, {
    cwd: PROJECT_ROOT,
    env: {
      ...process.env,
      COUNTERSIGN_HOME: home,
      TEMPORAL_ADDRESS: stack.config.temporalAddress,
      COUNTERSIGN_TEMPORAL_TLS_DIR: stack.config.temporalTlsDir ?? '',
      TEMPORAL_NAMESPACE: stack.config.namespace,
      NO_COLOR: '1',
    },
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? -1)));
  return { output: () => out, exited };
}

describe('countersign join', () => {
  it('joins after the inviting device confirms the fingerprint, then approves', async () => {
    const invitation = await api.app.inject({
      method: 'POST',
      url: '/api/devices/invitations',
      headers: root.writeHeaders,
    });
    const { code } = invitation.json<{ code: string }>();
    const home = join(stack.config.home, 'second-machine');
    const cli = startCli(home, 'join', code, '--name', 'build box', '--api', url);
    await expect.poll(() => cli.output(), { timeout: 20_000 }).toContain('fingerprint');
    const keyFile = join(home, 'cli', 'device-key.json');
    expect(existsSync(keyFile)).toBe(false); // nothing kept before the introduction

    const listed = await api.app.inject({
      url: `/api/devices/invitations/${code}`,
      headers: { cookie: root.cookie },
    });
    const [request] = listed.json<{ requests: { publicKey: string; keyId: string; name: string }[] }>()
      .requests;
    expect(request!.name).toBe('build box');
    expect(cli.output()).toContain(fingerprintOf(request!.keyId));
    const record = {
      type: 'introduce' as const,
      publicKey: request!.publicKey,
      name: request!.name,
      role: 'approver' as const,
      at: new Date().toISOString(),
    };
    const introduced = await api.app.inject({
      method: 'POST',
      url: '/api/devices/records',
      headers: root.writeHeaders,
      payload: {
        record: signEnvelope(
          PAYLOAD_TYPES.device,
          deviceRecordBytes(record),
          stack.root.secretKey,
          stack.root.keyId,
        ),
      },
    });
    expect(introduced.statusCode, introduced.body).toBe(200);

    expect(await cli.exited).toBe(0);
    expect(cli.output()).toContain('joined build box');
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);

    const { planId } = await submitPlan(
      stack.client,
      { name: 'joined', steps: [{ id: 'hi', run: 'true' }] },
      { proposer: 'test' },
    );
    await waitForStep(stack.client, planId, 'hi', 'awaiting_approval');
    const approve = startCli(home, 'approve', planId, 'hi');
    expect(await approve.exited, approve.output()).toBe(0);
    const view = await waitForStep(stack.client, planId, 'hi', 'succeeded');
    expect(view.steps[0]!.approvals[0]).toMatchObject({ deviceName: 'build box' });
  });

  it('refuses an unknown code and keeps no key', async () => {
    const home = join(stack.config.home, 'third-machine');
    const cli = startCli(home, 'join', 'ZZZZ-ZZZZ', '--api', url);
    expect(await cli.exited).toBe(1);
    expect(cli.output()).toContain('join refused: no open invitation has this code');
    expect(existsSync(join(home, 'cli', 'device-key.json'))).toBe(false);
  });
});
