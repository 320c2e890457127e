/**
 * The worker gate: a gRPC-aware proxy between the executor and the Temporal frontend. It passes
 * only the worker-side RPCs of one namespace and task queue, and only task tokens it handed out
 * itself, so even a fully compromised executor can neither start, signal, update, terminate,
 * list or read workflows, nor complete an activity it was never given.
 *
 * Every request is read the way Temporal's server will read it (wire.ts, strict.ts): one gRPC
 * message, every field checked against the SDK's schema at every depth, and anything two decoders
 * could read differently (a field given twice, a wrong wire type, an unknown field) refused, so
 * the token and namespace the gate checks are the ones the server acts on (issue 15).
 */
import http2, {
  type ClientHttp2Session,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { serverTls, temporalClientTls } from '../../services/temporal/tls.js';
import { grpcFrame, MAX_MESSAGE_BYTES, readableAcceptEncoding, singleGrpcMessage } from './frames.js';
import { checkMessage, messageType } from './strict.js';
import { readMessage, readString, single, WIRE, WireError, type WireMessage } from './wire.js';

const service = '/temporal.api.workflowservice.v1.WorkflowService/';
const rpc = (name: string) => service + name;
/** Calls that end an activity task: they spend the task token. */
const FINAL_RPCS = new Set(
  ['RespondActivityTaskCompleted', 'RespondActivityTaskFailed', 'RespondActivityTaskCanceled'].map(rpc),
);
/** Calls that must carry a task token the gate handed out. */
const TOKEN_RPCS = new Set([...FINAL_RPCS, rpc('RecordActivityTaskHeartbeat')]);
/** The RPCs an activity worker needs, and nothing else, each with its request message. */
const WORKER_RPCS = new Map(
  [
    ...[...TOKEN_RPCS].map((method) => method.replace(service, '')),
    'GetSystemInfo',
    'DescribeNamespace',
    'PollActivityTaskQueue',
    'ShutdownWorker',
    'RecordWorkerHeartbeat',
  ].map((name) => [rpc(name), messageType(`temporal.api.workflowservice.v1.${name}Request`)]),
);
/** Where each request keeps its namespace (field 1, but 4 in the task-token calls). */
const NAMESPACE_FIELD = (method: string) => (TOKEN_RPCS.has(method) ? 4 : 1);
const TASK_TOKEN = 1;
const PERMISSION_DENIED = 7;
const NOT_FOUND = 5;
const GRPC_CONTENT_TYPE = /^application\/grpc(\+proto)?$/;

export interface WorkerGateOptions {
  /** The Temporal frontend, host:port. */
  upstream: string;
  namespace: string;
  taskQueue: string;
  host?: string;
  port?: number;
  /**
   * The stack's certificates (services/temporal/tls.ts): mutual TLS on both sides, the gate's own
   * client certificate towards the door, and only clients from the stack's CA (the executor) in.
   */
  tlsDir?: string | undefined;
  log?: (line: string) => void;
}

/** The subject CN of the executor's client certificate (services/temporal/tls-issue.ts). */
const EXECUTOR_CERTIFICATE_NAME = 'countersign-executor';

export interface WorkerGate {
  address: string;
  /** RPCs refused so far, by method. */
  refused: Map<string, number>;
  close(): Promise<void>;
}

/** A string field of a checked message ('' when absent, as proto3 reads it). */
const text = (message: WireMessage, number: number) => {
  const field = single(message, number);
  return field ? readString(field.bytes) : '';
};

/**
 * The task token of a PollActivityTaskQueue response, or undefined when it has none or could be
 * read two ways. The server wrote it; newer fields it adds are no concern of the gate.
 */
export function issuedTokenOf(body: Buffer, encoding: string | string[] | undefined): string | undefined {
  try {
    const token = single(readMessage(singleGrpcMessage(body, encoding)), TASK_TOKEN);
    return token?.wireType === WIRE.bytes && token.bytes.length
      ? Buffer.from(token.bytes).toString('base64')
      : undefined;
  } catch {
    return undefined;
  }
}

export async function startWorkerGate(options: WorkerGateOptions): Promise<WorkerGate> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const issuedTokens = new Set<string>();
  const refused = new Map<string, number>();
  let upstream: ClientHttp2Session | undefined;
  const upstreamTls = options.tlsDir ? await temporalClientTls(options.tlsDir, 'gate') : undefined;
  const session = () => {
    if (!upstream || upstream.closed || upstream.destroyed) {
      upstream = upstreamTls
        ? http2.connect(`https://${options.upstream}`, {
            ca: upstreamTls.serverRootCACertificate,
            cert: upstreamTls.clientCertPair.crt,
            key: upstreamTls.clientCertPair.key,
            servername: upstreamTls.serverNameOverride,
          })
        : http2.connect(`http://${options.upstream}`);
      upstream.on('error', () => undefined);
    }
    return upstream;
  };

  const refuse = (stream: ServerHttp2Stream, method: string, why: string) => {
    refused.set(method, (refused.get(method) ?? 0) + 1);
    log(`worker gate: refused ${method.replace(service, '')}: ${why}`);
    if (!stream.destroyed && !stream.headersSent) {
      stream.respond(
        {
          ':status': 200,
          'content-type': 'application/grpc',
          'grpc-status': String(PERMISSION_DENIED),
          'grpc-message': encodeURIComponent(`worker gate: ${why}`),
        },
        { endStream: true },
      );
    }
  };

  /**
   * The request's one message, checked field by field against its schema and against the policy
   * of its RPC; throws a WireError saying why it may not pass.
   */
  const inspect = (
    method: string,
    headers: IncomingHttpHeaders,
    body: Buffer,
  ): { message: Buffer; token?: string } => {
    const type = WORKER_RPCS.get(method);
    if (!type)
      throw new WireError(
        `${method.replace(/^\//, '')} is not a worker RPC of task queue ${options.taskQueue}`,
      );
    if (!GRPC_CONTENT_TYPE.test(String(headers['content-type'])))
      throw new WireError(`content-type ${String(headers['content-type'])} is not protobuf gRPC`);
    const message = singleGrpcMessage(body, headers['grpc-encoding']);
    checkMessage(type, message);
    const fields = readMessage(message);
    const namespace = text(fields, NAMESPACE_FIELD(method));
    if (method !== rpc('GetSystemInfo') && namespace !== options.namespace)
      throw new WireError(`namespace "${namespace}" is not allowed (only ${options.namespace})`);
    if (method === rpc('PollActivityTaskQueue')) {
      const queue = single(fields, 2);
      const name = queue ? text(readMessage(queue.bytes), 1) : '';
      if (name !== options.taskQueue)
        throw new WireError(`polling task queue "${name}" is not allowed (only ${options.taskQueue})`);
    } else if (method === rpc('ShutdownWorker')) {
      const queue = text(fields, 7);
      if (queue && queue !== options.taskQueue)
        throw new WireError(`shutting down a worker of task queue "${queue}" is not allowed`);
    } else if (TOKEN_RPCS.has(method)) {
      const field = single(fields, TASK_TOKEN);
      const token = field && Buffer.from(field.bytes).toString('base64');
      if (!token || !issuedTokens.has(token))
        throw new WireError('task token was not issued to this worker through the gate');
      return { message, token };
    }
    return { message };
  };

  const server = options.tlsDir
    ? http2.createSecureServer({
        ...(await serverTls(options.tlsDir, 'gate-server')),
        requestCert: true,
        rejectUnauthorized: true,
      })
    : http2.createServer();
  const sessions = new Set<ServerHttp2Session>();
  server.on('session', (session: ServerHttp2Session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
  });
  server.on('stream', (stream, headers: IncomingHttpHeaders) => {
    const method = String(headers[':path'] ?? '');
    // The stack's CA signs every process kind's certificate; only the executor's passes here.
    if (options.tlsDir) {
      const caller = (stream.session?.socket as TLSSocket | undefined)?.getPeerCertificate().subject?.CN;
      if (caller !== EXECUTOR_CERTIFICATE_NAME) {
        stream.on('error', () => undefined);
        stream.resume();
        refuse(stream, method, `only the executor's certificate passes, not ${caller ?? 'none'}`);
        // Nothing more from this caller: its connection goes once the refusal is sent.
        stream.session?.close();
        return;
      }
    }
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_MESSAGE_BYTES + 5) refuse(stream, method, 'request too large');
      else chunks.push(chunk);
    });
    stream.on('error', () => undefined);
    stream.on('end', () => {
      if (stream.headersSent || stream.destroyed) return;
      let checked: ReturnType<typeof inspect>;
      try {
        checked = inspect(method, headers, Buffer.concat(chunks));
      } catch (error) {
        // Anything but a WireError is the gate's own fault: still refused, never thrown from here.
        const why = error instanceof WireError ? error.message : `cannot inspect: ${String(error)}`;
        return refuse(stream, method, why);
      }
      // Forwarded as inspected: one uncompressed message, so Temporal decodes the bytes the gate read.
      const forwarded: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(headers)) {
        if (value === undefined || name === 'grpc-encoding' || name === 'content-length') continue;
        if (!name.startsWith(':') || name === ':method' || name === ':path') forwarded[name] = value;
      }
      forwarded['grpc-accept-encoding'] = readableAcceptEncoding(headers['grpc-accept-encoding']);
      const request = session().request(forwarded);
      // The executor went away (crash, restart, cancelled poll): cancel its request upstream too,
      // so Temporal does not hand a task to a poll nobody is waiting on, and write nothing more.
      const gone = () => stream.destroyed || stream.closed;
      stream.on('close', () => {
        if (!request.closed) request.close(http2.constants.NGHTTP2_CANCEL);
      });
      request.on('error', (error) => {
        if (!gone()) refuse(stream, method, `upstream error: ${error.message}`);
      });
      const response: Buffer[] = [];
      let responseEncoding: string | string[] | undefined;
      let grpcStatus: string | undefined;
      request.on('response', (responseHeaders) => {
        if (gone()) return;
        const { ':status': status, ...rest } = responseHeaders;
        responseEncoding = responseHeaders['grpc-encoding'];
        grpcStatus = responseHeaders['grpc-status'] as string | undefined; // a trailers-only answer
        stream.respond({ ':status': status ?? 200, ...rest }, { waitForTrailers: true });
      });
      request.on('data', (chunk: Buffer) => {
        if (gone()) return;
        if (method === rpc('PollActivityTaskQueue')) response.push(chunk);
        stream.write(chunk);
      });
      request.on('trailers', (trailers) => {
        grpcStatus = (trailers['grpc-status'] as string | undefined) ?? grpcStatus;
        if (!gone()) stream.once('wantTrailers', () => stream.sendTrailers(trailers));
      });
      request.on('end', () => {
        if (gone()) return;
        // Recorded before the trailers reach the executor: it cannot use a token the gate lacks.
        if (method === rpc('PollActivityTaskQueue') && grpcStatus === '0' && response.length) {
          const token = issuedTokenOf(Buffer.concat(response), responseEncoding);
          if (token) issuedTokens.add(token);
        }
        // Spent once Temporal took it or has no such task; after a transient error the worker retries.
        if (
          FINAL_RPCS.has(method) &&
          checked.token &&
          (grpcStatus === '0' || grpcStatus === String(NOT_FOUND))
        )
          issuedTokens.delete(checked.token);
        stream.end();
      });
      request.end(grpcFrame(checked.message));
    });
  });
  await new Promise<void>((resolve) =>
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve),
  );
  const { port } = server.address() as { port: number };
  return {
    address: `${options.host ?? '127.0.0.1'}:${port}`,
    refused,
    async close() {
      upstream?.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Open sessions (a poll the executor keeps open) would hold the close up: they end now.
      for (const session of sessions) session.destroy();
      await closed;
    },
  };
}
