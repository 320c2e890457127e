/**
 * The two Google endpoints firebase-admin 13 calls to send one message, served locally over TLS
 * because Firebase is unreachable from here:
 *
 * - `POST https://oauth2.googleapis.com/token`: a form body with
 *   `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` and an RS256 `assertion` signed by
 *   the service account key (sent by google-auth-library's gtoken through gaxios/node-fetch);
 * - `POST https://fcm.googleapis.com/v1/projects/<project>/messages:send`: JSON `{message}` with a
 *   Bearer access token (sent by firebase-admin's own HTTP/1.1 client).
 *
 * Both are checked as Google would (signature, claims, issued token, project, body shape) and
 * answered with Google's error bodies, so firebase-admin's real requests and its real error
 * mapping are exercised. Answers per target are scriptable (`respondWith`, `respondOnce`).
 *
 * `agent` routes every connection here whatever host is asked, and trusts the local certificate.
 * Hand it to both `cert(serviceAccountPath, agent)` and `initializeApp({ httpAgent: agent })`.
 * Use the *path*: `cert(object, agent)` loses the agent on the way to the token request
 * (firebase-admin's populateGoogleAuth calls `auth.fromJSON(json)` without the client options),
 * so the token request would go to the real oauth2.googleapis.com; a file path takes the
 * `keyFilename` route, which keeps them.
 */
import { execFile } from 'node:child_process';
import { createPublicKey, generateKeyPair, randomBytes, randomInt, verify } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { Agent, createServer, type RequestOptions } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { Waiters } from './waiters.js';

const OAUTH_HOST = 'oauth2.googleapis.com';
const FCM_HOST = 'fcm.googleapis.com';
const TOKEN_URI = `https://${OAUTH_HOST}/token`;
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const ACCEPTED_SCOPES = [
  'https://www.googleapis.com/auth/firebase.messaging',
  'https://www.googleapis.com/auth/cloud-platform',
];
const TOKEN_SECONDS = 3600;
const CLOCK_SKEW_SECONDS = 300;
const FCM_ERROR_TYPE = 'type.googleapis.com/google.firebase.fcm.v1.FcmError';

export interface ServiceAccount {
  type: 'service_account';
  project_id: string;
  private_key_id: string;
  private_key: string;
  client_email: string;
  client_id: string;
  auth_uri: string;
  token_uri: string;
  auth_provider_x509_cert_url: string;
  client_x509_cert_url: string;
  universe_domain: string;
}

/** How the send endpoint answers for one target. */
export type FcmAnswer = 'ok' | 'unregistered' | 'quota' | 'unavailable' | 'internal';

export interface FcmAnswerOptions {
  /** Sent as Retry-After; 'quota' always sends one (1 s unless set), others only when set. */
  retryAfterSeconds?: number;
}

/** What FCM v1 answers for each scripted failure: HTTP status, RPC status, message, FcmError code. */
const SCRIPTED_ERRORS: Record<Exclude<FcmAnswer, 'ok'>, [number, string, string, string]> = {
  unregistered: [404, 'NOT_FOUND', 'Requested entity was not found.', 'UNREGISTERED'],
  quota: [429, 'RESOURCE_EXHAUSTED', 'Quota exceeded for this message target.', 'QUOTA_EXCEEDED'],
  unavailable: [503, 'UNAVAILABLE', 'The service is currently unavailable.', 'UNAVAILABLE'],
  internal: [500, 'INTERNAL', 'Internal error encountered.', 'INTERNAL'],
};

export interface FcmSend {
  /** The registration token, topic or condition the message was addressed to. */
  target: string;
  headers: IncomingHttpHeaders;
  body: { message: Record<string, unknown>; validate_only?: boolean };
  /** The status answered. */
  status: number;
  /** ms on the `performance.timeOrigin + performance.now()` clock. */
  receivedAt: number;
}

export interface TokenGrant {
  claims: Record<string, unknown>;
  headers: IncomingHttpHeaders;
  accessToken: string;
  receivedAt: number;
}

export interface FcmRequest {
  method: string;
  host: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  status?: number;
  /** Why the request was refused, when it was. */
  refusal?: string;
  receivedAt: number;
}

