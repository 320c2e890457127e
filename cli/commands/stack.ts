/** `countersign up`, `down`, `status`: the embedded stack on this machine. */
import { spawn } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import QRCode from 'qrcode';
import { loadApiConfig } from '../../api/config.js';
import { parsePlanDocument } from '../../core/plan/parse.js';
import { TASK_QUEUES } from '../../core/names.js';
import { openLocalPairing, registryView } from '../../services/devices.js';
import { planView, submitPlan } from '../../services/plans.js';
import { workflowBundlePath } from '../../workers/bundle.js';
import { compiledEntry } from '../../workers/compile.js';
import { PROJECT_ROOT } from '../../workers/config.js';
import { UserFacingError } from '../../services/errors.js';
import type { CliContext } from '../context.js';
import { bold, cyan, dim, renderAwaiting, yellow } from '../format.js';
import type { StackFile } from '../stack/processes.js';

async function readStack(ctx: CliContext): Promise<StackFile | undefined> {
  try {
    const stack = JSON.parse(await readFile(ctx.paths.stackFile, 'utf8')) as StackFile;
    process.kill(stack.supervisorPid, 0);
    return stack;
  } catch {
    return undefined;
  }
}

async function logTail(path: string, lines = 12): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text
    .trimEnd()
    .split('\n')
    .slice(-lines)
    .map((l) => `  ${l}`)
    .join('\n');
}

function portIsOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** True once the API answers its health check; it starts after the workers, so give it a moment. */
async function waitForApi(url: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(2_000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return true;
    await sleep(250);
  }
  return false;
}

async function waitForPollers(ctx: CliContext, timeoutMs: number): Promise<void> {
  const client = await ctx.client();
  const deadline = Date.now() + timeoutMs;
  for (const queue of [TASK_QUEUES.control, TASK_QUEUES.sandbox]) {
    for (;;) {
      const { pollers } = await client.workflowService.describeTaskQueue({
        namespace: ctx.config.namespace,
        taskQueue: { name: queue },
        taskQueueType: queue === TASK_QUEUES.control ? 1 : 2,
      });
      if (pollers.length > 0) break;
      if (Date.now() > deadline)
        throw new Error(`no worker is polling ${queue} after ${timeoutMs / 1000}s; see ${ctx.paths.logs}`);
      await sleep(250);
    }
  }
}

