/**
 * Records one history per workflow shape into test/fixtures/histories, for the replay test.
 * Run after a deliberate, versioned workflow change: npm run record-histories
 * RECORD_ONLY=name,name records just those shapes (new ones), keeping the histories that older
 * code recorded: those are what prove a change still replays them.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { it } from 'vitest';
import { TEMPORAL_CLI } from '../../services/temporal/server.js';
import { NOTIFY_SETTINGS_WORKFLOW_ID, REGISTRY_WORKFLOW_ID } from '../../core/names.js';
import { changeNotifySettings } from '../../services/notify/settings.js';
import { cancelPlan, decide, submitPlan } from '../../services/plans.js';
import { grantFor, shell, submitGranted, submitSigned } from '../support/grants.js';
import { revokeGrant } from '../../services/grants.js';
import { startTestStack } from '../support/stack.js';
import { waitForStep, waitForView } from '../support/plans.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/histories/', import.meta.url));

it('records a history for every workflow shape', { timeout: 300_000 }, async () => {
  const stack = await startTestStack('record');
  const { client } = stack;
  const approve = (planId: string, step: string, decision: 'approve' | 'deny' = 'approve') =>
    decide(client, stack.root, planId, step, { decision });
  const settle = (workflowId: string) =>
    client.workflow
      .getHandle(workflowId)
      .result()
      .catch(() => undefined);
  // The Temporal CLI writes the canonical proto JSON that historyFromJSON reads back.
  const save = async (name: string, workflowId: string) => {
    const args = [
      'workflow',
      'show',
      '--workflow-id',
      workflowId,
      '--address',
      stack.config.temporalAddress,
      '--namespace',
      stack.config.namespace,
      '--output',
      'json',
    ];
    const { stdout } = await promisify(execFile)(TEMPORAL_CLI, args, { maxBuffer: 64 * 1024 * 1024 });
    // Replay derives child ids from the parent's id, so the fixture keeps it.
    await writeFile(
      `${FIXTURES}${name}.json`,
      JSON.stringify({ workflowId, history: JSON.parse(stdout) as unknown }, null, 1),
    );
  };

  const shapes: Record<string, () => Promise<string>> = {
    'sequence-approved': async () => {
      const p = await submitPlan(
        client,
        {
          name: 'seq',
          steps: [
            { id: 'a', run: 'echo a' },
            { id: 'g', gate: 'ok?' },
          ],
        },
        { proposer: 'recorder' },
      );
      await waitForStep(client, p.planId, 'a', 'awaiting_approval');
      await approve(p.planId, 'a');
      await waitForStep(client, p.planId, 'g', 'awaiting_approval');
      await approve(p.planId, 'g');
      return p.workflowId;
    },
    denied: async () => {
      const p = await submitPlan(
        client,
        { name: 'deny', steps: [{ id: 'a', run: 'echo a' }] },
        { proposer: 'recorder' },
      );
      await waitForStep(client, p.planId, 'a', 'awaiting_approval');
      await approve(p.planId, 'a', 'deny');
      return p.workflowId;
    },
    'parallel-fail-fast': async () => {
      const steps = [
        {
          parallel: [
            { id: 'slow', run: 'sleep 20', approval: 'auto' },
            { id: 'boom', run: 'exit 1', approval: 'auto' },
            { id: 'human', run: 'true' },
          ],
        },
      ];
      return (await submitGranted(client, stack.root, { name: 'ff', steps })).workflowId;
    },
    'parallel-collect-all': async () => {
      const steps = [
        {
          parallel: [
            { id: 'x', run: 'exit 1', approval: 'auto' },
            { id: 'y', run: 'echo y', approval: 'auto' },
          ],
          failFast: false,
          maxConcurrency: 1,
        },
      ];
      return (await submitGranted(client, stack.root, { name: 'ca', steps })).workflowId;
    },
    'sub-plan': async () => {
      const p = await submitGranted(client, stack.root, {
        name: 'parent',
        steps: [
          {
            id: 'sub',
            plan: { name: 'child', steps: [{ id: 'c', run: 'echo child', approval: 'auto' }] },
          },
        ],
      });
      return p.workflowId;
    },
    'timeout-with-reminders': async () => {
      return (
        await submitPlan(
          client,
          { name: 'timeout', steps: [{ id: 't', run: 'true', approval: { timeout: '2s', remind: '1s' } }] },
          { proposer: 'recorder' },
        )
      ).workflowId;
    },
    cancelled: async () => {
      const p = await submitGranted(client, stack.root, {
        name: 'cancel',
        steps: [{ id: 'long', run: 'sleep 30', approval: 'auto' }],
      });
      await waitForStep(client, p.planId, 'long', 'running');
      await cancelPlan(client, p.planId);
      return p.workflowId;
    },
    'gate-approved': async () => {
      const p = await submitPlan(
        client,
        { name: 'gate', steps: [{ id: 'q', gate: 'looks right?' }] },
        { proposer: 'recorder' },
      );
      await waitForStep(client, p.planId, 'q', 'awaiting_approval');
      await approve(p.planId, 'q');
      return p.workflowId;
    },
    'mcp-calls': async () => {
      await grantFor(client, stack.root, {
        covers: { kind: 'mcp', server: 'everything', tool: 'echo', arguments: { message: { equals: 'hi' } } },
      });
      const p = await submitSigned(client, stack.root, {
        name: 'mcp',
        steps: [
          { id: 'write', run: 'echo hello > greeting.txt' },
          {
            parallel: [
              {
                id: 'read',
                mcp: {
                  server: 'filesystem',
                  tool: 'read_text_file',
                  arguments: { path: '/workspace/greeting.txt' },
                },
              },
              {
                id: 'echo',
                mcp: { server: 'everything', tool: 'echo', arguments: { message: 'hi' } },
                approval: 'auto',
              },
            ],
          },
          {
            id: 'outside',
            mcp: { server: 'filesystem', tool: 'read_text_file', arguments: { path: '/etc/passwd' } },
          },
        ],
      });
      for (const step of ['write', 'read', 'outside']) {
        await waitForStep(client, p.planId, step, 'awaiting_approval');
        await approve(p.planId, step);
      }
      return p.workflowId;
    },
    'mcp-refused': async () => {
      const p = await submitPlan(
        client,
        { name: 'mcp-refused', steps: [{ id: 'env', mcp: { server: 'everything', tool: 'get-env' } }] },
        { proposer: 'recorder' },
      );
      return p.workflowId;
    },
    'gate-escalated-notified': async () => {
      // Reminders, an escalation, a decided notice and notices settling before the plan closes.
      const p = await submitPlan(
        client,
        {
          name: 'notified',
          steps: [
            {
              id: 'ship',
              gate: 'ship it?',
              approval: { timeout: '1m', remind: '2s', escalate: { after: '3s', to: ['test phone'] } },
            },
          ],
        },
        { proposer: 'recorder' },
      );
      await waitForView(client, p.planId, (v) => v.steps[0]!.escalatedAt !== undefined, 20_000);
      await approve(p.planId, 'ship');
      return p.workflowId;
    },
    'continued-as-new': async () => {
      const steps = Array.from({ length: 8 }, (_, i) => ({
        id: `s${i}`,
        run: `echo ${i}`,
        approval: 'auto',
      }));
      for (const { run } of steps) await grantFor(client, stack.root, { covers: shell(run) });
      const p = await submitPlan(
        client,
        { name: 'can', steps },
        {
          proposer: 'recorder',
          continueAsNewAfterEvents: 40,
          signer: { key: stack.root, proposer: { device: stack.root.keyId } },
        },
      );
      await waitForView(client, p.planId, (v) => v.continuedAsNew > 0);
      await settle(p.workflowId);
      // The latest run: it starts from carried state, which is what replay must handle.
      return p.workflowId;
    },
    'standing-approvals': async () => {
      // A grant approves one step; another waits until a grant issued meanwhile reaches the plan
      // (the registry's signal); a third waits for a person; a revocation reaches the plan too.
      const first = await grantFor(client, stack.root, { covers: shell('echo granted') });
      const p = await submitSigned(client, stack.root, {
        name: 'standing',
        steps: [
          { id: 'granted', run: 'echo granted', approval: 'auto' },
          { id: 'late', run: 'echo late', approval: 'auto' },
          { id: 'person', run: 'echo person', approval: 'auto' },
        ],
      });
      await waitForStep(client, p.planId, 'granted', 'succeeded');
      await waitForView(client, p.planId, (v) => v.steps[1]!.grantNote !== undefined);
      await grantFor(client, stack.root, { covers: shell('echo late') });
      await waitForStep(client, p.planId, 'late', 'succeeded');
      await waitForView(client, p.planId, (v) => v.steps[2]!.grantNote !== undefined);
      await revokeGrant(client, stack.root, first.grantId, 'recorded');
      await approve(p.planId, 'person');
      return p.workflowId;
    },
  };
  const only = process.env.RECORD_ONLY?.split(',');
  for (const [name, run] of Object.entries(shapes)) {
    if (only && !only.includes(name)) continue;
    const workflowId = await run();
    await settle(workflowId);
    await save(name, workflowId);
  }
  if (!only) await save('device-registry', REGISTRY_WORKFLOW_ID);
  // The registry with grants issued, used (announced to plans) and revoked.
  if (!only || only.includes('standing-approvals'))
    await save('device-registry-grants', REGISTRY_WORKFLOW_ID);
  if (!only || only.includes('notify-settings')) {
    await changeNotifySettings(client, stack.root.keyId, {
      type: 'preferences',
      ntfy: { enabled: true },
      webPush: { enabled: false },
      fcm: { enabled: false },
      quietHours: { start: '22:00', end: '07:00', timeZone: 'Europe/Paris' },
    });
    await save('notify-settings', NOTIFY_SETTINGS_WORKFLOW_ID);
  }
  await stack.close();
});