export interface FcmServer {
  projectId: string;
  /** A generated service account, shaped like a downloaded key file. */
  serviceAccount: ServiceAccount;
  /**
   * The same as a JSON file. Pass this path, not the object, to `cert(path, agent)`: with an
   * object, firebase-admin 13.10 drops the agent for the token request (see the top of this file).
   */
  serviceAccountPath: string;
  /** Sends every connection to this server and trusts its certificate. */
  agent: Agent;
  /** The server's self-signed certificate (PEM). */
  ca: string;
  port: number;
  /** Well-formed, authorized sends, whatever was answered. */
  sends: FcmSend[];
  tokenGrants: TokenGrant[];
  /** Every request, refused ones included. */
  requests: FcmRequest[];
  /** Answer every send to `target` with `answer` from now on (the default is 'ok'). */
  respondWith(target: string, answer: FcmAnswer, options?: FcmAnswerOptions): void;
  /** Answer the next send to `target` with `answer`, then as before; calls queue up. */
  respondOnce(target: string, answer: FcmAnswer, options?: FcmAnswerOptions): void;
  /** The first send matching `predicate`, already received or yet to come. */
  waitFor(predicate: (send: FcmSend) => boolean, timeoutMs?: number): Promise<FcmSend>;
  close(): Promise<void>;
}

interface Scripted {
  answer: FcmAnswer;
  retryAfterSeconds?: number;
}

/** A refusal: the status, Google's JSON error body, and a line for `requests`. */
class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    message: string,
  ) {
    super(message);
  }
}

function oauthError(error: string, description: string): Refusal {
  return new Refusal(400, { error, error_description: description }, `${error}: ${description}`);
}

function googleError(code: number, status: string, message: string, details: unknown[] = []): Refusal {
  return new Refusal(code, { error: { code, message, status, details } }, `${status}: ${message}`);
}

function fcmError(code: number, status: string, message: string, errorCode: string): Refusal {
  return googleError(code, status, message, [{ '@type': FCM_ERROR_TYPE, errorCode }]);
}

