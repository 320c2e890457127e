/**
 * A local server speaking the ntfy protocol (as ntfy ≥ 2.16), for tests and benches that check the
 * exact requests our notification code sends. The real ntfy server cannot be installed on this
 * machine, so this is the other side of the wire, not a mock of our code: it parses strictly,
 * refuses malformed requests with ntfy-style error JSON, streams to real HTTP subscribers, and
 * can be told to fail (connections refused, or a chosen status such as 429 with Retry-After).
 *
 * Implemented: JSON publishing (`POST /`), plain publishing (`POST|PUT /<topic>` with X-* headers),
 * updates by sequence id, `PUT /<topic>/<sequence_id>/clear`, `DELETE /<topic>/<sequence_id>`,
 * `GET /<topic>/json` (streaming, or `poll=1`, with `since`), bearer-token auth, `GET /v1/health`.
 * Not implemented: attachments, e-mail and calls, delayed delivery, SSE/WebSocket/raw streams,
 * several topics in one subscription, subscription filters.
 *
 * `subscribe()` at the bottom is a real subscriber, reading `GET /<topic>/json` the way the phone
 * app does, so a test can observe delivery rather than only publication.
 */
import { randomInt } from 'node:crypto';
import {
  createServer,
  request,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { Waiters } from './waiters.js';

export type NtfyEventType = 'open' | 'keepalive' | 'message' | 'message_clear' | 'message_delete';

export type NtfyAction =
  | { id: string; action: 'view'; label: string; url: string; clear?: boolean }
  | {
      id: string;
      action: 'http';
      label: string;
      url: string;
      method?: string;
      headers?: Record<string, string>;
      body?: string;
      clear?: boolean;
    };

/** One event exactly as ntfy puts it on the wire. */
export interface NtfyMessage {
  id: string;
  time: number;
  expires?: number;
  event: NtfyEventType;
  topic: string;
  message?: string;
  title?: string;
  priority?: number;
  tags?: string[];
  click?: string;
  actions?: NtfyAction[];
  sequence_id?: string;
  content_type?: string;
}

/** An event and when it was seen, in ms on the `performance.timeOrigin + performance.now()` clock. */
export interface NtfyEvent extends NtfyMessage {
  receivedAt: number;
}

/** An event the server published, with the headers of the request that caused it. */
export interface PublishedEvent extends NtfyEvent {
  headers: IncomingHttpHeaders;
}

export interface NtfyRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** The status answered; absent while streaming or when the connection was dropped. */
  status?: number;
  receivedAt: number;
}

/** 'down': connections are refused (or reset); a status: publishes are answered with it. */
export type NtfyFault = 'none' | 'down' | { status: number; retryAfterSeconds?: number };

export interface NtfyServer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** Every message, clear and delete event, in order. */
  published: PublishedEvent[];
  /** Every request, including refused ones. */
  requests: NtfyRequest[];
  /** The first published event matching `predicate`, already published or yet to come. */
  waitFor(predicate: (event: PublishedEvent) => boolean, timeoutMs?: number): Promise<PublishedEvent>;
  /** Resolves once the listener is closed ('down') or listening again. */
  setFault(fault: NtfyFault): Promise<void>;
  close(): Promise<void>;
}

export interface NtfyServerOptions {
  /** When set, every request but the health check needs `Authorization: Bearer <token>`. */
  token?: string;
  port?: number;
  /** ntfy's default is 45 s; ours is 25 s. */
  keepaliveSeconds?: number;
}

const NAME = /^[-_A-Za-z0-9]{1,64}$/;
const MESSAGE_ID = /^[-_A-Za-z0-9]{12}$/;
const MAX_MESSAGE_BYTES = 4096;
const MAX_REQUEST_BYTES = 64 * 1024;
const CACHE_SECONDS = 12 * 60 * 60;
const MAX_ACTIONS = 3;
const PRIORITY_NAMES: Record<string, number> = { min: 1, low: 2, default: 3, high: 4, max: 5, urgent: 5 };
const JSON_FIELDS = new Set([
  'topic',
  'message',
  'title',
  'priority',
  'tags',
  'click',
  'actions',
  'sequence_id',
  'markdown',
]);
const ACTION_FIELDS: Record<string, Set<string>> = {
  view: new Set(['action', 'label', 'url', 'clear']),
  http: new Set(['action', 'label', 'url', 'method', 'headers', 'body', 'clear']),
};

/** The clock every receivedAt uses, in ms; comparable across processes on this machine. */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

const unixNow = () => Math.floor(Date.now() / 1000);

