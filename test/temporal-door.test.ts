/**
 * Temporal is not an open door. The stack's dev server runs in a network namespace of its own and
 * the door in front of it takes only clients holding a certificate from the stack's CA. Probed as
 * another local user (nobody), with a real Temporal client and the Temporal CLI: no TLS, TLS
 * without a certificate, a certificate from the outsider's own CA, the socket into the namespace
 * and the certificate folder. And from /proc: the frontend listens on no host port at all.
 */
import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectTemporal } from '../services/temporal/connection.js';
import { startDevServer, TEMPORAL_CLI, type DevServer } from '../services/temporal/server.js';
import { ensureTemporalTls } from '../services/temporal/tls-issue.js';
import { PROJECT_ROOT } from '../workers/config.js';
import type { ProbeAttempt, ProbeTarget } from './support/outsider-probe.js';
import { freePort } from './support/ports.js';

const NOBODY = 65_534;
let dir: string;
let outsiderDir: string;
let handedDir: string;
let server: DevServer;
const tlsDir = () => join(dir, 'tls');
const socketPath = () => join(dir, 'temporal', 'frontend.sock');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'countersign-door-'));
  // The state folder is the user's own; the outsider can enter the temp dir but not the state.
  await chmod(dir, 0o755);
  server = await startDevServer({
    dbFile: join(dir, 'state', 'temporal.sqlite'),
    port: await freePort(),
    logFile: join(dir, 'state', 'temporal.log'),
    private: { tlsDir: tlsDir(), socketPath: socketPath() },
  });
  // The outsider's own CA and client certificate, made with the same code, readable by it.
  outsiderDir = await mkdtemp(join(tmpdir(), 'countersign-outsider-'));
  await ensureTemporalTls(outsiderDir);
  await chmod(outsiderDir, 0o755);
  for (const file of await readdir(outsiderDir)) await chmod(join(outsiderDir, file), 0o644);
  // The control: a stack certificate handed to the outsider does get in, so each refusal is the door's.
  handedDir = await mkdtemp(join(tmpdir(), 'countersign-handed-'));
  await chmod(handedDir, 0o755);
  for (const file of ['ca.crt', 'cli.crt', 'cli.key']) {
    await copyFile(join(tlsDir(), file), join(handedDir, file));
    await chmod(join(handedDir, file), 0o644);
  }
}, 60_000);

afterAll(async () => {
  await server?.stop();
  for (const d of [dir, outsiderDir, handedDir]) if (d) await rm(d, { recursive: true, force: true });
});

describe('the door to Temporal', () => {
  it('is private: no certificate material or socket is open to others', async () => {
    expect(server.warning).toBeUndefined();
    expect(server.temporalTlsDir).toBe(tlsDir());
    for (const folder of [tlsDir(), join(dir, 'temporal')])
      expect(((await import('node:fs')).statSync(folder).mode & 0o777).toString(8)).toBe('700');
    for (const file of await readdir(tlsDir()))
      if (file.endsWith('.key'))
        expect(((await import('node:fs')).statSync(join(tlsDir(), file)).mode & 0o777).toString(8)).toBe(
          '600',
        );
  });

  it('lets in a stack process with its certificate', async () => {
    const connection = await connectTemporal(
      { temporalAddress: server.address, temporalTlsDir: tlsDir() },
      'cli',
    );
    try {
      const info = await connection.workflowService.getSystemInfo({});
      expect(info.serverVersion).toMatch(/^\d+\.\d+/);
    } finally {
      await connection.close();
    }
  });

  it('refuses another local user every way in: no TLS, no certificate, its own CA, the Temporal CLI, the socket, the keys', async () => {
    const refusedBefore = server.doorRefusals!();
    const target: ProbeTarget = {
      door: server.address,
      socketPath: socketPath(),
      tlsDir: tlsDir(),
      ownCertDir: outsiderDir,
      temporalCli: TEMPORAL_CLI,
      handedCertDir: handedDir,
    };
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'test/support/outsider-probe.ts', JSON.stringify(target)],
      {
        cwd: PROJECT_ROOT,
        uid: NOBODY,
        gid: NOBODY,
        timeout: 60_000,
        env: { PATH: process.env.PATH, HOME: '/tmp' },
      },
    );
    const attempts = JSON.parse(stdout) as ProbeAttempt[];
    expect(attempts.map((a) => a.attempt)).toEqual([
      'gRPC without TLS at the door',
      'TLS without a client certificate',
      'TLS with a client certificate from its own CA',
      'TLS with a stack certificate handed to it',
      'the Temporal CLI at the door',
      'the socket into the namespace',
      "the stack's certificate folder",
    ]);
    const outcome = (name: string) => attempts.find((a) => a.attempt === name)!.outcome;
    expect(outcome('TLS with a stack certificate handed to it')).toBe('reached Temporal');
    for (const { attempt, outcome } of attempts.filter((a) => !a.attempt.includes('handed')))
      expect(outcome, attempt).toMatch(/^refused: /);
    expect(outcome('the socket into the namespace')).toMatch(/EACCES/);
    expect(outcome("the stack's certificate folder")).toMatch(/EACCES/);
    // The gRPC attempts were cut at the door's handshake (the CLI's too), before reaching Temporal.
    expect(server.doorRefusals!() - refusedBefore).toBeGreaterThanOrEqual(4);
  }, 90_000);

  it('the frontend listens on no port of the host: it lives in a network namespace of its own', async () => {
    const pid = await temporalPid();
    expect(await readlink(`/proc/${pid}/ns/net`)).not.toBe(await readlink('/proc/self/ns/net'));
    // Inside its namespace it listens (the frontend and its HTTP port) ...
    const inside = await listeningSockets(`/proc/${pid}/net`);
    expect(inside.ports).toContain(7233);
    // ... and none of its sockets is a listener on the host.
    const host = await listeningSockets('/proc/self/net');
    const its = await socketInodes(pid);
    expect([...its].filter((inode) => host.inodes.has(inode))).toEqual([]);
  });
});

/** The dev server's process: the Temporal CLI running on this test's database. */
async function temporalPid(): Promise<number> {
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    const argv = cmdline.split('\0');
    if (argv[0] === TEMPORAL_CLI && argv.includes(join(dir, 'state', 'temporal.sqlite')))
      return Number(entry);
  }
  throw new Error('the Temporal dev server process was not found');
}

/** Listening TCP sockets (state 0A) in the namespace whose /proc/<pid>/net is given. */
async function listeningSockets(netDir: string): Promise<{ ports: number[]; inodes: Set<string> }> {
  const ports: number[] = [];
  const inodes = new Set<string>();
  for (const file of ['tcp', 'tcp6']) {
    const lines = (await readFile(join(netDir, file), 'utf8')).trim().split('\n').slice(1);
    for (const line of lines) {
      const fields = line.trim().split(/\s+/);
      if (fields[3] !== '0A') continue;
      ports.push(parseInt(fields[1]!.split(':')[1]!, 16));
      inodes.add(fields[9]!);
    }
  }
  return { ports, inodes };
}

async function socketInodes(pid: number): Promise<Set<string>> {
  const inodes = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const match = /^socket:\[(\d+)\]$/.exec(link);
    if (match) inodes.add(match[1]!);
  }
  return inodes;
}