export async function startFcmServer(): Promise<FcmServer> {
  const projectId = `countersign-test-${randomBytes(3).toString('hex')}`;
  const { privateKey, publicKey } = await promisify(generateKeyPair)('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const clientEmail = `firebase-adminsdk-local@${projectId}.iam.gserviceaccount.com`;
  const serviceAccount: ServiceAccount = {
    type: 'service_account',
    project_id: projectId,
    private_key_id: randomBytes(20).toString('hex'),
    private_key: privateKey,
    client_email: clientEmail,
    client_id: Array.from({ length: 21 }, (_, i) => randomInt(i === 0 ? 1 : 0, 10)).join(''),
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: TOKEN_URI,
    auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
    client_x509_cert_url: `https://www.googleapis.com/robot/v1/metadata/x509/${encodeURIComponent(clientEmail)}`,
    universe_domain: 'googleapis.com',
  };
  const accountKey = createPublicKey(publicKey);
  const accountDir = await mkdtemp(join(tmpdir(), 'countersign-fcm-'));
  const serviceAccountPath = join(accountDir, 'service-account.json');
  await writeFile(serviceAccountPath, JSON.stringify(serviceAccount, null, 2), { mode: 0o600 });
  const certificate = await selfSignedCertificate([`DNS:${OAUTH_HOST}`, `DNS:${FCM_HOST}`]);

  const sends: FcmSend[] = [];
  const tokenGrants: TokenGrant[] = [];
  const requests: FcmRequest[] = [];
  const issued = new Map<string, number>(); // access token -> expiry (unix s)
  const always = new Map<string, Scripted>();
  const once = new Map<string, Scripted[]>();
  const waiters = new Waiters(sends, (timeoutMs) => {
    const seen = requests.map(
      (r) => `${r.method} ${r.host}${r.path} -> ${r.status ?? '?'}${r.refusal ? ` (${r.refusal})` : ''}`,
    );
    return `FCM server: no matching send within ${timeoutMs} ms; requests so far: ${seen.join('; ') || 'none'}`;
  });

  const server = createServer({ key: certificate.key, cert: certificate.cert }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      res.writeHead(500, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 500, message: String(err), status: 'INTERNAL' } }));
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const host = (req.headers.host ?? '').replace(/:\d+$/, '');
    const entry: FcmRequest = {
      method: req.method ?? '',
      host,
      path: req.url ?? '',
      headers: req.headers,
      body: await readBody(req),
      receivedAt: now(),
    };
    requests.push(entry);
    res.on('finish', () => (entry.status = res.statusCode));
    try {
      const sni = (req.socket as TLSSocket).servername;
      if (sni !== host)
        throw googleError(
          421,
          'MISDIRECTED',
          `TLS server name "${String(sni)}" does not match Host "${host}"`,
        );
      const send = /^\/v1\/projects\/([^/]+)\/messages:send$/.exec(entry.path);
      if (host === OAUTH_HOST && entry.path === '/token' && req.method === 'POST')
        return answer(res, 200, grantToken(entry));
      if (host === FCM_HOST && send && req.method === 'POST') return sendMessage(res, entry, send[1] ?? '');
      throw googleError(404, 'NOT_FOUND', `no ${req.method} ${entry.path} on ${host} here`);
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      entry.refusal = err.message;
      answer(res, err.status, err.body);
    }
  }

  function grantToken(entry: FcmRequest): unknown {
    const contentType = entry.headers['content-type'] ?? '';
    if (!contentType.startsWith('application/x-www-form-urlencoded'))
      throw oauthError(
        'invalid_request',
        `Content-Type must be application/x-www-form-urlencoded, not "${contentType}"`,
      );
    const form = new URLSearchParams(entry.body);
    const grantType = form.get('grant_type');
    if (grantType !== JWT_BEARER)
      throw oauthError('unsupported_grant_type', `Invalid grant_type: ${grantType}`);
    const claims = verifyAssertion(form.get('assertion') ?? '');
    const accessToken = `ya29.local-${randomBytes(32).toString('base64url')}`;
    issued.set(accessToken, unixNow() + TOKEN_SECONDS);
    tokenGrants.push({ claims, headers: entry.headers, accessToken, receivedAt: entry.receivedAt });
    return { access_token: accessToken, expires_in: TOKEN_SECONDS, token_type: 'Bearer' };
  }

  /** Google's checks on a JWT-bearer assertion (RFC 7523), returning its claims. */
  function verifyAssertion(assertion: string): Record<string, unknown> {
    const parts = assertion.split('.');
    if (parts.length !== 3 || !parts.every((p) => /^[A-Za-z0-9_-]+$/.test(p)))
      throw oauthError('invalid_grant', 'Invalid JWT: the assertion is not three base64url parts');
    const [header, payload, signature] = parts as [string, string, string];
    const head = parseJsonPart(header);
    if (head?.alg !== 'RS256')
      throw oauthError('invalid_grant', `Invalid JWT: alg must be RS256, not ${String(head?.alg)}`);
    if (
      !verify(
        'RSA-SHA256',
        Buffer.from(`${header}.${payload}`),
        accountKey,
        Buffer.from(signature, 'base64url'),
      )
    )
      throw oauthError('invalid_grant', 'Invalid JWT Signature.');
    const claims = parseJsonPart(payload);
    if (!claims) throw oauthError('invalid_grant', 'Invalid JWT: the claims are not a JSON object');
    if (claims.iss !== clientEmail)
      throw oauthError('invalid_grant', `Invalid JWT: iss is ${String(claims.iss)}, expected ${clientEmail}`);
    if (claims.aud !== TOKEN_URI)
      throw oauthError('invalid_grant', `Invalid JWT: aud is ${String(claims.aud)}, expected ${TOKEN_URI}`);
    const scopes = typeof claims.scope === 'string' ? claims.scope.split(' ') : [];
    if (!ACCEPTED_SCOPES.some((s) => scopes.includes(s)))
      throw oauthError(
        'invalid_scope',
        `scope "${String(claims.scope)}" grants neither ${ACCEPTED_SCOPES.join(' nor ')}`,
      );
    const { iat, exp } = claims;
    const current = unixNow();
    if (
      typeof iat !== 'number' ||
      typeof exp !== 'number' ||
      Math.abs(iat - current) > CLOCK_SKEW_SECONDS ||
      exp <= current ||
      exp - iat > TOKEN_SECONDS
    )
      throw oauthError(
        'invalid_grant',
        'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.',
      );
    return claims;
  }

  function sendMessage(res: ServerResponse, entry: FcmRequest, project: string): void {
    const bearer = /^Bearer (.+)$/.exec(entry.headers.authorization ?? '')?.[1];
    const expiry = bearer === undefined ? undefined : issued.get(bearer);
    if (expiry === undefined || expiry <= unixNow())
      throw googleError(
        401,
        'UNAUTHENTICATED',
        'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
      );
    if (project !== projectId)
      throw googleError(
        403,
        'PERMISSION_DENIED',
        `Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/${project}' (or it may not exist).`,
      );
    const contentType = entry.headers['content-type'] ?? '';
    if (!contentType.startsWith('application/json'))
      throw invalidArgument('', `Content-Type must be application/json, not "${contentType}"`);
    const { body, target } = parseSendBody(entry.body);
    const scripted = once.get(target)?.shift() ?? always.get(target) ?? { answer: 'ok' };
    const [status, answerBody, headers] = scriptedAnswer(scripted, body.validate_only === true);
    const send: FcmSend = { target, headers: entry.headers, body, status, receivedAt: entry.receivedAt };
    sends.push(send);
    waiters.notify(send);
    answer(res, status, answerBody, headers);
  }

  function scriptedAnswer(
    { answer: kind, retryAfterSeconds }: Scripted,
    validateOnly: boolean,
  ): [number, unknown, Record<string, string>] {
    if (kind === 'ok') {
      const id = validateOnly ? 'fake_message_id' : `0:${Date.now()}${randomBytes(8).toString('hex')}`;
      return [200, { name: `projects/${projectId}/messages/${id}` }, {}];
    }
    const refusal = fcmError(...SCRIPTED_ERRORS[kind]);
    const seconds = kind === 'quota' ? (retryAfterSeconds ?? 1) : retryAfterSeconds;
    return [refusal.status, refusal.body, seconds === undefined ? {} : { 'Retry-After': String(seconds) }];
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const agent = new LoopbackAgent(port, certificate.cert);

  return {
    projectId,
    serviceAccount,
    serviceAccountPath,
    agent,
    ca: certificate.cert,
    port,
    sends,
    tokenGrants,
    requests,
    respondWith(target, answer, options = {}) {
      always.set(target, { answer, ...options });
    },
    respondOnce(target, answer, options = {}) {
      once.set(target, [...(once.get(target) ?? []), { answer, ...options }]);
    },
    waitFor: (predicate, timeoutMs) => waiters.waitFor(predicate, timeoutMs),
    async close() {
      agent.destroy();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await certificate.remove();
      await rm(accountDir, { recursive: true, force: true });
    },
  };
}

