/**
 * Stand-ins for networks, each a network namespace with a TCP listener that answers with its
 * name, joined to this host by a veth pair:
 *
 * - the internet: in 198.51.100.0/24 (TEST-NET-2, outside every private range) behind a router, so this
 *   host reaches it through a gateway as it reaches the real internet. An egress-only container
 *   should reach it; a container with no network, or the jail, should not.
 * - a directly attached network (`attachNetwork`): a range of its own on the link itself, as a
 *   LAN, a VPN or a Docker network attached after set-up would be. Nothing of a sandbox should
 *   reach it, whatever its range.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface OutsideWorld {
  address: string;
  port: number;
  close(): Promise<void>;
}

async function ip(...args: string[]): Promise<void> {
  await run('ip', args);
}

interface Link {
  namespace: string;
  hostSide: string;
  worldSide: string;
}

async function removeLink({ namespace, hostSide }: Link): Promise<void> {
  await ip('link', 'del', hostSide).catch(() => undefined);
  await ip('netns', 'del', namespace).catch(() => undefined);
}

/** A namespace joined to this host by a veth pair: `hostAddress` here, `worldAddress` there (both CIDR). */
async function makeLink(link: Link, hostAddress: string, worldAddress: string): Promise<void> {
  await removeLink(link);
  await ip('netns', 'add', link.namespace);
  await ip('link', 'add', link.hostSide, 'type', 'veth', 'peer', 'name', link.worldSide);
  await ip('link', 'set', link.worldSide, 'netns', link.namespace);
  await ip('addr', 'add', hostAddress, 'dev', link.hostSide);
  await ip('link', 'set', link.hostSide, 'up');
  const inside = (...args: string[]) => ip('netns', 'exec', link.namespace, 'ip', ...args);
  await inside('addr', 'add', worldAddress, 'dev', link.worldSide);
  await inside('link', 'set', link.worldSide, 'up');
  await inside('link', 'set', 'lo', 'up');
  await inside('route', 'add', 'default', 'via', hostAddress.split('/')[0]!);
}

async function listenIn(
  namespace: string,
  address: string,
  port: number,
  answer: string,
): Promise<ChildProcess> {
  const listener = spawn(
    'ip',
    [
      'netns',
      'exec',
      namespace,
      process.execPath,
      '-e',
      `require('node:net').createServer((s) => { s.on('error', () => {}); s.end('${answer}\\n'); }).listen(${port}, '${address}', () => console.log('listening'))`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    listener.stdout!.once('data', () => resolve());
    listener.once('exit', (code) => reject(new Error(`the listener in ${namespace} exited (${code})`)));
  });
  return listener;
}

/**
 * `slot` 0 or 1: test files that run at once each take their own (198.51.100.1 behind
 * 10.214.0.2, or 198.51.100.129 behind 10.214.0.6).
 */
/** A listener on `address:port` in the link's namespace, answering `answer`; close removes both. */
async function serve(link: Link, address: string, port: number, answer: string): Promise<OutsideWorld> {
  const listener = await listenIn(link.namespace, address, port, answer);
  return {
    address,
    port,
    async close() {
      listener.kill('SIGKILL');
      await removeLink(link);
    },
  };
}

export async function startOutsideWorld(slot: 0 | 1 = 0): Promise<OutsideWorld> {
  const address = `198.51.100.${slot * 128 + 1}`;
  const port = 8080;
  const link = { namespace: `cs-outside${slot}`, hostSide: `cs-out${slot}-h`, worldSide: `cs-out${slot}-w` };
  // The link between this host and the router is private; the world's range is behind it.
  await makeLink(link, `10.214.0.${slot * 4 + 1}/30`, `10.214.0.${slot * 4 + 2}/30`);
  await ip('netns', 'exec', link.namespace, 'ip', 'addr', 'add', `${address}/32`, 'dev', 'lo');
  await ip(
    'route',
    'replace',
    `198.51.100.${slot * 128}/25`,
    'via',
    `10.214.0.${slot * 4 + 2}`,
    'dev',
    link.hostSide,
  );
  return serve(link, address, port, 'outside');
}

/**
 * A network attached to this host now: 198.18.`n`.0/24 (a range no blocklist of private ranges
 * holds), with a listener on 198.18.`n`.1 answering `attached`.
 */
export async function attachNetwork(n: number): Promise<OutsideWorld> {
  const link = { namespace: `cs-late${n}`, hostSide: `cs-late${n}-h`, worldSide: `cs-late${n}-w` };
  const address = `198.18.${n}.1`;
  const port = 8080;
  await makeLink(link, `198.18.${n}.254/24`, `${address}/24`);
  return serve(link, address, port, 'attached');
}
