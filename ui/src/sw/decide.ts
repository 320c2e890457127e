/**
 * One-tap decisions from a notification, without opening the app. The checks are the approval
 * page's: the step is read fresh from the server, its digest recomputed on this device and
 * compared with the one the notice named, and only then is the decision signed with this device's
 * key. The outcome replaces the notification.
 */
import { ApiError, errorText } from '../lib/api.js';
import { newNonce, signApproval } from '../lib/crypto.js';
import { statusWords, time } from '../lib/format.js';
import { loadDevice, type StoredDevice } from '../lib/keystore.js';
import { checkDigest, findStep } from '../lib/plan.js';
import type { ApprovalApplied, Envelope, PlanDetail } from '../lib/types.js';
import { appUrl, type OneTapNotice } from './notice.js';
import { ICON, type ShowOptions } from './push.js';
import { sw } from './scope.js';
import { openSession, server, unreachable } from './server.js';

export type Decision = 'approve' | 'deny';

/** What a one-tap decision came to. The outcome notification carries it as its `data`. */
export interface OneTapOutcome {
  /** `applied`: the plan took the decision; `refused`: signed, but not applied; `not_signed`: nothing was signed. */
  outcome: 'applied' | 'refused' | 'not_signed';
  /** Why, when not applied: the server's refusal code, or this device's (`expired`, `step_changed`, …). */
  code?: string;
  /** The notification's text. */
  message: string;
  /** The approval page: a tap on the outcome opens it. */
  url: string;
}

const REASON = 'one-tap from a notification';

/** A second tap while the first is being signed waits for it rather than signing again. */
const inFlight = new Map<string, Promise<OneTapOutcome>>();

/** Decides the notice's step and shows the outcome in place of the notification. */
export function decideFromNotice(notice: OneTapNotice, decision: Decision): Promise<OneTapOutcome> {
  let running = inFlight.get(notice.tag);
  if (!running) {
    running = decide(notice, decision)
      .then(async (outcome) => {
        await showOutcome(notice, decision, outcome);
        return outcome;
      })
      .finally(() => inFlight.delete(notice.tag));
    inFlight.set(notice.tag, running);
  }
  return running;
}