/** An https.Agent that connects to 127.0.0.1:<port> whatever host is asked, keeping its TLS name. */
class LoopbackAgent extends Agent {
  constructor(
    private readonly port: number,
    private readonly caPem: string,
  ) {
    super({ keepAlive: false });
  }

  override createConnection(options: RequestOptions): TLSSocket {
    const servername = options.servername ?? options.hostname ?? options.host ?? undefined;
    return connect({ host: '127.0.0.1', port: this.port, servername, ca: this.caPem });
  }
}

const MESSAGE_FIELDS = [
  'name',
  'data',
  'notification',
  'android',
  'webpush',
  'apns',
  'fcm_options',
  'token',
  'topic',
  'condition',
];
const NOTIFICATION_FIELDS = ['title', 'body', 'image'];
const ANDROID_FIELDS = [
  'collapse_key',
  'priority',
  'ttl',
  'restricted_package_name',
  'data',
  'notification',
  'fcm_options',
  'direct_boot_ok',
  'bandwidth_constrained_ok',
  'restricted_satellite_ok',
];
const WEBPUSH_FIELDS = ['headers', 'data', 'notification', 'fcm_options'];
const APNS_FIELDS = ['headers', 'payload', 'fcm_options', 'live_activity_token'];

function invalidArgument(field: string, description: string): Refusal {
  return googleError(400, 'INVALID_ARGUMENT', `Invalid JSON payload received. ${description}`, [
    { '@type': FCM_ERROR_TYPE, errorCode: 'INVALID_ARGUMENT' },
    { '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations: [{ field, description }] },
  ]);
}

/** The checks FCM v1 makes on `{message, validate_only}`; proto3 JSON accepts camelCase and snake_case names. */
function parseSendBody(text: string): { body: FcmSend['body']; target: string } {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw invalidArgument('', 'the body is not JSON');
  }
  const message = isRecord(body) ? body.message : undefined;
  if (!isRecord(body) || !isRecord(message))
    throw invalidArgument('message', 'a "message" object is required');
  checkFields(body, ['message', 'validate_only'], '');
  checkFields(message, MESSAGE_FIELDS, 'message');
  for (const [key, fields] of [
    ['notification', NOTIFICATION_FIELDS],
    ['android', ANDROID_FIELDS],
    ['webpush', WEBPUSH_FIELDS],
    ['apns', APNS_FIELDS],
  ] as const) {
    const part = message[key];
    if (part === undefined) continue;
    if (!isRecord(part)) throw invalidArgument(`message.${key}`, `message.${key} must be an object`);
    checkFields(part, fields, `message.${key}`);
  }
  checkStringMap(message.data, 'message.data');
  checkStringMap(isRecord(message.android) ? message.android.data : undefined, 'message.android.data');
  checkStringMap(isRecord(message.webpush) ? message.webpush.headers : undefined, 'message.webpush.headers');
  checkStringMap(isRecord(message.webpush) ? message.webpush.data : undefined, 'message.webpush.data');
  const targets = (['token', 'topic', 'condition'] as const).filter((k) => message[k] !== undefined);
  const [targetKey] = targets;
  const target = targetKey === undefined ? undefined : message[targetKey];
  if (targets.length !== 1 || typeof target !== 'string' || target === '')
    throw invalidArgument('message', 'exactly one of token, topic or condition must be a non-empty string');
  return { body: body as FcmSend['body'], target };
}

