/**
 * The door to Temporal: the only listening socket in front of the frontend. It accepts a TLS
 * connection only from a client whose certificate the stack's CA issued (tls.ts), then passes the
 * bytes through to the frontend unchanged (gRPC over HTTP/2). Anything else — no certificate,
 * another CA's, plain HTTP/2 — is cut during the handshake and counted, before a byte reaches
 * Temporal.
 */
import { connect as connectNet, type Socket } from 'node:net';
import { createServer, type TLSSocket } from 'node:tls';
import { serverTls } from './tls.js';

export type DoorUpstream = { path: string } | { host: string; port: number };

export interface TemporalDoorOptions {
  host: string;
  port: number;
  tlsDir: string;
  upstream: DoorUpstream;
  log?: (line: string) => void;
}

export interface TemporalDoor {
  address: string;
  /** Connections refused at the handshake so far. */
  refused(): number;
  close(): Promise<void>;
}

export async function openTemporalDoor(options: TemporalDoorOptions): Promise<TemporalDoor> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const sockets = new Set<Socket>();
  let refused = 0;
  let lastLogged = 0;
  const server = createServer(
    {
      ...(await serverTls(options.tlsDir, 'door')),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'],
      minVersion: 'TLSv1.2',
      handshakeTimeout: 10_000,
    },
    (client: TLSSocket) => {
      const frontend = connectNet(options.upstream as never);
      sockets.add(client).add(frontend);
      const close = () => {
        client.destroy();
        frontend.destroy();
        sockets.delete(client);
        sockets.delete(frontend);
      };
      client.once('error', close).once('close', close);
      frontend.once('error', close).once('close', close);
      client.pipe(frontend).pipe(client);
    },
  );
  server.on('tlsClientError', (error, socket) => {
    refused++;
    socket.destroy();
    // One line a second at most: a flood of refused handshakes must not flood the log.
    if (Date.now() - lastLogged > 1_000) {
      lastLogged = Date.now();
      log(
        `temporal door: refused a connection without a stack certificate (${error.message}); ${refused} so far`,
      );
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as { port: number };
  return {
    address: `${options.host}:${port}`,
    refused: () => refused,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