export async function up(ctx: CliContext, options: { example?: string }): Promise<void> {
  let stack = await readStack(ctx);
  if (!stack) {
    const port = Number(ctx.config.temporalAddress.split(':').pop());
    if (await portIsOpen(port)) {
      throw new UserFacingError(
        `port ${port} is already in use, so the embedded Temporal server cannot start there: stop that process, or choose another port with TEMPORAL_ADDRESS=127.0.0.1:<port>`,
        'port_in_use',
      );
    }
    const apiPort = loadApiConfig().port;
    if (await portIsOpen(apiPort)) {
      throw new UserFacingError(
        `port ${apiPort} is already in use, so the API and web app cannot start there: stop that process, or choose another port with COUNTERSIGN_API_PORT=<port>`,
        'port_in_use',
      );
    }
    await mkdir(ctx.paths.logs, { recursive: true });
    const log = openSync(join(ctx.paths.logs, 'supervisor.log'), 'a');
    // Built before the workers start, so no long-lived process ever loads webpack or a TS loader.
    await workflowBundlePath(ctx.paths.build);
    const supervisor = await compiledEntry('cli/stack/supervisor.ts');
    await Promise.all([
      compiledEntry('workers/control.ts'),
      compiledEntry('workers/executor.ts'),
      compiledEntry('sandbox/runner/runner.ts'),
      compiledEntry('api/server.ts'),
    ]);
    const child = spawn(process.execPath, [supervisor], {
      cwd: PROJECT_ROOT,
      detached: true,
      stdio: ['ignore', log, log],
      env: process.env,
    });
    child.unref();
    console.log(dim(`starting the stack (logs in ${ctx.paths.logs}) …`));
    const deadline = Date.now() + 120_000;
    while (!(stack = await readStack(ctx))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        throw new UserFacingError(
          `the stack did not start; nothing was left running. Last log lines:\n${await logTail(join(ctx.paths.logs, 'supervisor.log'))}\n(full logs in ${ctx.paths.logs})`,
          'start_failed',
        );
      }
      await sleep(250);
    }
  }
  await waitForPollers(ctx, 120_000);
  console.log(`${bold('Countersign is up')}  ${dim(`state folder ${ctx.config.home}`)}`);
  console.log(
    `  Temporal        ${stack.temporalAddress}  (namespace ${stack.namespace}; ${stack.temporalWarning ? 'open to every local program' : `private: only clients with a certificate from ${ctx.paths.temporalTls}`})`,
  );
  if (stack.temporalWarning) console.log(yellow(`  ! ${stack.temporalWarning}`));
  if (stack.temporalUi) console.log(`  Temporal UI     ${stack.temporalUi}`);
  console.log(`  control worker  pid ${stack.pids.control ?? '?'}  queue ${TASK_QUEUES.control}`);
  console.log(
    `  executor        pid ${stack.pids.executor ?? '?'}  queue ${TASK_QUEUES.sandbox}  backend: ${stack.backend}  via worker gate ${stack.gateAddress ?? '?'}`,
  );
  if (stack.sandboxWarning) console.log(yellow(`  ! ${stack.sandboxWarning}`));
  const apiUrl = stack.apiUrl ?? loadApiConfig().publicUrl;
  const apiUp = await waitForApi(apiUrl, 30_000);
  console.log(
    `  web app         ${apiUrl}${apiUp ? '' : yellow(`  (not answering yet; see ${join(ctx.paths.logs, 'api.log')})`)}`,
  );

  const client = await ctx.client();
  const code = await openLocalPairing(client, ctx.paths);
  const registry = await registryView(client);
  if (code) {
    const pairingUrl = `${apiUrl}/#/pair?code=${code}`;
    console.log(
      `\n${bold('Pair your first device')} (it becomes the root of trust) with the one-time code ${cyan(bold(code))}:`,
    );
    console.log(`  a phone: open ${cyan(pairingUrl)}  (or scan this code)`);
    console.log(await QRCode.toString(pairingUrl, { type: 'terminal', small: true }));
    console.log(`  this CLI: countersign pair ${code}`);
  } else {
    console.log(dim(`\n${registry.devices.length} device(s) paired; root ${registry.rootKeyId}`));
  }

  if (options.example) {
    const { raw } = parsePlanDocument(await readFile(options.example, 'utf8'));
    const submitted = await submitPlan(client, raw, { proposer: 'countersign up (example)' });
    console.log(`\n${bold('Example plan started:')} ${submitted.planId}  (${options.example})`);
    let view = await planView(client, submitted.planId);
    for (let i = 0; i < 40 && !view.steps.some((s) => s.status === 'awaiting_approval'); i++) {
      await sleep(100);
      view = await planView(client, submitted.planId);
    }
    console.log(renderAwaiting(view));
    if (code)
      console.log(
        yellow(
          `\nPair first (countersign pair ${code}), then approve. Watch it with: countersign plan show ${submitted.planId}`,
        ),
      );
    else console.log(dim(`\nWatch it with: countersign plan show ${submitted.planId}`));
  }
}

export async function down(ctx: CliContext): Promise<void> {
  const stack = await readStack(ctx);
  if (!stack) {
    console.log('the stack is not running');
    return;
  }
  process.kill(stack.supervisorPid, 'SIGTERM');
  for (let i = 0; i < 120 && existsSync(ctx.paths.stackFile); i++) await sleep(250);
  console.log('stopped: Temporal, control worker, executor (plans resume on the next `countersign up`)');
}

export async function status(ctx: CliContext): Promise<void> {
  const stack = await readStack(ctx);
  if (!stack) {
    console.log('the stack is not running: countersign up');
    process.exitCode = 1;
    return;
  }
  console.log(JSON.stringify(stack, null, 2));
}
