/**
 * The web app end to end, in headless Chromium at a phone's 390 × 844, against the real API, a
 * real Temporal server and real workers (jail backend): pair a phone as the root device, submit a
 * plan, approve from the inbox (the signature made by the browser's non-extractable key), watch
 * the step run live, approve an MCP call after reading its pinned description, deny a step,
 * read the history with the approver and the signatures verified, introduce a second phone, and
 * revoke it so its next approval is refused. Screenshots of the main screens go to
 * test-artifacts/screenshots/.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PlanDetail } from '../api/types.js';
import { toBase64 } from '../core/bytes.js';
import { fingerprintOf, generateKeyPair } from '../core/keys.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { agentOfToken } from '../services/agents.js';
import { openPairing, registryView } from '../services/devices.js';
import { planView, submitPlan } from '../services/plans.js';
import { PROJECT_ROOT } from '../workers/config.js';
import { readKeyFile } from '../workers/key-file.js';
import { startApi, type ApiUnderTest } from './support/api.js';
import { launchPhone, saveScreenshot, type Phone } from './support/browser.js';
import { addFixtureServers } from './support/mcp.js';
import { waitForStep } from './support/plans.js';
import { freePort } from './support/ports.js';
import { startTestStack, type TestStack } from './support/stack.js';

const PLAN = `name: phone e2e
steps:
  - id: build
    run: for i in 1 2 3 4 5 6; do echo line $i; sleep 0.5; done
  - id: echo
    mcp: { server: fixture, tool: echo, arguments: { text: hello from the phone } }
  - id: ship
    run: echo shipped
`;

let stack: TestStack;
let api: ApiUnderTest;
let phone: Phone;
let url: string;
let code: string;
let workflowId: string;

const testId = (page: Page, id: string) => page.getByTestId(id);

/** `joining` asks with an invitation from `introducer`; both show the same fingerprint; the introducer confirms. */
async function joinThrough(
  introducer: Page,
  joining: Page,
  name: string,
  screenshot?: string,
): Promise<void> {
  await introducer.goto(`${url}/#/devices`);
  await introducer.reload(); // a fresh Devices screen, without the last invitation's card
  await testId(introducer, 'introduce-button').click();
  const invite = (await testId(introducer, 'invite-code').textContent())!.trim();
  await joining.goto(`${url}/#/join?invite=${invite}`);
  await testId(joining, 'device-name-input').fill(name);
  await testId(joining, 'join-submit').click();
  const fingerprint = (await testId(joining, 'device-fingerprint').textContent())!.trim();
  const request = testId(introducer, 'pairing-request');
  await expect.poll(() => request.textContent(), { timeout: 10_000 }).toContain(fingerprint);
  if (screenshot) await saveScreenshot(introducer, screenshot);
  await testId(introducer, 'confirm-request').click();
  await testId(introducer, 'request-introduced').waitFor();
  await testId(joining, 'tab-inbox').waitFor({ timeout: 15_000 });
}

beforeAll(async () => {
  if (!existsSync(join(PROJECT_ROOT, 'ui', 'dist', 'index.html')))
    throw new Error('the web app is not built: run npm run build:ui (./scripts/setup does it)');
  stack = await startTestStack('web-app', { pair: false });
  await addFixtureServers(stack.config, 'jail');
  const policy = await readKeyFile(stack.paths.policyKey);
  code = (await openPairing(stack.client, policy!.publicKey))!;
  const port = await freePort();
  api = await startApi(stack, { COUNTERSIGN_API_PORT: String(port) });
  await api.app.listen({ host: '127.0.0.1', port });
  url = `http://127.0.0.1:${port}`;
  phone = await launchPhone();
});

afterAll(async () => {
  await phone?.close();
  await api?.close();
  await stack?.close();
});

