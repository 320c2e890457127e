/**
 * A local push service endpoint that checks and decrypts Web Push requests, so tests see exactly
 * what our sender (the `web-push` npm package) puts on the wire. It is an independent reading of
 * the RFCs, written here with node:crypto, not the sender's own libraries:
 *
 * - RFC 8030 (Web Push): `TTL` required, `Urgency` and `Topic` checked, 201 Created + Location;
 * - RFC 8292 (VAPID): `Authorization: vapid t=<JWT>, k=<key>`, ES256 JWT verified against k,
 *   `aud` = this origin, `exp` within 24 h, `sub` mailto: or https:;
 * - RFC 8291 + RFC 8188 (message encryption): the aes128gcm body is decrypted with the
 *   subscription's private key and auth secret.
 *
 * Anything malformed is refused with a 400 whose text says what is wrong; an unknown subscription
 * gets 404 like an expired one. Answers per subscription are scriptable (`respondWith`).
 *
 * It serves HTTPS, as every real push service does: web-push 3.6 always sends with
 * `https.request`, whatever the endpoint's scheme, so a plain-HTTP endpoint would be unreachable.
 * Senders trust the self-signed certificate through `agent` (web-push's `agent` option) or,
 * in a child process, `NODE_EXTRA_CA_CERTS=<caPath>`.
 */
