/**
 * Runs inside the private network namespace the stack makes for Temporal (bwrap --unshare-net):
 * starts the dev server on that namespace's own loopback, where no other program on the machine
 * can reach it, and relays a Unix socket (in a folder only the stack's user can open) to it. The
 * door (door.ts) is the only thing that connects to that socket.
 *
 * Its one argument is JSON: a RelayPlan.
 */
import { spawn } from 'node:child_process';
import { chmod, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface RelayPlan {
  /** The Unix socket the door connects to. */
  socketPath: string;
  /** The frontend's port on the namespace's loopback. */
  port: number;
  command: string;
  args: string[];
}

async function main(plan: RelayPlan): Promise<void> {
  const server = spawn(plan.command, plan.args, { stdio: 'inherit' });
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => server.kill(signal));
  server.once('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));

  // The socket opens once the frontend answers: whoever waits for it waits for Temporal.
  while (!(await answers(plan.port))) await sleep(200);
  await rm(plan.socketPath, { force: true });
  const relay = createServer((outside) => {
    const inside = connect(plan.port, '127.0.0.1');
    outside.pipe(inside).pipe(outside);
    const close = () => {
      outside.destroy();
      inside.destroy();
    };
    outside.once('error', close).once('close', close);
    inside.once('error', close).once('close', close);
  });
  await new Promise<void>((resolve) => relay.listen(plan.socketPath, resolve));
  await chmod(plan.socketPath, 0o600);
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

const [json] = process.argv.slice(2);
if (!json) {
  process.stderr.write('usage: relay.js <json plan>\n');
  process.exit(2);
}
main(JSON.parse(json) as RelayPlan).catch((error: unknown) => {
  process.stderr.write(`temporal relay failed: ${(error as Error).message}\n`);
  process.exit(1);
});