/** A refusal with ntfy's error shape: `{"code":40001,"http":400,"error":"..."}`. */
class NtfyError extends Error {
  constructor(
    readonly http: number,
    readonly code: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const badRequest = (message: string) => new NtfyError(400, 40001, `invalid request: ${message}`);

interface PublishFields {
  message?: string;
  title?: string;
  priority?: number;
  tags?: string[];
  click?: string;
  actions?: NtfyAction[];
  sequenceId?: string;
  markdown?: boolean;
}

export async function startNtfyServer(options: NtfyServerOptions = {}): Promise<NtfyServer> {
  const published: PublishedEvent[] = [];
  const cache: NtfyMessage[] = [];
  const requests: NtfyRequest[] = [];
  const listeners = new Map<string, Set<(message: NtfyMessage) => void>>();
  const waiters = new Waiters(
    published,
    (timeoutMs) =>
      `ntfy server: no matching event within ${timeoutMs} ms; published so far: ${summarize(published)}`,
  );
  const keepaliveMs = (options.keepaliveSeconds ?? 25) * 1000;
  let fault: NtfyFault = 'none';

  const server = createServer((req, res) => {
    if (fault === 'down') {
      req.socket.resetAndDestroy();
      return;
    }
    handle(req, res).catch((err: unknown) => answerError(res, err));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const entry: NtfyRequest = {
      method: req.method ?? '',
      path: req.url ?? '',
      headers: req.headers,
      body: '',
      receivedAt: now(),
    };
    requests.push(entry);
    res.on('finish', () => (entry.status = res.statusCode));
    const url = new URL(req.url ?? '/', 'http://ntfy.invalid');
    entry.body = await readBody(req);
    if (req.method === 'GET' && url.pathname === '/v1/health') return answerJson(res, 200, { healthy: true });
    authorize(req);

    const method = req.method ?? '';
    const [first = '', second, third, ...rest] = url.pathname.split('/').slice(1);
    const isPublish = method === 'POST' || method === 'PUT';
    if (first === '' && second === undefined && isPublish) {
      refuseByFault();
      const { topic, fields } = parseJsonPublish(entry.body);
      return answerJson(res, 200, publish(topic, fields, req.headers));
    }
    if (!NAME.test(first)) throw notFound();
    if (second === undefined && isPublish) {
      refuseByFault();
      return answerJson(res, 200, publish(first, parsePlainPublish(req, url, entry.body), req.headers));
    }
    if (second === 'json' && third === undefined && method === 'GET')
      return subscription(req, res, first, url);
    if (second !== undefined && NAME.test(second) && rest.length === 0) {
      if (third === 'clear' && method === 'PUT') {
        refuseByFault();
        return answerJson(res, 200, record(sequenceEvent('message_clear', first, second), req.headers));
      }
      if (third === undefined && method === 'DELETE') {
        refuseByFault();
        return answerJson(res, 200, record(sequenceEvent('message_delete', first, second), req.headers));
      }
    }
    throw notFound();
  }

  function authorize(req: IncomingMessage): void {
    if (options.token === undefined) return;
    if (req.headers.authorization !== `Bearer ${options.token}`)
      throw new NtfyError(401, 40101, 'unauthorized');
  }

  function refuseByFault(): void {
    if (typeof fault !== 'object') return;
    const headers: Record<string, string> =
      fault.retryAfterSeconds === undefined ? {} : { 'Retry-After': String(fault.retryAfterSeconds) };
    const text =
      fault.status === 429 ? 'limit reached: too many requests' : `scripted fault: HTTP ${fault.status}`;
    throw new NtfyError(fault.status, fault.status * 100 + 1, text, headers);
  }

  function publish(topic: string, fields: PublishFields, headers: IncomingHttpHeaders): NtfyMessage {
    const id = randomAlnum(12);
    const time = unixNow();
    const message = withoutUndefined<NtfyMessage>({
      id,
      time,
      expires: time + CACHE_SECONDS,
      event: 'message',
      topic,
      // ntfy's body for a publish without text
      message: fields.message || 'triggered',
      title: fields.title,
      priority: fields.priority,
      tags: fields.tags,
      click: fields.click,
      actions: fields.actions,
      sequence_id: fields.sequenceId ?? id,
      content_type: fields.markdown ? 'text/markdown' : undefined,
    });
    return record(message, headers);
  }

  function sequenceEvent(
    event: 'message_clear' | 'message_delete',
    topic: string,
    sequenceId: string,
  ): NtfyMessage {
    const time = unixNow();
    return {
      id: randomAlnum(12),
      time,
      expires: time + CACHE_SECONDS,
      event,
      topic,
      sequence_id: sequenceId,
    };
  }

  function record(message: NtfyMessage, headers: IncomingHttpHeaders): NtfyMessage {
    cache.push(message);
    const event: PublishedEvent = { ...message, receivedAt: now(), headers };
    published.push(event);
    for (const listener of listeners.get(message.topic) ?? []) listener(message);
    waiters.notify(event);
    return message;
  }

  function subscription(req: IncomingMessage, res: ServerResponse, topic: string, url: URL): void {
    const poll = isTrue(url.searchParams.get('poll') ?? req.headers['x-poll']?.toString());
    const old = since(url.searchParams.get('since') ?? (poll ? 'all' : undefined), topic);
    res.writeHead(200, {
      'Content-Type': 'application/x-ndjson; charset=utf-8',
      'Cache-Control': 'no-cache',
      'Access-Control-Allow-Origin': '*',
    });
    const send = (message: NtfyMessage) => res.write(`${JSON.stringify(message)}\n`);
    if (poll) {
      old.forEach(send);
      res.end();
      return;
    }
    const control = (event: 'open' | 'keepalive') =>
      send({ id: randomAlnum(12), time: unixNow(), event, topic });
    control('open');
    old.forEach(send);
    const topicListeners = listeners.get(topic) ?? new Set();
    listeners.set(topic, topicListeners);
    topicListeners.add(send);
    const keepalive = setInterval(() => control('keepalive'), keepaliveMs);
    keepalive.unref();
    res.on('close', () => {
      clearInterval(keepalive);
      topicListeners.delete(send);
    });
  }

  /** The cached events of `topic` selected by ntfy's `since` (all, latest, unix time, duration, id). */
  function since(value: string | undefined, topic: string): NtfyMessage[] {
    const events = cache.filter((m) => m.topic === topic);
    if (value === undefined || value === 'none') return [];
    if (value === 'all') return events;
    if (value === 'latest') return events.slice(-1);
    if (/^\d+$/.test(value)) return events.filter((m) => m.time >= Number(value));
    const duration = /^(\d+)([smhd])$/.exec(value);
    if (duration) {
      const unit = { s: 1, m: 60, h: 3600, d: 86400 }[duration[2] as 's' | 'm' | 'h' | 'd'];
      const from = unixNow() - Number(duration[1]) * unit;
      return events.filter((m) => m.time >= from);
    }
    if (MESSAGE_ID.test(value)) {
      // An id that is no longer (or never was) cached selects everything, as after a long absence.
      const index = events.findIndex((m) => m.id === value);
      return events.slice(index + 1);
    }
    throw badRequest(`since=${value} is not all, latest, a unix time, a duration like 10m, or a message id`);
  }

  function listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  function stopListening(): Promise<void> {
    if (!server.listening) return Promise.resolve();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    return closed;
  }

  await listen(options.port ?? 0);
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    published,
    requests,
    waitFor: (predicate, timeoutMs) => waiters.waitFor(predicate, timeoutMs),
    async setFault(next) {
      fault = next;
      if (next === 'down') await stopListening();
      else if (!server.listening) await listen(port);
    },
    close: stopListening,
  };
}

function parseJsonPublish(text: string): { topic: string; fields: PublishFields } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw badRequest('the body of a publish to / must be a JSON object (ntfy JSON publishing)');
  }
  if (!isRecord(value)) throw badRequest('the body of a publish to / must be a JSON object');
  for (const key of Object.keys(value)) if (!JSON_FIELDS.has(key)) throw badRequest(`unknown field "${key}"`);
  const topic = value.topic;
  if (typeof topic !== 'string' || !NAME.test(topic))
    throw badRequest('"topic" is required and must match ^[-_A-Za-z0-9]{1,64}$');
  const fields: PublishFields = {
    message: optional(value, 'message', 'a string', isString),
    title: optional(value, 'title', 'a string', isString),
    priority: optional(value, 'priority', 'an integer from 1 to 5', isPriority),
    tags: optional(value, 'tags', 'an array of strings', isStringArray),
    click: optional(value, 'click', 'a URL', isUrl),
    sequenceId: optional(value, 'sequence_id', 'a string matching ^[-_A-Za-z0-9]{1,64}$', isName),
    markdown: optional(value, 'markdown', 'a boolean', isBoolean),
  };
  if (value.actions !== undefined) fields.actions = parseActions(value.actions);
  checkMessageSize(fields.message);
  return { topic, fields };
}

