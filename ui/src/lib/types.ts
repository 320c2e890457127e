/**
 * Bodies of the API as the web app reads them (see api/README.md). Plan and history bodies are
 * the domain types themselves; the rest are written here from the contract.
 */
import type { Envelope } from '../../../core/approval/dsse.js';
import type { PlanView } from '../../../core/plan/state.js';

export type { Envelope };
export type {
  PlanView,
  StepView,
  StepResult,
  TreeView,
  StepStatus,
  ApprovalRecord,
} from '../../../core/plan/state.js';
export type { PlanTimeline, TimelineEntry, TimelineStep } from '../../../services/history/types.js';

export interface ApiErrorBody {
  error: { code: string; message: string };
}

export interface DeviceInfo {
  keyId: string;
  name: string;
  role: 'root' | 'approver' | 'policy' | string;
  introducedBy?: string | undefined;
  revoked?: { by: string; at: string; reason: string } | undefined;
  fingerprint?: string | undefined;
}

export interface SessionBody {
  device: DeviceInfo;
  csrfToken: string;
  expiresAt: string;
}

export interface PairingStatus {
  rootPaired: boolean;
  pairingOpen: boolean;
  policyPublicKey: string | null;
}

export interface JoinRequestAccepted {
  keyId: string;
  fingerprint: string;
  expiresAt: string;
}

export interface PairingRequest {
  keyId: string;
  name: string;
  /** Base64 of the raw 32-byte Ed25519 public key: what an introduction signs. */
  publicKey: string;
  fingerprint?: string | undefined;
  requestedAt?: string | undefined;
  status?: string | undefined;
}

export interface Invitation {
  code: string;
  url: string;
  expiresAt: string;
}

export interface InvitationStatus {
  code: string;
  expiresAt: string;
  requests: PairingRequest[];
}

export interface DevicesBody {
  rootKeyId: string | null;
  devices: DeviceInfo[];
}

export interface PlanListing {
  workflowId: string;
  name: string;
  status: string;
  awaiting: string[];
  startTime: string;
  closeTime?: string | null | undefined;
}

/** A gate awaiting this device's decision (api/live/plans.ts). */
export interface InboxItem {
  /** The workflow that holds the step (a sub-plan's own id for its steps). */
  workflowId: string;
  runId?: string | undefined;
  planId?: string | undefined;
  planName?: string | undefined;
  stepPath: string;
  kind?: string | undefined;
  summary?: string | undefined;
  awaitingSince?: string | null | undefined;
  deadlineMs?: number | null | undefined;
  approvals?: number | undefined;
  quorum?: number | undefined;
}

export interface PlanViewTree {
  view: PlanView;
  children: PlanViewTree[];
}

export interface PlanBody {
  tree: PlanViewTree;
  output: Record<string, string>;
  temporalUiUrl: string | null;
}

export interface ApprovalApplied {
  stepPath: string;
  decision: 'approve' | 'deny';
  device: string;
  stepStatus: string;
}
