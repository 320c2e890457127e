/**
 * A stand-in for the internet: a network namespace holding 198.51.100.1 (TEST-NET-2, outside
 * every private range), routed from this host, with a TCP listener on it. An egress-only
 * container should reach it; a container with no network, or the jail, should not.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const NAMESPACE = 'cs-outside';
const HOST_SIDE = 'cs-out-h';
const WORLD_SIDE = 'cs-out-w';

export interface OutsideWorld {
  address: string;
  port: number;
  close(): Promise<void>;
}

async function ip(...args: string[]): Promise<void> {
  await run('ip', args);
}

async function removeNamespace(): Promise<void> {
  await ip('link', 'del', HOST_SIDE).catch(() => undefined);
  await ip('netns', 'del', NAMESPACE).catch(() => undefined);
}

export async function startOutsideWorld(): Promise<OutsideWorld> {
  const address = '198.51.100.1';
  const port = 8080;
  await removeNamespace();
  await ip('netns', 'add', NAMESPACE);
  await ip('link', 'add', HOST_SIDE, 'type', 'veth', 'peer', 'name', WORLD_SIDE);
  await ip('link', 'set', WORLD_SIDE, 'netns', NAMESPACE);
  await ip('addr', 'add', '198.51.100.254/24', 'dev', HOST_SIDE);
  await ip('link', 'set', HOST_SIDE, 'up');
  await ip('netns', 'exec', NAMESPACE, 'ip', 'addr', 'add', `${address}/24`, 'dev', WORLD_SIDE);
  await ip('netns', 'exec', NAMESPACE, 'ip', 'link', 'set', WORLD_SIDE, 'up');
  await ip('netns', 'exec', NAMESPACE, 'ip', 'link', 'set', 'lo', 'up');
  await ip('netns', 'exec', NAMESPACE, 'ip', 'route', 'add', 'default', 'via', '198.51.100.254');
  const listener: ChildProcess = spawn(
    'ip',
    [
      'netns',
      'exec',
      NAMESPACE,
      process.execPath,
      '-e',
      `require('node:net').createServer((s) => s.end('outside\\n')).listen(${port}, '${address}', () => console.log('listening'))`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    listener.stdout!.once('data', () => resolve());
    listener.once('exit', (code) => reject(new Error(`the outside-world listener exited (${code})`)));
  });
  return {
    address,
    port,
    async close() {
      listener.kill('SIGKILL');
      await removeNamespace();
    },
  };
}