function parseActions(value: unknown): NtfyAction[] {
  if (!Array.isArray(value)) throw badRequest('"actions" must be an array');
  if (value.length > MAX_ACTIONS) throw badRequest(`too many actions: ${value.length}, the limit is 3`);
  return value.map((item: unknown, i) => {
    const at = `actions[${i}]`;
    if (!isRecord(item)) throw badRequest(`${at} must be an object`);
    const allowed = typeof item.action === 'string' ? ACTION_FIELDS[item.action] : undefined;
    if (!allowed) throw badRequest(`${at}.action must be "view" or "http"`);
    for (const key of Object.keys(item))
      if (!allowed.has(key)) throw badRequest(`${at} has unknown field "${key}" for a ${item.action} action`);
    const label = item.label;
    if (typeof label !== 'string' || label === '') throw badRequest(`${at}.label must be a non-empty string`);
    const url = item.url;
    if (!isUrl(url)) throw badRequest(`${at}.url must be a URL`);
    const clear = optional(item, 'clear', 'a boolean', isBoolean, at);
    const id = randomAlnum(10);
    const action: NtfyAction =
      item.action === 'view'
        ? { id, action: 'view', label, url }
        : {
            id,
            action: 'http',
            label,
            url,
            method: optional(item, 'method', 'an upper-case HTTP method', isMethod, at),
            headers: optional(item, 'headers', 'an object of strings', isStringRecord, at),
            body: optional(item, 'body', 'a string', isString, at),
          };
    if (clear !== undefined) action.clear = clear;
    return withoutUndefined(action);
  });
}

