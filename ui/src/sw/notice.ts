/**
 * Reading a notice from a push (or back from a shown notification's data): nothing the worker
 * does rests on a field it has not checked here.
 */
import type { Notice, NoticeGate } from '../lib/types.js';

const KINDS = new Set<string>(['gate', 'reminder', 'escalation', 'decided', 'test']);
const RISKS = new Set<string>(['low', 'medium', 'high']);

/** The kinds that ask for a decision, and so may offer Approve and Deny. */
export const ASKING_KINDS = new Set<string>(['gate', 'reminder', 'escalation']);

/** A notice with a gate that offers one-tap decisions. */
export type OneTapNotice = Notice & { gate: NoticeGate & { oneTap: true } };

/** The notice in a push's text, or undefined for anything that is not one. */
export function readNotice(text: string | undefined): Notice | undefined {
  if (text === undefined) return undefined;
  try {
    return parseNotice(JSON.parse(text));
  } catch {
    return undefined;
  }
}

/** `value` when it is a well-formed notice (`v: 1`, a known kind, text fields, a URL, a well-formed gate if any). */
export function parseNotice(value: unknown): Notice | undefined {
  if (!isRecord(value) || value['v'] !== 1) return undefined;
  const { kind, tag, title, body, url, gate, sentAt } = value;
  if (typeof kind !== 'string' || !KINDS.has(kind)) return undefined;
  if (!nonEmpty(tag) || !nonEmpty(title) || typeof body !== 'string' || !nonEmpty(url)) return undefined;
  if (!toUrl(url)) return undefined;
  if (gate !== undefined && !isGate(gate)) return undefined;
  return {
    v: 1,
    kind: kind as Notice['kind'],
    tag,
    title,
    body,
    url,
    gate,
    sentAt: typeof sentAt === 'string' ? sentAt : '',
  };
}

export function isOneTap(notice: Notice): notice is OneTapNotice {
  return ASKING_KINDS.has(notice.kind) && notice.gate?.oneTap === true;
}

/**
 * The notice's link, on this worker's own origin: a notice only ever links into this app, and the
 * key that signs lives on this origin (a server whose public address differs still lands here).
 */
export function appUrl(url: unknown, origin: string): string {
  const target = typeof url === 'string' ? toUrl(url, origin) : undefined;
  if (!target) return `${origin}/`;
  return `${origin}${target.pathname}${target.search}${target.hash}`;
}

/** `URL.canParse` is too recent for some phones still in use. */
function toUrl(url: string, base?: string): URL | undefined {
  try {
    return new URL(url, base);
  } catch {
    return undefined;
  }
}

function isGate(value: unknown): value is NoticeGate {
  if (!isRecord(value)) return false;
  const { workflowId, runId, stepPath, stepDigest, deadline, risk, oneTap } = value;
  return (
    nonEmpty(workflowId) &&
    nonEmpty(runId) &&
    nonEmpty(stepPath) &&
    typeof stepDigest === 'string' &&
    /^[0-9a-f]{64}$/.test(stepDigest) &&
    typeof deadline === 'string' &&
    !Number.isNaN(Date.parse(deadline)) &&
    typeof risk === 'string' &&
    RISKS.has(risk) &&
    typeof oneTap === 'boolean'
  );
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function nonEmpty(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}
