/**
 * Time to first byte and to interactive of the web app's main screens, in headless Chromium at
 * 390 × 844. The browser joins as a device the way a phone does (invitation, the root confirms)
 * so every screen loads with a real session and real data: an awaiting gate, a finished plan.
 * "Interactive" is the screen's content rendered from its data (its marker element in the DOM,
 * seen by a MutationObserver in the page), measured from the start of navigation.
 */
import { PAYLOAD_TYPES, signEnvelope } from '../core/approval/dsse.js';
import { deviceRecordBytes } from '../core/approval/payload.js';
import { planView } from '../services/plans.js';
import { signDecision } from '../test/support/api.js';
import type { Phone } from '../test/support/browser.js';
import { apiPost, type HttpSession } from './http.js';
import { until, type BenchStack } from './harness.js';

export interface ScreenTimes {
  name: string;
  ttfb: number[];
  tti: number[];
}

async function joinAsDevice(stack: BenchStack, session: HttpSession, phone: Phone) {
  const context = await phone.newContext();
  const page = await context.newPage();
  const { code } = (await (await apiPost(session, '/api/devices/invitations', {})).json()) as {
    code: string;
  };
  await page.goto(`${session.url}/#/join?invite=${code}`);
  await page.getByTestId('join-submit').click();
  const request = await until(async () => {
    const response = await fetch(`${session.url}/api/devices/invitations/${code}`, {
      headers: { cookie: session.cookie },
    });
    const body = (await response.json()) as { requests: { publicKey: string; name: string }[] };
    return body.requests[0];
  }, 100);
  const record = {
    type: 'introduce' as const,
    publicKey: request.publicKey,
    name: 'bench phone',
    role: 'approver' as const,
    at: new Date().toISOString(),
  };
  const response = await apiPost(session, '/api/devices/records', {
    record: signEnvelope(
      PAYLOAD_TYPES.device,
      deviceRecordBytes(record),
      stack.root.secretKey,
      stack.root.keyId,
    ),
  });
  if (!response.ok) throw new Error(`introduction refused: ${await response.text()}`);
  await page.getByTestId('tab-inbox').waitFor({ timeout: 30_000 });
  await page.close();
  return context;
}

async function preparePlans(stack: BenchStack, session: HttpSession) {
  const submit = async (plan: unknown) =>
    (await (await apiPost(session, '/api/plans', { plan })).json()) as { planId: string; workflowId: string };
  const waiting = await submit({ name: 'bench awaiting', steps: [{ id: 'deploy', run: 'true' }] });
  const finished = await submit({
    name: 'bench finished',
    steps: [
      { id: 'a', run: 'echo a' },
      { id: 'b', run: 'echo b' },
    ],
  });
  for (const step of ['a', 'b']) {
    const view = await until(async () => {
      const v = await planView(stack.client, finished.planId);
      return v.steps.find((s) => s.path === step)?.status === 'awaiting_approval' ? v : undefined;
    }, 20);
    await apiPost(session, `/api/plans/${finished.workflowId}/approvals`, {
      envelope: signDecision(view, step, stack.root, 'approve'),
    });
  }
  await stack.client.workflow.getHandle(finished.workflowId).result();
  await until(
    async () =>
      (await planView(stack.client, waiting.planId)).status === 'awaiting_approval' ? true : undefined,
    20,
  );
  return { waiting, finished };
}

export async function measureScreens(
  stack: BenchStack,
  session: HttpSession,
  phone: Phone,
  loads: number,
): Promise<ScreenTimes[]> {
  const { waiting, finished } = await preparePlans(stack, session);
  const context = await joinAsDevice(stack, session, phone);
  const screens = [
    { name: 'inbox', route: '#/inbox', marker: 'inbox-item' },
    { name: 'approval detail', route: `#/approve/${waiting.workflowId}/deploy`, marker: 'digest-verified' },
    { name: 'plans', route: '#/plans', marker: 'plan-item' },
    { name: 'plan detail', route: `#/plans/${finished.workflowId}`, marker: 'plan-tree' },
    { name: 'history', route: `#/plans/${finished.workflowId}/history`, marker: 'history-entry' },
  ];
  const results: ScreenTimes[] = [];
  for (const screen of screens) {
    const times: ScreenTimes = { name: screen.name, ttfb: [], tti: [] };
    for (let i = 0; i < loads; i++) {
      const page = await context.newPage();
      // Installed before any page script: resolves with the time the marker first exists.
      await page.addInitScript(`window.__ready = new Promise((resolve) => {
        const found = () => document.querySelector('[data-testid="${screen.marker}"]');
        const check = () => { if (found()) { resolve(performance.now()); observer.disconnect(); } };
        const observer = new MutationObserver(check);
        document.addEventListener('DOMContentLoaded', () => { observer.observe(document.body, { childList: true, subtree: true }); check(); });
      })`);
      await page.goto(`${session.url}/${screen.route}`);
      const tti = (await page.evaluate('window.__ready')) as number;
      const ttfb = (await page.evaluate(
        "(() => { const n = performance.getEntriesByType('navigation')[0]; return n.responseStart - n.startTime; })()",
      )) as number;
      times.tti.push(tti);
      times.ttfb.push(ttfb);
      await page.close();
    }
    results.push(times);
  }
  await context.close();
  return results;
}
