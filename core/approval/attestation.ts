/**
 * What an executor host signs about what ran, with its own key (introduced by the root at pairing,
 * role `executor`): each step's result (exit code, time limit, signal, hashes of the output it
 * kept, when it started and ended, which attempt) and a plan's close (every step's outcome). The
 * history keeps them; the workflow, `countersign history` and `audit verify` check them, so an
 * output rewritten to "all passed", an exit code changed, a completion forged through Temporal or
 * a history cut short is seen, not believed.
 */
import { sha256Hex, utf8Decode, utf8ToBytes } from '../bytes.js';
import { canonicalJson } from '../canonical.js';
import type { DeviceRegistry } from '../devices/registry.js';
import type { KeyPair } from '../keys.js';
import type { StepResult } from '../plan/state.js';
import { openEnvelope, PAYLOAD_TYPES, signEnvelope, verifyEnvelopeSignature, type Envelope } from './dsse.js';

/** The step a result is for: the same identity its approvals bind. */
export interface AttestedStep {
  workflowId: string;
  /** The plan's first run id. */
  runId: string;
  stepPath: string;
  digest: string;
}

/** What of a StepResult the executor vouches for. */
export interface ResultClaims extends AttestedStep {
  attempt: number;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  outputTailSha256: string;
  outputBytes: number;
  truncated: boolean;
  startedAt: string;
  finishedAt: string;
  /** An MCP call: whether the tool said it failed, and the hash of its structured content. */
  mcp?: { isError: boolean; structuredSha256: string } | undefined;
}

export interface CloseClaims {
  workflowId: string;
  runId: string;
  status: string;
  /** Every step's status, with the hash of its result attestation when it ran. */
  steps: Record<string, { status: string; result?: string | undefined }>;
  subPlans: Record<string, string>;
  at: string;
}

const sha = (value: unknown) => sha256Hex(`countersign/attested/v1\n${canonicalJson(value ?? null)}`);

/** The claims a result makes, computed the same way by the executor that signs and by every verifier. */
export function resultClaims(step: AttestedStep, result: StepResult): ResultClaims {
  return {
    workflowId: step.workflowId,
    runId: step.runId,
    stepPath: step.stepPath,
    digest: step.digest,
    attempt: result.attempt,
    exitCode: result.exitCode,
    signal: result.signal,
    timedOut: result.timedOut,
    outputTailSha256: sha256Hex(result.outputTail),
    outputBytes: result.outputBytes,
    truncated: result.truncated,
    startedAt: result.startedAt,
    finishedAt: result.finishedAt,
    ...(result.mcp
      ? { mcp: { isError: result.mcp.isError, structuredSha256: sha(result.mcp.structuredContent) } }
      : {}),
  };
}

export function signResult(claims: ResultClaims, key: KeyPair): Envelope {
  return signEnvelope(PAYLOAD_TYPES.result, utf8ToBytes(canonicalJson(claims)), key.secretKey, key.keyId);
}

export function signClose(claims: CloseClaims, key: KeyPair): Envelope {
  return signEnvelope(PAYLOAD_TYPES.close, utf8ToBytes(canonicalJson(claims)), key.secretKey, key.keyId);
}

/** The hash a close names a step's result attestation by. */
export function attestationSha256(envelope: Envelope): string {
  return sha256Hex(`${envelope.payload}.${envelope.signatures[0].sig}`);
}

/** Whether the registry holds an executor key: from then on, results must come signed. */
export function expectsAttestations(registry: DeviceRegistry): boolean {
  return registry.list().some((d) => d.role === 'executor' && !d.revoked);
}

/** Opens an executor's envelope of `payloadType`: its payload, or why it does not verify. */
function opened<T>(
  envelope: unknown,
  payloadType: string,
  registry: DeviceRegistry,
): { payload: T; signer: string } | string {
  const open = openEnvelope(envelope, payloadType);
  if (typeof open === 'string') return `it is malformed: ${open}`;
  const device = registry.get(open.keyId);
  if (!device || device.role !== 'executor')
    return `it is signed by ${open.keyId}, which is not an executor key`;
  if (device.revoked) return `it is signed by executor key "${device.name}", revoked at ${device.revoked.at}`;
  if (!verifyEnvelopeSignature(open, payloadType, device.publicKey)) return 'its signature does not verify';
  try {
    return { payload: JSON.parse(utf8Decode(open.payloadBytes)) as T, signer: device.name };
  } catch {
    return 'its payload is not JSON';
  }
}

/**
 * Why `result`, as recorded, is not what an executor signed for this step; undefined when it is.
 * Names the first thing that differs (the exit code, the output, the time it ended…).
 */
export function resultProblem(
  envelope: unknown,
  step: AttestedStep,
  result: StepResult,
  registry: DeviceRegistry,
): string | undefined {
  if (envelope === undefined) return 'the result is not signed by an executor';
  const open = opened<ResultClaims>(envelope, PAYLOAD_TYPES.result, registry);
  if (typeof open === 'string') return `the result's signature does not hold: ${open}`;
  const signed = open.payload;
  const recorded = resultClaims(step, result);
  const labels: Record<string, string> = {
    workflowId: 'the plan',
    runId: 'the run',
    stepPath: 'the step',
    digest: 'the step digest',
    attempt: 'the attempt',
    exitCode: 'the exit code',
    signal: 'the signal',
    timedOut: 'the time limit',
    outputTailSha256: 'the output',
    outputBytes: 'the output size',
    truncated: 'the output cut',
    startedAt: 'the start time',
    finishedAt: 'the end time',
    mcp: 'the tool result',
  };
  for (const [field, label] of Object.entries(labels)) {
    const a = (signed as unknown as Record<string, unknown>)[field];
    const b = (recorded as unknown as Record<string, unknown>)[field];
    if (canonicalJson(a ?? null) !== canonicalJson(b ?? null))
      return `${label} recorded is not what executor "${open.signer}" signed (${JSON.stringify(b)?.slice(0, 60)} ≠ ${JSON.stringify(a)?.slice(0, 60)})`;
  }
  return undefined;
}

/** The close an executor signed, or why it does not verify. */
export function openClose(
  envelope: unknown,
  registry: DeviceRegistry,
): { claims: CloseClaims; signer: string } | string {
  const open = opened<CloseClaims>(envelope, PAYLOAD_TYPES.close, registry);
  return typeof open === 'string' ? open : { claims: open.payload, signer: open.signer };
}
