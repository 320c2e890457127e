/**
 * Run as another local user (test/temporal-door.test.ts): tries every way a program outside the
 * stack has into Temporal and prints, as JSON, what each attempt got. Argument: a JSON ProbeTarget.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { connect as connectNet } from 'node:net';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';

export interface ProbeTarget {
  door: string;
  socketPath: string;
  tlsDir: string;
  /** A CA and client certificate the outsider made itself. */
  ownCertDir: string;
  temporalCli: string;
  /** A copy of a stack client certificate handed to the outsider: the control that the probe can get in. */
  handedCertDir: string;
}

export interface ProbeAttempt {
  attempt: string;
  /** What the attempt got: `reached Temporal` is the failure the test looks for. */
  outcome: string;
}

const target = JSON.parse(process.argv[2]!) as ProbeTarget;
const attempts: ProbeAttempt[] = [];
const reason = (error: unknown) =>
  String((error as Error).message ?? error)
    .split('\n')[0]!
    .slice(0, 200);

async function tryTemporal(attempt: string, connect: () => Promise<Connection>): Promise<void> {
  try {
    const connection = await connect();
    try {
      await connection.workflowService.listWorkflowExecutions({ namespace: 'default' });
      attempts.push({ attempt, outcome: 'reached Temporal' });
    } finally {
      await connection.close();
    }
  } catch (error) {
    attempts.push({ attempt, outcome: `refused: ${reason(error)}` });
  }
}

const ca = await readFile(`${target.ownCertDir}/ca.crt`);
await tryTemporal('gRPC without TLS at the door', () =>
  Connection.connect({ address: target.door, connectTimeout: 2_000 }),
);
await tryTemporal('TLS without a client certificate', () =>
  Connection.connect({
    address: target.door,
    connectTimeout: 2_000,
    tls: { serverNameOverride: 'temporal.countersign.internal' },
  }),
);
const withCertificate = async (certDir: string, caCert: Buffer) =>
  Connection.connect({
    address: target.door,
    connectTimeout: 2_000,
    tls: {
      serverNameOverride: 'temporal.countersign.internal',
      serverRootCACertificate: caCert,
      clientCertPair: {
        crt: await readFile(`${certDir}/cli.crt`),
        key: await readFile(`${certDir}/cli.key`),
      },
    },
  });
await tryTemporal('TLS with a client certificate from its own CA', () =>
  withCertificate(target.ownCertDir, ca),
);
await tryTemporal('TLS with a stack certificate handed to it', async () =>
  withCertificate(target.handedCertDir, await readFile(`${target.handedCertDir}/ca.crt`)),
);

try {
  const { stdout } = await promisify(execFile)(
    target.temporalCli,
    ['workflow', 'list', '--address', target.door, '--command-timeout', '3s'],
    { timeout: 15_000 },
  );
  attempts.push({
    attempt: 'the Temporal CLI at the door',
    outcome: `reached Temporal: ${stdout.slice(0, 100)}`,
  });
} catch (error) {
  attempts.push({ attempt: 'the Temporal CLI at the door', outcome: `refused: ${reason(error)}` });
}

try {
  await new Promise<void>((resolve, reject) => {
    const socket = connectNet(target.socketPath, () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', reject);
  });
  attempts.push({ attempt: 'the socket into the namespace', outcome: 'reached Temporal (connected)' });
} catch (error) {
  attempts.push({ attempt: 'the socket into the namespace', outcome: `refused: ${reason(error)}` });
}

try {
  const files = await readdir(target.tlsDir);
  attempts.push({
    attempt: "the stack's certificate folder",
    outcome: `reached Temporal (read ${files.join(' ')})`,
  });
} catch (error) {
  attempts.push({ attempt: "the stack's certificate folder", outcome: `refused: ${reason(error)}` });
}

process.stdout.write(JSON.stringify(attempts));