function checkFields(value: Record<string, unknown>, known: readonly string[], at: string): void {
  for (const key of Object.keys(value)) {
    const snake = key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    if (!known.includes(snake))
      throw invalidArgument(at, `Unknown name "${key}" at '${at || 'body'}': Cannot find field.`);
  }
}

function checkStringMap(value: unknown, at: string): void {
  if (value === undefined) return;
  if (!isRecord(value) || !Object.values(value).every((v) => typeof v === 'string'))
    throw invalidArgument(at, `${at} must map strings to strings`);
}

function parseJsonPart(part: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return isRecord(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

function answer(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { ...headers, 'Content-Type': 'application/json; charset=UTF-8' });
  res.end(JSON.stringify(body));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const unixNow = () => Math.floor(Date.now() / 1000);
const now = () => performance.timeOrigin + performance.now();

export interface SelfSignedCertificate {
  key: string;
  cert: string;
  /** The certificate as a file, e.g. for NODE_EXTRA_CA_CERTS in a child process. */
  certPath: string;
  remove(): Promise<void>;
}

/**
 * A fresh P-256 certificate signed by itself, made with the openssl CLI (Node cannot issue
 * certificates). `subjectAltNames` in openssl syntax: `DNS:example.com`, `IP:127.0.0.1`.
 */
export async function selfSignedCertificate(subjectAltNames: string[]): Promise<SelfSignedCertificate> {
  const dir = await mkdtemp(join(tmpdir(), 'countersign-tls-'));
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  // prettier-ignore
  const args = [
    'req', '-x509', '-nodes', '-days', '2',
    '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-keyout', keyPath, '-out', certPath,
    '-subj', '/CN=countersign local test server',
    '-addext', `subjectAltName=${subjectAltNames.join(',')}`,
  ];
  try {
    await promisify(execFile)('openssl', args);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(
      `could not make a self-signed certificate with the openssl CLI (is openssl installed?): ${(err as Error).message}`,
    );
  }
  return {
    key: await readFile(keyPath, 'utf8'),
    cert: await readFile(certPath, 'utf8'),
    certPath,
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