async function decide(notice: OneTapNotice, decision: Decision): Promise<OneTapOutcome> {
  const { gate } = notice;
  const url = appUrl(notice.url, sw.location.origin);
  const notSigned = (code: string, message: string): OneTapOutcome => ({
    outcome: 'not_signed',
    code,
    message,
    url,
  });

  let device: StoredDevice | undefined;
  try {
    device = await loadDevice();
  } catch (e) {
    return notSigned(
      'keystore_unavailable',
      `This browser's key store (IndexedDB) could not be read (${errorText(e)}); nothing was signed.`,
    );
  }
  if (!device || device.status !== 'active')
    return notSigned('no_device', 'This browser has no active Countersign key; nothing was signed.');
  const expired = (deadlineMs: number): OneTapOutcome =>
    notSigned('expired', `Expired: the deadline passed at ${time(deadlineMs)}; nothing was signed.`);
  // The server would refuse it anyway; saying so here saves a round trip and a confusing refusal.
  if (Date.now() >= Date.parse(gate.deadline)) return expired(Date.parse(gate.deadline));

  try {
    await openSession(device);
  } catch (e) {
    return notSigned(codeOf(e, 'no_session'), sessionFailure(e));
  }

  let detail: PlanDetail;
  try {
    detail = await server.get<PlanDetail>(`/api/plans/${encodeURIComponent(gate.workflowId)}`);
  } catch (e) {
    return notSigned(
      codeOf(e, 'plan_unavailable'),
      unreachable(e)
        ? 'The server could not be reached; nothing was signed. Open the app when you are back online.'
        : `The plan did not load (${errorText(e)}); nothing was signed. Open the app to review.`,
    );
  }

  const found = findStep(detail.tree, gate.stepPath);
  if (!found)
    return notSigned(
      'step_not_found',
      `Plan ${gate.workflowId} has no step “${gate.stepPath}”; nothing was signed. Open the app to review.`,
    );
  const { view, step } = found;
  const check = checkDigest(view, step, gate.workflowId);
  if (!check.ok)
    return notSigned(
      'digest_mismatch',
      `This device will not sign it: ${check.reason}. Open the app to review; nothing was signed.`,
    );
  if (check.digest !== gate.stepDigest)
    return notSigned(
      'step_changed',
      'The step changed since this notice was sent (or the notice was altered); open the app to review. Nothing was signed.',
    );
  if (view.runId !== gate.runId)
    return notSigned(
      'run_changed',
      'The plan runs again since this notice was sent (another run); open the app to review. Nothing was signed.',
    );
  if (step.status !== 'awaiting_approval')
    return notSigned(
      'already_decided',
      `Already decided: the step is ${statusWords(step.status)}. Nothing was signed.`,
    );
  if (step.deadlineMs !== undefined && Date.now() >= step.deadlineMs) return expired(step.deadlineMs);
  const keyId = device.keyId;
  if (step.approvals.some((a) => a.keyId === keyId))
    return notSigned(
      'already_signed',
      'This device already approved this step; it waits for more devices. Nothing was signed.',
    );

  let envelope: Envelope;
  try {
    envelope = await signApproval(device, {
      workflowId: view.workflowId,
      runId: view.runId,
      stepPath: step.path,
      stepDigest: check.digest,
      decision,
      reason: REASON,
      nowMs: Date.now(),
      nonce: newNonce(),
    });
  } catch (e) {
    return notSigned(
      'sign_failed',
      `This device's key could not sign (${errorText(e)}); nothing was signed.`,
    );
  }

  try {
    const { applied } = await server.post<{ applied: ApprovalApplied }>(
      `/api/plans/${encodeURIComponent(view.workflowId)}/approvals`,
      { envelope },
    );
    return { outcome: 'applied', message: appliedText(gate.stepPath, decision, applied), url };
  } catch (e) {
    if (unreachable(e))
      return {
        outcome: 'refused',
        code: 'offline',
        message:
          'The server could not be reached, so the signed decision may not have arrived; open the app to check the step.',
        url,
      };
    const code = codeOf(e, 'refused');
    return {
      outcome: 'refused',
      code,
      message: `${errorText(e)}. Nothing was applied; open the app to review.`,
      url,
    };
  }
}

function appliedText(path: string, decision: Decision, applied: ApprovalApplied): string {
  if (decision === 'deny') return `${path} is denied; it will not run.`;
  if (applied.stepStatus === 'awaiting_approval')
    return `Your approval of ${path} is recorded; the step still waits for more devices (quorum).`;
  return `${path} is approved; the step runs now.`;
}

function sessionFailure(error: unknown): string {
  if (unreachable(error))
    return 'The server could not be reached; nothing was signed. Open the app when you are back online.';
  if (error instanceof ApiError && error.code === 'device_revoked')
    return `This device is revoked (${error.message}); nothing was signed.`;
  return `Signing in with this device's key failed (${errorText(error)}); nothing was signed. Open the app to review.`;
}

function codeOf(error: unknown, otherwise: string): string {
  return error instanceof ApiError ? error.code : otherwise;
}

async function showOutcome(notice: OneTapNotice, decision: Decision, outcome: OneTapOutcome): Promise<void> {
  const title =
    outcome.outcome === 'applied'
      ? decision === 'approve'
        ? 'Approved'
        : 'Denied'
      : outcome.outcome === 'not_signed'
        ? 'Not signed'
        : outcome.code === 'offline'
          ? 'Not delivered'
          : 'Refused by the server';
  const options: ShowOptions = {
    body: outcome.message,
    tag: notice.tag,
    icon: ICON,
    data: outcome,
    renotify: false,
    // What did not happen stays until read; a decision that went through can fade.
    requireInteraction: outcome.outcome !== 'applied',
  };
  await sw.registration.showNotification(title, options);
}