import {
  createDecipheriv,
  createECDH,
  createPublicKey,
  hkdfSync,
  randomBytes,
  verify,
  type ECDH,
  type KeyObject,
} from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { Agent, createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { selfSignedCertificate } from './fcm-server.js';
import { Waiters } from './waiters.js';

export interface PushSubscriptionJson {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

/** 'ok' = 201 Created, 'gone' = 410, 'not_found' = 404. */
export type PushAnswer = 'ok' | 'gone' | 'not_found' | { status: number; retryAfterSeconds?: number };

export interface PushDelivery {
  subscriptionEndpoint: string;
  headers: IncomingHttpHeaders;
  ttl: number;
  urgency?: string;
  topic?: string;
  vapidSubject: string;
  /** base64url, as in the `k=` parameter */
  vapidPublicKey: string;
  payloadText: string;
  /** `payloadText` parsed as JSON, or undefined when it is not JSON. */
  payload: unknown;
  /** The status answered (see `respondWith`). */
  status: number;
  /** ms on the `performance.timeOrigin + performance.now()` clock. */
  receivedAt: number;
}

export interface PushRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  status?: number;
  /** Why the request was refused, when it was. */
  refusal?: string;
  receivedAt: number;
}

export interface WebPushEndpoint {
  /** `https://127.0.0.1:<port>` */
  url: string;
  /** An https.Agent trusting this endpoint's certificate (pass as web-push's `agent` option). */
  agent: Agent;
  /** The self-signed certificate, PEM and as a file. */
  ca: string;
  caPath: string;
  /** Requests that were well formed and decrypted, whatever was answered. */
  deliveries: PushDelivery[];
  /** Every request, refused ones included. */
  requests: PushRequest[];
  /** A new subscription as a browser's `PushSubscription.toJSON()` gives it. */
  createSubscription(): PushSubscriptionJson;
  respondWith(endpoint: string, answer: PushAnswer): void;
  /** The first delivery matching `predicate`, already received or yet to come. */
  waitFor(predicate: (delivery: PushDelivery) => boolean, timeoutMs?: number): Promise<PushDelivery>;
  close(): Promise<void>;
}

interface Subscription {
  endpoint: string;
  receiver: ECDH;
  authSecret: Buffer;
  answer: PushAnswer;
}

/** Push services must accept 4096 bytes of body (RFC 8030 §7.2) and may refuse more. */
const MAX_BODY_BYTES = 4096;
const MAX_VAPID_SECONDS = 24 * 60 * 60;
const URGENCIES = ['very-low', 'low', 'normal', 'high'];
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const TAG_BYTES = 16;
const KEY_BYTES = 65;
const HEADER_BYTES = 16 + 4 + 1 + KEY_BYTES;

class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const refuse = (message: string) => new Refusal(400, message);

export async function startWebPushEndpoint(): Promise<WebPushEndpoint> {
  const certificate = await selfSignedCertificate(['IP:127.0.0.1', 'DNS:localhost']);
  const subscriptions = new Map<string, Subscription>();
  const deliveries: PushDelivery[] = [];
  const requests: PushRequest[] = [];
  const waiters = new Waiters(deliveries, (timeoutMs) => {
    const seen = requests.map(
      (r) => `${r.method} ${r.path} -> ${r.status ?? '?'}${r.refusal ? ` (${r.refusal})` : ''}`,
    );
    return `push endpoint: no matching delivery within ${timeoutMs} ms; requests so far: ${seen.join('; ') || 'none'}`;
  });

  const server = createServer({ key: certificate.key, cert: certificate.cert }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end(`push endpoint failed: ${String(err)}`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const entry: PushRequest = {
      method: req.method ?? '',
      path: req.url ?? '',
      headers: req.headers,
      receivedAt: now(),
    };
    requests.push(entry);
    res.on('finish', () => (entry.status = res.statusCode));
    const body = await readBody(req);
    try {
      const id = /^\/push\/([A-Za-z0-9_-]+)$/.exec(entry.path)?.[1];
      if (id === undefined) throw new Refusal(404, `no such resource: ${entry.path}`);
      if (req.method !== 'POST') throw new Refusal(405, `${req.method} is not allowed: push with POST`);
      const subscription = subscriptions.get(id);
      if (!subscription) throw new Refusal(404, 'no such subscription: it expired or was never created here');
      const delivery = check(req, body, subscription, entry.receivedAt);
      const [status, headers] = answerFor(subscription.answer, delivery.ttl);
      delivery.status = status;
      deliveries.push(delivery);
      waiters.notify(delivery);
      res.writeHead(status, headers);
      res.end();
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      entry.refusal = err.message;
      res.writeHead(err.status, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(err.message);
    }
  }

  function check(
    req: IncomingMessage,
    body: Buffer,
    subscription: Subscription,
    receivedAt: number,
  ): PushDelivery {
    const headers = req.headers;
    const encoding = headers['content-encoding'];
    if (encoding !== 'aes128gcm')
      throw refuse(
        encoding === 'aesgcm'
          ? 'Content-Encoding aesgcm is the obsolete draft scheme; only aes128gcm (RFC 8188, RFC 8291) is accepted'
          : `Content-Encoding must be aes128gcm, got ${encoding === undefined ? 'none' : `"${encoding}"`}`,
      );
    const ttl = single(headers.ttl);
    if (ttl === undefined) throw refuse('missing TTL header (RFC 8030 §5.2 requires it)');
    if (!/^\d+$/.test(ttl))
      throw refuse(`TTL must be a non-negative integer number of seconds, got "${ttl}"`);
    const urgency = single(headers.urgency);
    if (urgency !== undefined && !URGENCIES.includes(urgency))
      throw refuse(`Urgency must be one of ${URGENCIES.join(', ')}, got "${urgency}"`);
    const topic = single(headers.topic);
    if (topic !== undefined && !(topic.length <= 32 && BASE64URL.test(topic)))
      throw refuse(`Topic must be at most 32 characters of the URL-safe base64 alphabet, got "${topic}"`);
    const vapid = verifyVapid(headers.authorization, new URL(subscription.endpoint).origin);
    if (body.length > MAX_BODY_BYTES)
      throw new Refusal(413, `payload too large: ${body.length} bytes, the limit is ${MAX_BODY_BYTES}`);
    const plain = decrypt(body, subscription.receiver, subscription.authSecret);
    const payloadText = plain.toString('utf8');
    return {
      subscriptionEndpoint: subscription.endpoint,
      headers,
      ttl: Number(ttl),
      urgency,
      topic,
      vapidSubject: vapid.subject,
      vapidPublicKey: vapid.publicKey,
      payloadText,
      payload: parseJson(payloadText),
      status: 0,
      receivedAt,
    };
  }

  const agent = new Agent({ ca: certificate.cert, keepAlive: false });

  return {
    url: origin,
    agent,
    ca: certificate.cert,
    caPath: certificate.certPath,
    deliveries,
    requests,
    createSubscription() {
      const receiver = createECDH('prime256v1');
      receiver.generateKeys();
      const authSecret = randomBytes(16);
      const id = randomBytes(16).toString('base64url');
      const endpoint = `${origin}/push/${id}`;
      subscriptions.set(id, { endpoint, receiver, authSecret, answer: 'ok' });
      return {
        endpoint,
        keys: {
          p256dh: receiver.getPublicKey().toString('base64url'),
          auth: authSecret.toString('base64url'),
        },
      };
    },
    respondWith(endpoint, answer) {
      const subscription = [...subscriptions.values()].find((s) => s.endpoint === endpoint);
      if (!subscription) throw new Error(`push endpoint: no subscription ${endpoint} was created here`);
      subscription.answer = answer;
    },
    waitFor: (predicate, timeoutMs) => waiters.waitFor(predicate, timeoutMs),
    async close() {
      agent.destroy();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await certificate.remove();
    },
  };

  function answerFor(answer: PushAnswer, ttl: number): [number, Record<string, string>] {
    if (answer === 'ok')
      return [
        201,
        { Location: `${origin}/message/${randomBytes(12).toString('base64url')}`, TTL: String(ttl) },
      ];
    if (answer === 'gone') return [410, {}];
    if (answer === 'not_found') return [404, {}];
    return [
      answer.status,
      answer.retryAfterSeconds === undefined ? {} : { 'Retry-After': String(answer.retryAfterSeconds) },
    ];
  }
}

/** RFC 8292: checks `vapid t=<JWT>, k=<key>` and returns the JWT's subject and the key. */
function verifyVapid(header: string | undefined, audience: string): { subject: string; publicKey: string } {
  const scheme = /^vapid\s+(.+)$/i.exec(header ?? '');
  if (!scheme?.[1])
    throw refuse(
      header === undefined
        ? 'missing Authorization header: expected "vapid t=<JWT>, k=<public key>" (RFC 8292)'
        : `Authorization must use the vapid scheme (RFC 8292), got "${header.split(' ')[0]}"`,
    );
  const params = new Map(
    scheme[1].split(',').map((part) => {
      const [name = '', ...value] = part.trim().split('=');
      return [name.toLowerCase(), value.join('=')] as const;
    }),
  );
  const token = params.get('t');
  const publicKey = params.get('k');
  if (!token || !publicKey) throw refuse('the vapid Authorization needs both t=<JWT> and k=<public key>');
  const key = importPublicKey(publicKey);

  const parts = token.split('.');
  if (parts.length !== 3 || !parts.every((p) => BASE64URL.test(p)))
    throw refuse('the VAPID JWT is not three base64url parts');
  const [encodedHeader, encodedClaims, encodedSignature] = parts as [string, string, string];
  const jwtHeader = parseJson(Buffer.from(encodedHeader, 'base64url').toString('utf8'));
  if (!isRecord(jwtHeader) || jwtHeader.alg !== 'ES256')
    throw refuse(`the VAPID JWT must use alg ES256, its header is ${JSON.stringify(jwtHeader)}`);
  if (jwtHeader.typ !== undefined && jwtHeader.typ !== 'JWT')
    throw refuse(`the VAPID JWT typ must be JWT, got ${JSON.stringify(jwtHeader.typ)}`);
  const signature = Buffer.from(encodedSignature, 'base64url');
  if (signature.length !== 64)
    throw refuse(
      `the VAPID JWT signature is ${signature.length} bytes; ES256 in JOSE form is r||s, 64 bytes (not DER)`,
    );
  const signed = Buffer.from(`${encodedHeader}.${encodedClaims}`);
  if (!verify('sha256', signed, { key, dsaEncoding: 'ieee-p1363' }, signature))
    throw refuse('the VAPID JWT signature does not verify with the public key k');

  const claims = parseJson(Buffer.from(encodedClaims, 'base64url').toString('utf8'));
  if (!isRecord(claims)) throw refuse('the VAPID JWT claims are not a JSON object');
  if (claims.aud !== audience)
    throw refuse(
      `the VAPID JWT aud is ${JSON.stringify(claims.aud)}, but this push service's origin is "${audience}"`,
    );
  const current = Math.floor(Date.now() / 1000);
  if (typeof claims.exp !== 'number' || !Number.isInteger(claims.exp))
    throw refuse('the VAPID JWT needs an integer exp (seconds since the epoch)');
  if (claims.exp <= current) throw refuse(`the VAPID JWT expired ${current - claims.exp} s ago`);
  if (claims.exp > current + MAX_VAPID_SECONDS)
    throw refuse(`the VAPID JWT exp is ${claims.exp - current} s ahead; RFC 8292 allows at most 24 h`);
  const subject = claims.sub;
  if (typeof subject !== 'string' || !(subject.startsWith('mailto:') || subject.startsWith('https:')))
    throw refuse(`the VAPID JWT sub must be a mailto: or https: URI, got ${JSON.stringify(subject)}`);
  return { subject, publicKey };
}

function importPublicKey(encoded: string): KeyObject {
  const raw = BASE64URL.test(encoded) ? Buffer.from(encoded, 'base64url') : Buffer.alloc(0);
  if (raw.length !== KEY_BYTES || raw[0] !== 0x04)
    throw refuse(
      'k must be the base64url (no padding) uncompressed P-256 public key: 65 bytes starting 0x04',
    );
  try {
    return createPublicKey({
      key: {
        kty: 'EC',
        crv: 'P-256',
        x: raw.subarray(1, 33).toString('base64url'),
        y: raw.subarray(33).toString('base64url'),
      },
      format: 'jwk',
    });
  } catch {
    throw refuse('k is not a point on the P-256 curve');
  }
}

/**
 * RFC 8291 + RFC 8188 aes128gcm: header salt(16) | rs(4) | idlen(1) | keyid (the sender's
 * 65-byte ephemeral public key), then records of rs bytes, each AES-128-GCM with its own nonce.
 */
function decrypt(body: Buffer, receiver: ECDH, authSecret: Buffer): Buffer {
  if (body.length < HEADER_BYTES + TAG_BYTES + 1)
    throw refuse(`the body is ${body.length} bytes, too short for an aes128gcm header and one record`);
  const salt = body.subarray(0, 16);
  const recordSize = body.readUInt32BE(16);
  const idLength = body[20];
  if (idLength !== KEY_BYTES)
    throw refuse(
      `the aes128gcm keyid is ${idLength} bytes; RFC 8291 requires the sender's 65-byte public key`,
    );
  if (recordSize < TAG_BYTES + 2)
    throw refuse(`the aes128gcm record size ${recordSize} is below the minimum of 18`);
  const senderKey = body.subarray(21, HEADER_BYTES);
  let ecdhSecret: Buffer;
  try {
    ecdhSecret = receiver.computeSecret(senderKey);
  } catch {
    throw refuse("the aes128gcm keyid is not a valid P-256 public key (the sender's ephemeral key)");
  }
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), receiver.getPublicKey(), senderKey]);
  const ikm = Buffer.from(hkdfSync('sha256', ecdhSecret, authSecret, keyInfo, 32));
  const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16));
  const baseNonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12));

  const records = body.subarray(HEADER_BYTES);
  const plain: Buffer[] = [];
  for (let sequence = 0, offset = 0; offset < records.length; sequence++, offset += recordSize) {
    const record = records.subarray(offset, offset + recordSize);
    const last = offset + recordSize >= records.length;
    if (record.length <= TAG_BYTES) throw refuse(`aes128gcm record ${sequence} is too short to hold a tag`);
    const decipher = createDecipheriv('aes-128-gcm', cek, recordNonce(baseNonce, sequence));
    decipher.setAuthTag(record.subarray(record.length - TAG_BYTES));
    let padded: Buffer;
    try {
      padded = Buffer.concat([
        decipher.update(record.subarray(0, record.length - TAG_BYTES)),
        decipher.final(),
      ]);
    } catch {
      throw refuse(
        `decryption failed: aes128gcm record ${sequence} does not authenticate ` +
          '(wrong subscription keys or auth secret, or the body was altered)',
      );
    }
    let end = padded.length - 1;
    while (end >= 0 && padded[end] === 0) end--;
    const expected = last ? 2 : 1;
    if (padded[end] !== expected)
      throw refuse(
        `aes128gcm record ${sequence} has padding delimiter ${padded[end] ?? 'none'}; ` +
          `the ${last ? 'last' : 'non-last'} record needs 0x0${expected}`,
      );
    plain.push(padded.subarray(0, end));
  }
  return Buffer.concat(plain);
}

/** RFC 8188 §2.3: the record's sequence number XORed into the last bytes of the base nonce. */
function recordNonce(base: Buffer, sequence: number): Buffer {
  const nonce = Buffer.from(base);
  for (let i = 0, rest = sequence; i < 6 && rest > 0; i++, rest = Math.floor(rest / 256))
    nonce[11 - i] = (nonce[11 - i] ?? 0) ^ (rest % 256);
  return nonce;
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const now = () => performance.timeOrigin + performance.now();
