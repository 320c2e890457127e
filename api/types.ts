/**
 * The API's response bodies that are not written as TypeBox schemas, as plain types: the routes
 * build them and the web app imports them (type only), so both sides read the same fields.
 */
import type { PlanViewTree, StepView } from '../core/plan/state.js';

export type { PlanViewTree };

export interface PlanDetail {
  tree: PlanViewTree;
  /** Output tail of each running step, keyed by its path from the top plan (`docs/write`). */
  output: Record<string, string>;
  temporalUiUrl: string | null;
}

/** A gate awaiting a decision from the device that asks. */
export interface InboxItem {
  /** The workflow that holds the step (a sub-plan's own id for its steps). */
  workflowId: string;
  runId: string;
  planId: string;
  planName: string;
  stepPath: string;
  kind: StepView['kind'];
  summary: string;
  awaitingSince: string | null;
  deadlineMs: number | null;
  /** Approvals given so far, of `quorum` needed. */
  approvals: number;
  quorum: number;
}

export interface PlanListItem {
  workflowId: string;
  name: string;
  status: string;
  awaiting: string[];
  startTime: string;
  closeTime: string | null;
}

/** A device that asked to join with an invitation code; the inviting device checks its key. */
export interface PairingRequest {
  keyId: string;
  name: string;
  /** Base64 of the raw 32-byte Ed25519 public key: what an introduction signs. */
  publicKey: string;
  fingerprint: string;
  requestedAt: string;
}