describe('the web app on a phone', () => {
  let first: Page;

  it('pairs as the root device with the code from `up`', async () => {
    first = await phone.newPage();
    const errors: string[] = [];
    first.on('pageerror', (e) => errors.push(e.message));
    await first.goto(`${url}/#/pair?code=${code}`);
    await expect.poll(() => testId(first, 'pair-code-input').inputValue()).toBe(code);
    await testId(first, 'device-name-input').fill('first phone');
    await saveScreenshot(first, '01-pairing');
    await testId(first, 'pair-submit').click();
    await testId(first, 'tab-inbox').waitFor();
    await testId(first, 'state-empty').waitFor();
    await saveScreenshot(first, '02-inbox-empty');
    const registry = await registryView(stack.client);
    expect(registry.devices).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: 'first phone', role: 'root' })]),
    );
    expect(errors).toEqual([]);
  });

  it('submits a plan and approves its first step from the inbox', async () => {
    await testId(first, 'tab-plans').click();
    await testId(first, 'new-plan').click();
    await testId(first, 'plan-yaml').fill(PLAN);
    await testId(first, 'submit-plan').click();
    await expect.poll(() => first.url()).toMatch(/#\/plans\/plan-/);
    workflowId = decodeURIComponent(/#\/plans\/([^/?]+)/.exec(first.url())![1]!);
    await testId(first, 'tab-inbox').click();
    const item = testId(first, 'inbox-item').filter({ hasText: 'build' });
    await item.waitFor();
    await expect.poll(() => testId(first, 'badge-inbox').textContent()).toBe('1');
    await saveScreenshot(first, '03-inbox');
    await item.click();
    await testId(first, 'digest-verified').waitFor();
    expect(await testId(first, 'run-command').textContent()).toContain('echo line $i');
    expect(await testId(first, 'run-cwd').textContent()).toBe('.');
    const view = await planView(stack.client, workflowId);
    const shownDigest = (await testId(first, 'step-digest').textContent())!.replace(/\s/g, '');
    expect(shownDigest).toBe(view.steps.find((s) => s.path === 'build')!.digest);
    await saveScreenshot(first, '04-approval-detail');
    await testId(first, 'approve-button').click();
    await expect.poll(() => testId(first, 'decision-result').getAttribute('data-outcome')).toBe('applied');
    const approved = (await planView(stack.client, workflowId)).steps.find((s) => s.path === 'build')!;
    expect(approved.approvals[0]).toMatchObject({
      deviceName: 'first phone',
      decision: 'approve',
      auto: false,
    });
  });

  it('shows the step running with its output, then finished, live', async () => {
    await first.goto(`${url}/#/plans/${workflowId}`);
    const chip = testId(first, 'step-build').getByTestId('step-status-build');
    await expect.poll(() => chip.getAttribute('data-status'), { timeout: 15_000 }).toBe('running');
    await expect
      .poll(() => testId(first, 'step-output-build').textContent(), { timeout: 15_000 })
      .toContain('line 2');
    await saveScreenshot(first, '05-plan-running');
    await expect.poll(() => chip.getAttribute('data-status'), { timeout: 20_000 }).toBe('succeeded');
    expect(await testId(first, 'step-output-build').textContent()).toContain('line 6');
  });

  it('approves an MCP call after showing its tool, arguments and pinned description', async () => {
    await testId(first, 'tab-inbox').click();
    await testId(first, 'inbox-item').filter({ hasText: 'echo' }).click();
    await testId(first, 'digest-verified').waitFor();
    expect(await testId(first, 'mcp-tool').textContent()).toContain('fixture / echo');
    expect(await testId(first, 'mcp-arguments').textContent()).toContain('hello from the phone');
    const pin = (await planView(stack.client, workflowId)).steps.find((s) => s.path === 'echo')!.mcpPin!;
    expect(await testId(first, 'mcp-description').textContent()).toContain(pin.description.slice(0, 20));
    await saveScreenshot(first, '06-approval-mcp');
    await testId(first, 'approve-button').click();
    await expect.poll(() => testId(first, 'decision-result').getAttribute('data-outcome')).toBe('applied');
    await waitForStep(stack.client, workflowId, 'echo', 'succeeded');
  });

  it('denies a step with a reason', async () => {
    await testId(first, 'tab-inbox').click();
    await testId(first, 'inbox-item').filter({ hasText: 'ship' }).click();
    await testId(first, 'deny-button').click();
    await testId(first, 'deny-reason').fill('not today');
    await testId(first, 'deny-confirm').click();
    await expect.poll(() => testId(first, 'decision-result').getAttribute('data-outcome')).toBe('applied');
    const view = await waitForStep(stack.client, workflowId, 'ship', 'denied');
    expect(view.steps.find((s) => s.path === 'ship')!.approvals[0]).toMatchObject({ reason: 'not today' });
  });

  it('reads the history: each approver named, every signature verified again', async () => {
    await first.goto(`${url}/#/plans/${workflowId}/history`);
    await testId(first, 'history-entry').first().waitFor();
    const signatures = testId(first, 'history-signature');
    await expect.poll(() => signatures.count()).toBe(3);
    for (const verified of await signatures.evaluateAll((els) =>
      els.map((e) => e.getAttribute('data-verified')),
    ))
      expect(verified).toBe('true');
    const text = await first.locator('main').textContent();
    expect(text).toContain('first phone');
    expect(text).toContain('not today');
    await saveScreenshot(first, '07-history');
  });

  it('shows what it already loaded when the phone goes offline, and says it is offline', async () => {
    const historyUrl = `${url}/#/plans/${workflowId}/history`;
    await first.evaluate('navigator.serviceWorker.ready');
    await first.reload(); // loaded once under the service worker, so it keeps the answers
    await testId(first, 'history-entry').first().waitFor();
    await first.context().setOffline(true);
    try {
      await first.goto(historyUrl);
      await testId(first, 'offline-banner').waitFor();
      await expect.poll(() => testId(first, 'history-signature').count()).toBe(3);
      await saveScreenshot(first, '07b-history-offline');
    } finally {
      await first.context().setOffline(false);
    }
  });

  let second: Page;

  it('introduces a second phone: same fingerprint on both screens, signed by the first', async () => {
    second = await phone.newPage();
    await joinThrough(first, second, 'second phone', '08-devices-introduce');
  });

  it('revokes the second phone; its next approval is refused and the step still waits', async () => {
    const later = await submitPlan(
      stack.client,
      { name: 'after revocation', steps: [{ id: 'later', run: 'true' }] },
      { proposer: 'test' },
    );
    await waitForStep(stack.client, later.planId, 'later', 'awaiting_approval');
    await second.goto(`${url}/#/approve/${later.workflowId}/later`);
    await testId(second, 'digest-verified').waitFor();

    await testId(first, 'tab-devices').click();
    const row = testId(first, 'device-row').filter({ hasText: 'second phone' });
    await row.getByTestId('revoke-button').click();
    await row.getByTestId('revoke-reason').fill('lost in a taxi');
    await row.getByTestId('revoke-confirm').click();
    await row.getByTestId('device-revoked').waitFor();
    await saveScreenshot(first, '09-devices-revoked');

    await testId(second, 'approve-button').click();
    await testId(second, 'revoked').or(testId(second, 'decision-result')).first().waitFor();
    const shown = await second.locator('body').textContent();
    expect(shown).toMatch(/revoked/i);
    await saveScreenshot(second, '10-revoked-device');
    expect((await planView(stack.client, later.planId)).steps[0]!.status).toBe('awaiting_approval');
  });

  let attacked: Page;

  it("refuses to sign what a lying server shows: a changed command, or another plan's step under this plan's name", async () => {
    const shown = await submitPlan(
      stack.client,
      { name: 'shown', steps: [{ id: 'tidy', run: 'echo tidy' }] },
      { proposer: 'test' },
    );
    const hidden = await submitPlan(
      stack.client,
      { name: 'hidden', steps: [{ id: 'tidy', run: 'rm -rf /workspace/*' }] },
      { proposer: 'test' },
    );
    await waitForStep(stack.client, shown.planId, 'tidy', 'awaiting_approval');
    await waitForStep(stack.client, hidden.planId, 'tidy', 'awaiting_approval');
    // The attacker is the server: every answer about the plan is rewritten, and no live update
    // corrects it. This phone runs without the service worker, whose own fetches the browser's
    // interception would miss.
    attacked = await (await phone.newContext({ serviceWorkers: 'block' })).newPage();
    await joinThrough(first, attacked, 'attacked phone');
    await attacked.route('**/api/events**', (route) => route.abort());

    await attacked.route(`**/api/plans/${shown.workflowId}`, async (route) => {
      const response = await route.fetch();
      const body = (await response.json()) as PlanDetail;
      body.tree.view.steps[0]!.node = { ...body.tree.view.steps[0]!.node, run: 'echo harmless' } as never;
      await route.fulfill({ response, json: body });
    });
    await attacked.goto(`${url}/#/approve/${shown.workflowId}/tidy`);
    await testId(attacked, 'digest-mismatch').waitFor();
    expect(await testId(attacked, 'approve-button').isDisabled()).toBe(true);
    await attacked.unroute(`**/api/plans/${shown.workflowId}`);

    await attacked.route(`**/api/plans/${shown.workflowId}`, async (route) => {
      const response = await attacked.request.get(`${url}/api/plans/${hidden.workflowId}`);
      const body = (await response.json()) as PlanDetail;
      body.tree.view.name = 'shown'; // relabelled: the digest of the hidden step is genuine
      await route.fulfill({ response, json: body });
    });
    await attacked.reload();
    await testId(attacked, 'digest-mismatch').waitFor();
    expect(await testId(attacked, 'digest-mismatch').textContent()).toContain('not of the plan you opened');
    expect(await testId(attacked, 'approve-button').isDisabled()).toBe(true);
    await attacked.unroute(`**/api/plans/${shown.workflowId}`);
    await attacked.unroute('**/api/events**');
    for (const plan of [shown, hidden])
      expect((await planView(stack.client, plan.planId)).steps[0]!.approvals).toEqual([]);
  });

  it('shows the fingerprint of the key it will sign, not the one the server names', async () => {
    await testId(attacked, 'tab-devices').click();
    await testId(attacked, 'introduce-button').click();
    const invite = (await testId(attacked, 'invite-code').textContent())!.trim();
    const attacker = generateKeyPair();
    // The server pairs its own key with the joining phone's key id (and so its fingerprint).
    await attacked.route('**/api/devices/invitations/*', async (route) => {
      const response = await route.fetch();
      const body = (await response.json()) as { requests: { publicKey: string }[] };
      for (const request of body.requests) request.publicKey = toBase64(attacker.publicKey);
      await route.fulfill({ response, json: body });
    });
    const third = await phone.newPage();
    await third.goto(`${url}/#/join?invite=${invite}`);
    await testId(third, 'device-name-input').fill('third phone');
    await testId(third, 'join-submit').click();
    const real = (await testId(third, 'device-fingerprint').textContent())!.trim();
    const request = testId(attacked, 'pairing-request');
    await expect
      .poll(() => request.textContent(), { timeout: 10_000 })
      .toContain(fingerprintOf(attacker.keyId));
    expect(await request.textContent()).not.toContain(real);
    await attacked.unroute('**/api/devices/invitations/*');
  });

  it('issues an agent token on the phone (secret made there, shown once) that an MCP client can use, then revokes it', async () => {
    await first.goto(`${url}/#/devices`);
    await first.reload();
    await testId(first, 'agent-name').fill('claude on the laptop');
    await testId(first, 'issue-agent').click();
    const token = (await testId(first, 'agent-token').textContent())!.trim();
    expect(token).toMatch(/^csa_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    await saveScreenshot(first, '11-agent-token');
    const agent = agentOfToken(await registryView(stack.client), token);
    expect(agent).toMatchObject({
      name: 'claude on the laptop',
      issuedBy: (await registryView(stack.client)).rootKeyId,
    });
    const mcp = new Client({ name: 'e2e agent', version: '1.0.0' });
    await mcp.connect(
      new StreamableHTTPClientTransport(new URL(`${url}/mcp`), {
        requestInit: { headers: { Authorization: `Bearer ${token}` } },
      }),
    );
    expect((await mcp.listTools()).tools.map((t) => t.name)).toContain('run_command');
    await mcp.close();

    await testId(first, 'agent-row')
      .filter({ hasText: 'claude on the laptop' })
      .getByTestId('revoke-agent')
      .click();
    await testId(first, 'agent-revoked').waitFor();
    const after = await registryView(stack.client);
    expect(() => agentOfToken(after, token)).toThrow(/revoked/);
  });
});