function parsePlainPublish(req: IncomingMessage, url: URL, body: string): PublishFields {
  const param = (...names: string[]): string | undefined => {
    for (const name of names) {
      const header = req.headers[name];
      if (header !== undefined) return Array.isArray(header) ? header.join(', ') : header;
    }
    for (const name of names) {
      const query = url.searchParams.get(name.replace(/^x-/, ''));
      if (query !== null) return query;
    }
    return undefined;
  };
  const fields: PublishFields = { message: body === '' ? param('x-message', 'message', 'm') : body };
  checkMessageSize(fields.message);
  fields.title = param('x-title', 'title', 't');
  const priority = param('x-priority', 'priority', 'prio', 'p');
  if (priority !== undefined) {
    const parsed =
      PRIORITY_NAMES[priority.toLowerCase()] ?? (/^[1-5]$/.test(priority) ? Number(priority) : 0);
    if (!parsed)
      throw badRequest(`priority "${priority}" is not 1-5 or min, low, default, high, max, urgent`);
    fields.priority = parsed;
  }
  const tags = param('x-tags', 'tags', 'tag', 'ta');
  if (tags !== undefined)
    fields.tags = tags
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean);
  const click = param('x-click', 'click');
  if (click !== undefined) {
    if (!isUrl(click)) throw badRequest(`click "${click}" is not a URL`);
    fields.click = click;
  }
  const sequenceId = param('x-sequence-id', 'sequence-id', 'sid');
  if (sequenceId !== undefined) {
    if (!NAME.test(sequenceId))
      throw badRequest(`sequence id "${sequenceId}" must match ^[-_A-Za-z0-9]{1,64}$`);
    fields.sequenceId = sequenceId;
  }
  fields.markdown = isTrue(param('x-markdown', 'markdown', 'md'));
  return fields;
}

function checkMessageSize(message: string | undefined): void {
  const bytes = Buffer.byteLength(message ?? '');
  if (bytes > MAX_MESSAGE_BYTES)
    throw new NtfyError(413, 41301, `message too large: ${bytes} bytes, the limit is ${MAX_MESSAGE_BYTES}`);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_REQUEST_BYTES) chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > MAX_REQUEST_BYTES)
        reject(new NtfyError(413, 41301, `request body too large: ${size} bytes`));
      else resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', reject);
  });
}

function answerJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) {
  res.writeHead(status, { ...headers, 'Content-Type': 'application/json' });
  res.end(`${JSON.stringify(body)}\n`);
}

function answerError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (err instanceof NtfyError)
    return answerJson(res, err.http, { code: err.code, http: err.http, error: err.message }, err.headers);
  answerJson(res, 500, { code: 50001, http: 500, error: `internal error: ${String(err)}` });
}

const notFound = () => new NtfyError(404, 40401, 'page not found');

