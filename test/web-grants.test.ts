/**
 * Standing approvals on the phone, in headless Chromium at 390 × 844, against the real API, a real
 * Temporal server and real workers: an agent token issued with a command it may run without
 * asking (its proposal key derived in the browser), that command run by the agent over MCP with
 * nobody asked; a prefix grant drafted on the Grants screen, whose preview shows what it would
 * and would not allow before anything is signed, signed with the phone's key, then revoked.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PlanReport } from '../agent/report.js';
import { registryView } from '../services/devices.js';
import { PROJECT_ROOT } from '../workers/config.js';
import { login, startApi, type ApiUnderTest } from './support/api.js';
import { launchPhone, saveScreenshot, type Phone } from './support/browser.js';
import { joinByInvitation } from './support/join-phone.js';
import { freePort } from './support/ports.js';
import { startTestStack, type TestStack } from './support/stack.js';

let stack: TestStack;
let api: ApiUnderTest;
let phone: Phone;
let url: string;
let page: Page;
let phoneKeyId: string;
const errors: string[] = [];
const testId = (id: string) => page.getByTestId(id);

beforeAll(async () => {
  if (!existsSync(join(PROJECT_ROOT, 'ui', 'dist', 'index.html')))
    throw new Error('the web app is not built: run npm run build:ui (./scripts/setup does it)');
  stack = await startTestStack('web-grants');
  const port = await freePort();
  api = await startApi(stack, { COUNTERSIGN_API_PORT: String(port) });
  await api.app.listen({ host: '127.0.0.1', port });
  url = `http://127.0.0.1:${port}`;
  phone = await launchPhone();
  page = await phone.newPage();
  page.on('pageerror', (e) => errors.push(e.message));
  phoneKeyId = await joinByInvitation(
    page,
    { api, session: await login(api, stack.root), key: stack.root, url },
    'grant phone',
  );
});

afterAll(async () => {
  await phone?.close();
  await api?.close();
  await stack?.close();
});

describe('standing approvals on a phone', () => {
  it('issues an agent token with one command it may run without asking, and the agent runs exactly that', async () => {
    await page.goto(`${url}/#/devices`);
    await testId('agent-name').fill('phone-made agent');
    await testId('agent-allowed').fill('echo made-on-the-phone');
    await saveScreenshot(page, 'grants-01-agent-with-command');
    await testId('issue-agent').click();
    const token = (await testId('agent-token').textContent())!.trim();

    const view = await registryView(stack.client);
    const agent = view.agents?.find((a) => a.name === 'phone-made agent');
    const grant = view.grants?.find(
      (g) => 'agent' in g.record.scope && g.record.scope.agent === agent?.agentId,
    );
    expect(grant?.issuedBy).toBe(phoneKeyId);
    expect(grant?.record.covers).toEqual({
      kind: 'shell',
      command: 'echo made-on-the-phone',
      match: 'exact',
    });

    const client = new Client({ name: 'agent', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${url}/mcp`), {
        requestInit: { headers: { Authorization: `Bearer ${token}` } },
      }),
    );
    try {
      const proposed = (await client.callTool({
        name: 'run_command',
        arguments: { command: 'echo made-on-the-phone' },
      })) as CallToolResult;
      const planId = (proposed.structuredContent as unknown as PlanReport).planId;
      const done = (await client.callTool(
        { name: 'wait_for_plan', arguments: { planId, timeoutSeconds: 20 } },
        undefined,
        { timeout: 30_000 },
      )) as CallToolResult;
      const report = done.structuredContent as unknown as PlanReport;
      // The browser derived the agent's proposal key with WebCrypto: the grant applies only if it matches.
      expect(report).toMatchObject({ status: 'succeeded', awaitingApproval: [] });
      expect(report.steps[0]!.approvedBy).toEqual([
        'standing approval "echo made-on-the-phone" (signed by grant phone)',
      ]);
    } finally {
      await client.close();
    }
  });

  it('drafts a prefix grant, shows what it would and would not allow before signing, signs it, and revokes it', async () => {
    await page.goto(`${url}/#/devices`);
    await testId('grants-link').click();
    await expect.poll(() => page.url()).toContain('#/grants');
    await testId('new-grant').click();
    await testId('grant-command').fill('git status');
    await testId('grant-match-prefix').check();
    await testId('grant-whom').selectOption('agents');
    await testId('grant-days').fill('7');

    const preview = testId('grant-preview');
    await expect
      .poll(() => testId('grant-preview-text').textContent())
      .toContain('commands starting `git status`, for any agent');
    const allowed = await testId('grant-example-allowed').allTextContents();
    const refused = await testId('grant-example-refused').allTextContents();
    expect(allowed.join('\n')).toContain('git status src/app');
    expect(refused.join('\n')).toContain(
      'which the grant does not list (options after a prefix must be listed',
    );
    expect(refused.join('\n')).toContain('git status && rm -rf ~');
    expect(refused.join('\n')).toContain(
      'the command is not plain words: a background job or a chain (&, &&)',
    );
    expect(await testId('grant-warning').allTextContents()).toEqual(
      expect.arrayContaining([
        expect.stringContaining('Every agent token, present and future, can use this grant.'),
      ]),
    );
    await preview.scrollIntoViewIfNeeded();
    await saveScreenshot(page, 'grants-02-preview');

    // A prefix that is a shell of its own is refused before anything can be signed.
    await testId('grant-command').fill('bash');
    await expect
      .poll(() => testId('grant-problem').textContent())
      .toContain('a prefix starting with it would allow any command');
    expect(await testId('grant-sign').isDisabled()).toBe(true);
    await testId('grant-command').fill('git status');

    await testId('grant-sign').click();
    await testId('grant-issued').waitFor();
    const row = page.locator('[data-testid="grant-row"]', { hasText: 'commands starting `git status`' });
    await expect.poll(() => row.getByTestId('grant-state').textContent()).toBe('Active');
    await saveScreenshot(page, 'grants-03-list');
    const issued = (await registryView(stack.client)).grants!.find(
      (g) => g.record.covers.kind === 'shell' && g.record.covers.command === 'git status',
    )!;
    expect(issued).toMatchObject({ issuedBy: phoneKeyId, record: { scope: { agents: 'all' } } });
    const lifetime = Date.parse(issued.record.expiresAt) - Date.parse(issued.record.at);
    expect(Math.round(lifetime / 86_400_000)).toBe(7);

    await row.getByTestId('grant-revoke').click();
    await row.getByTestId('grant-revoke-reason').fill('not any more');
    await row.getByTestId('grant-revoke-confirm').click();
    await expect.poll(() => row.getByTestId('grant-state').textContent()).toBe('Revoked');
    const revoked = (await registryView(stack.client)).grants!.find((g) => g.grantId === issued.grantId);
    expect(revoked?.revoked).toMatchObject({ by: phoneKeyId, reason: 'not any more' });
    expect(errors).toEqual([]);
  });
});
