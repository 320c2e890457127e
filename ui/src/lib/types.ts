/**
 * Bodies of the API as the web app reads them (see api/README.md): the domain types and
 * api/types.ts, imported as types; the small schema-only bodies are written here.
 */
import type { Envelope } from '../../../core/approval/dsse.js';
import type { GrantRecord } from '../../../core/grants/grant.js';
import type { ChannelOutcome, NotifyOffer, QuietHours } from '../../../core/notify/types.js';

export type { GrantRecord };

export type { Envelope };
export type {
  ChannelName,
  ChannelOutcome,
  Notice,
  NoticeGate,
  NotifyOffer,
  QuietHours,
} from '../../../core/notify/types.js';
export type {
  PlanView,
  StepView,
  StepResult,
  TreeView,
  StepStatus,
  ApprovalRecord,
} from '../../../core/plan/state.js';
export type { PlanTimeline, TimelineEntry, TimelineStep } from '../../../services/history/types.js';
export type { ApprovalApplied } from '../../../workflows/messages.js';
import type { PairingRequest, PlanDetail, PlanListItem } from '../../../api/types.js';
export type {
  InboxItem,
  PairingRequest,
  PlanDetail,
  PlanListItem,
  PlanViewTree,
} from '../../../api/types.js';

export interface ApiErrorBody {
  error: { code: string; message: string };
}

export interface DeviceInfo {
  keyId: string;
  name: string;
  role: 'root' | 'approver' | 'policy' | string;
  introducedBy?: string | undefined;
  revoked?: { by: string; at: string; reason: string } | undefined;
}

export interface SessionBody {
  device: DeviceInfo;
  csrfToken: string;
  expiresAt: string;
  rootKeyId: string;
}

export interface PairingStatus {
  rootPaired: boolean;
  pairingOpen: boolean;
  policyPublicKey: string | null;
  executorPublicKey: string | null;
}

export interface JoinRequestAccepted {
  keyId: string;
  fingerprint: string;
  expiresAt: string;
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

export interface AgentInfo {
  agentId: string;
  name: string;
  issuedBy: string;
  issuedAt: string;
  revoked?: { by: string; at: string; reason: string } | undefined;
}

/** A standing approval as `GET /api/devices` lists it. */
export interface GrantInfo {
  grantId: string;
  record: GrantRecord;
  issuedBy: string;
  revoked?: { by: string; at: string; reason: string } | undefined;
  uses: number;
}

export interface DevicesBody {
  rootKeyId: string | null;
  devices: DeviceInfo[];
  agents: AgentInfo[];
  grants: GrantInfo[];
}

/** The plan list's entries. */
export type PlanListing = PlanListItem;
export type PlanBody = PlanDetail;

/** This device's notification settings as the API shows them (`GET /api/notify/settings`). */
export interface NotifySettingsView {
  ntfy: { enabled: boolean; topic: string };
  webPush: { enabled: boolean; subscriptions: { endpoint: string; addedAt: string }[] };
  /** `tokens`: how many app tokens are registered; the tokens themselves never leave the server. */
  fcm: { enabled: boolean; tokens: number };
  quietHours: QuietHours | null;
}

export interface NotifySettingsBody {
  settings: NotifySettingsView;
  offer: NotifyOffer;
}

/** `PUT /api/notify/settings`. */
export interface NotifySettingsUpdate {
  ntfy: { enabled: boolean };
  webPush: { enabled: boolean };
  fcm: { enabled: boolean };
  quietHours: QuietHours | null;
}

/** A browser's push subscription as `POST /api/notify/web-push` takes it. */
export interface WebPushSubscriptionBody {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

export interface NotifyTestBody {
  outcomes: ChannelOutcome[];
}