function optional<T>(
  from: Record<string, unknown>,
  key: string,
  expected: string,
  check: (value: unknown) => value is T,
  at?: string,
): T | undefined {
  const value = from[key];
  if (value === undefined) return undefined;
  if (!check(value)) throw badRequest(`${at ? `${at}.` : ''}"${key}" must be ${expected}`);
  return value;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const isString = (v: unknown): v is string => typeof v === 'string';
const isBoolean = (v: unknown): v is boolean => typeof v === 'boolean';
const isMethod = (v: unknown): v is string => isString(v) && /^[A-Z]+$/.test(v);
const isName = (v: unknown): v is string => isString(v) && NAME.test(v);
const isPriority = (v: unknown): v is number =>
  Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 5;
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every(isString);
const isStringRecord = (v: unknown): v is Record<string, string> =>
  isRecord(v) && Object.values(v).every(isString);
const isUrl = (v: unknown): v is string => isString(v) && URL.canParse(v);
const isTrue = (v: string | undefined) => v !== undefined && ['1', 'yes', 'true'].includes(v.toLowerCase());

/** Drops keys whose value is undefined, so they are absent from the JSON answer as in ntfy. */
function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
function randomAlnum(length: number): string {
  return Array.from({ length }, () => ALNUM[randomInt(ALNUM.length)]).join('');
}

function summarize(events: NtfyEvent[]): string {
  if (events.length === 0) return 'nothing';
  return events
    .map(
      (e) =>
        `${e.event} ${e.topic}${e.title === undefined ? '' : ` title=${JSON.stringify(e.title)}`}` +
        `${e.message === undefined ? '' : ` message=${JSON.stringify(e.message)}`} seq=${e.sequence_id ?? '-'}`,
    )
    .join('; ');
}

export interface NtfySubscriber {
  /** Every line received, `open` and `keepalive` included. */
  events: NtfyEvent[];
  /** The first received event matching `predicate`, already received or yet to come. */
  next(predicate: (event: NtfyEvent) => boolean, timeoutMs?: number): Promise<NtfyEvent>;
  close(): void;
}

/**
 * Subscribes to `topic` with `GET /<topic>/json`, as the ntfy phone app does, and resolves once
 * the server's `open` event has arrived, so anything published afterwards is delivered here.
 */
export function subscribe(url: string, topic: string, token?: string): Promise<NtfySubscriber> {
  const events: NtfyEvent[] = [];
  const waiters = new Set<{ predicate: (e: NtfyEvent) => boolean; settle: (e: NtfyEvent | Error) => void }>();
  let ended: string | undefined;

  const endAll = (why: string) => {
    ended = why;
    for (const waiter of waiters)
      waiter.settle(new Error(`ntfy subscription to ${topic} ${why}; received: ${summarize(events)}`));
  };

  return new Promise((resolve, reject) => {
    const req = request(
      `${url}/${topic}/json`,
      { agent: false, headers: token === undefined ? {} : { Authorization: `Bearer ${token}` } },
      (res) => {
        res.setEncoding('utf8');
        if (res.statusCode !== 200) {
          let text = '';
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () =>
            reject(new Error(`ntfy subscription to ${topic} refused: HTTP ${res.statusCode} ${text.trim()}`)),
          );
          return;
        }
        let buffered = '';
        res.on('data', (chunk: string) => {
          const receivedAt = now();
          buffered += chunk;
          const lines = buffered.split('\n');
          buffered = lines.pop() ?? '';
          for (const line of lines.filter((l) => l.trim() !== '')) {
            const event: NtfyEvent = { ...(JSON.parse(line) as NtfyMessage), receivedAt };
            events.push(event);
            if (event.event === 'open') resolve(subscriber);
            for (const waiter of waiters) if (waiter.predicate(event)) waiter.settle(event);
          }
        });
        res.on('close', () => {
          reject(new Error(`ntfy subscription to ${topic} closed before the open event`));
          endAll('ended (the server closed the stream)');
        });
      },
    );
    req.on('error', (err) => {
      reject(new Error(`ntfy subscription to ${topic} failed: ${err.message}`));
      endAll(`failed: ${err.message}`);
    });
    req.end();

    const subscriber: NtfySubscriber = {
      events,
      next(predicate, timeoutMs = 5000) {
        const found = events.find(predicate);
        if (found) return Promise.resolve(found);
        if (ended !== undefined)
          return Promise.reject(
            new Error(`ntfy subscription to ${topic} ${ended}; received: ${summarize(events)}`),
          );
        return new Promise((resolveNext, rejectNext) => {
          const waiter = {
            predicate,
            settle: (result: NtfyEvent | Error) => {
              clearTimeout(timer);
              waiters.delete(waiter);
              if (result instanceof Error) rejectNext(result);
              else resolveNext(result);
            },
          };
          const timer = setTimeout(
            () =>
              waiter.settle(
                new Error(
                  `ntfy subscription to ${topic}: no matching event within ${timeoutMs} ms; received: ${summarize(events)}`,
                ),
              ),
            timeoutMs,
          );
          waiters.add(waiter);
        });
      },
      close() {
        req.destroy();
      },
    };
  });
}
