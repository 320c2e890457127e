/**
 * The worker gate: a gRPC-aware proxy between the executor and the Temporal frontend. It passes
 * only the worker-side RPCs of one namespace and task queue, and only task tokens it handed out
 * itself, so even a fully compromised executor can neither start, signal, update, terminate,
 * list or read workflows, nor complete an activity it was never given.
 */
import http2, { type ClientHttp2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { gunzipSync, inflateSync } from 'node:zlib';
import proto from '@temporalio/proto';
import { serverTls, temporalClientTls } from '../../services/temporal/tls.js';

const service = '/temporal.api.workflowservice.v1.WorkflowService/';
// A default import: the package is CommonJS, and compiled bundles load it from native ESM.
const api = proto.temporal.api.workflowservice.v1;

const rpc = (name: string) => service + name;
/** Calls that end an activity task: they spend the task token. */
const FINAL_RPCS = new Set(
  ['RespondActivityTaskCompleted', 'RespondActivityTaskFailed', 'RespondActivityTaskCanceled'].map(rpc),
);
/** Calls that must carry a task token the gate handed out. */
const TOKEN_RPCS = new Set([...FINAL_RPCS, rpc('RecordActivityTaskHeartbeat')]);
/** The RPCs an activity worker needs, and nothing else. */
const WORKER_RPCS = new Set([
  ...TOKEN_RPCS,
  ...[
    'GetSystemInfo',
    'DescribeNamespace',
    'PollActivityTaskQueue',
    'ShutdownWorker',
    'RecordWorkerHeartbeat',
  ].map(rpc),
]);
const PERMISSION_DENIED = 7;
const MAX_REQUEST_BYTES = 4 * 1024 * 1024;

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

export interface WorkerGate {
  address: string;
  /** RPCs refused so far, by method. */
  refused: Map<string, number>;
  close(): Promise<void>;
}

/**
 * Splits a gRPC body into its messages (5-byte prefix: compressed flag, big-endian length),
 * inflating compressed ones (the Temporal core sends gzip). Undefined when it cannot be read.
 */
function grpcMessages(body: Buffer, encoding: string | undefined): Buffer[] | undefined {
  const out: Buffer[] = [];
  try {
    for (let i = 0; i < body.length;) {
      if (i + 5 > body.length) return undefined;
      const compressed = body[i] === 1;
      const length = body.readUInt32BE(i + 1);
      if (i + 5 + length > body.length) return undefined;
      const payload = body.subarray(i + 5, i + 5 + length);
      if (!compressed) out.push(payload);
      else if (encoding === 'gzip') out.push(gunzipSync(payload, { maxOutputLength: MAX_REQUEST_BYTES }));
      else if (encoding === 'deflate') out.push(inflateSync(payload, { maxOutputLength: MAX_REQUEST_BYTES }));
      else return undefined;
      i += 5 + length;
    }
  } catch {
    return undefined;
  }
  return out;
}

/**
 * Field 1 (task_token) of RecordActivityTaskHeartbeat and the three RespondActivityTask*
 * requests, read straight from the wire so one reader serves all four message types.
 */
function taskTokenOf(message: Buffer): string | undefined {
  let i = 0;
  const varint = () => {
    let value = 0;
    for (let shift = 0; shift < 35 && i < message.length; shift += 7) {
      const byte = message[i++]!;
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
    throw new Error('bad varint');
  };
  try {
    while (i < message.length) {
      const tag = varint();
      const wireType = tag & 7;
      if (tag >>> 3 === 1 && wireType === 2) {
        const length = varint();
        return message.subarray(i, i + length).toString('base64');
      }
      if (wireType === 0) varint();
      else if (wireType === 1) i += 8;
      else if (wireType === 2) i += varint();
      else if (wireType === 5) i += 4;
      else return undefined;
    }
  } catch {
    return undefined;
  }
  return undefined;
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

  /** Why this request may not pass, or undefined when it may. */
  const inspect = (method: string, body: Buffer, encoding: string | undefined): string | undefined => {
    if (!WORKER_RPCS.has(method))
      return `${method.replace(/^\//, '')} is not a worker RPC of task queue ${options.taskQueue}`;
    const messages = grpcMessages(body, encoding);
    if (!messages || messages.length !== 1) return 'request body is compressed or malformed';
    const message = messages[0]!;
    if (method === `${service}PollActivityTaskQueue`) {
      const request = api.PollActivityTaskQueueRequest.decode(message);
      if (request.namespace !== options.namespace || request.taskQueue?.name !== options.taskQueue) {
        return `polling ${request.namespace}/${request.taskQueue?.name} is not allowed (only ${options.namespace}/${options.taskQueue})`;
      }
    } else if (method === `${service}DescribeNamespace`) {
      if (api.DescribeNamespaceRequest.decode(message).namespace !== options.namespace)
        return 'only the sandbox namespace can be described';
    } else if (method === `${service}RecordWorkerHeartbeat` || method === `${service}ShutdownWorker`) {
      // Both carry the namespace in field 1, like DescribeNamespace.
      if (api.DescribeNamespaceRequest.decode(message).namespace !== options.namespace)
        return 'worker RPCs are for the sandbox namespace only';
    } else if (TOKEN_RPCS.has(method)) {
      const token = taskTokenOf(message);
      if (!token || !issuedTokens.has(token))
        return 'task token was not issued to this worker through the gate';
    }
    return undefined;
  };

  const server = options.tlsDir
    ? http2.createSecureServer({
        ...(await serverTls(options.tlsDir, 'gate-server')),
        requestCert: true,
        rejectUnauthorized: true,
      })
    : http2.createServer();
  server.on('stream', (stream, headers: IncomingHttpHeaders) => {
    const method = String(headers[':path'] ?? '');
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_REQUEST_BYTES) refuse(stream, method, 'request too large');
      else chunks.push(chunk);
    });
    stream.on('error', () => undefined);
    stream.on('end', () => {
      if (stream.headersSent || stream.destroyed) return;
      const body = Buffer.concat(chunks);
      const requestEncoding = headers['grpc-encoding'] as string | undefined;
      const why = inspect(method, body, requestEncoding);
      if (why) return refuse(stream, method, why);
      const forwarded: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(headers)) {
        if (value !== undefined && (!name.startsWith(':') || name === ':method' || name === ':path'))
          forwarded[name] = value;
      }
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
      let responseEncoding: string | undefined;
      request.on('response', (responseHeaders) => {
        if (gone()) return;
        const { ':status': status, ...rest } = responseHeaders;
        responseEncoding = responseHeaders['grpc-encoding'] as string | undefined;
        stream.respond({ ':status': status ?? 200, ...rest }, { waitForTrailers: true });
      });
      request.on('data', (chunk: Buffer) => {
        if (gone()) return;
        if (method === `${service}PollActivityTaskQueue`) response.push(chunk);
        stream.write(chunk);
      });
      request.on('trailers', (trailers) => {
        if (!gone()) stream.once('wantTrailers', () => stream.sendTrailers(trailers));
      });
      request.on('end', () => {
        if (gone()) return;
        if (method === `${service}PollActivityTaskQueue` && response.length) {
          const [message] = grpcMessages(Buffer.concat(response), responseEncoding) ?? [];
          const token = message && api.PollActivityTaskQueueResponse.decode(message).taskToken;
          if (token?.length) issuedTokens.add(Buffer.from(token as Uint8Array).toString('base64'));
        }
        if (FINAL_RPCS.has(method)) {
          const [message] = grpcMessages(body, requestEncoding) ?? [];
          const token = message && taskTokenOf(message);
          if (token) issuedTokens.delete(token);
        }
        stream.end();
      });
      request.end(body);
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
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
