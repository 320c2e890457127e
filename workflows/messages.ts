/** Typed workflow messages and inputs, imported by workflows, workers, the CLI and the API alike. */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { Envelope } from '../core/approval/dsse.js';
import type { Agent } from '../core/devices/registry.js';
import type { GrantRecord } from '../core/grants/grant.js';
import type { NotifyChange } from '../core/notify/settings.js';
import type { DeviceNotifySettings, NotifyOffer } from '../core/notify/types.js';
import type { PlanView, StepRecord, SubPlanRecord } from '../core/plan/state.js';

export interface PlanWorkflowInput {
  planId: string;
  /** The plan as submitted (parsed YAML/JSON); the workflow validates it again. */
  plan: unknown;
  workspaceId: string;
  /** Who proposed the plan (a CLI device, an agent token). Shown in history. */
  proposer: string;
  /** The agent token that proposed it, when an agent did: only that agent may read the plan. */
  agentId?: string | undefined;
  /** A sub-plan that runs in its parent's workspace: the parent releases it, not the child. */
  sharesParentWorkspace?: boolean | undefined;
  /** Device records from the registry when the plan was started; approvals and the registry bring newer ones. */
  trustRecords: Envelope[];
  /**
   * Who asked for the plan, signed (core/approval/proposal.ts): a CLI device, or an agent through
   * its token. Grants scoped to a proposer apply only when this verifies. Sub-plans carry their top plan's.
   */
  proposal?: Envelope | undefined;
  options?: { continueAsNewAfterEvents?: number } | undefined;
  carried?: CarriedPlanState | undefined;
}

export interface CarriedPlanState {
  steps: Record<string, StepRecord>;
  subPlans: Record<string, SubPlanRecord>;
  usedNonces: string[];
  trustRecords: Envelope[];
  continuedAsNew: number;
  /** The plan was recorded before standing approvals (absent: carried by code older than them, so yes). */
  legacyPlanRules?: boolean | undefined;
  /** The plan was validated with the bounds on durations and text (absent: carried by older code, so no). */
  boundedPlan?: boolean | undefined;
}

export interface ApprovalSubmission {
  envelope: Envelope;
  /** The registry's records as the submitter read them; the plan keeps the longest valid chain it has seen. */
  deviceRecords: Envelope[];
}

export interface ApprovalApplied {
  stepPath: string;
  decision: 'approve' | 'deny';
  device: string;
  /** Status of the step after this approval (an approval short of quorum leaves it awaiting). */
  stepStatus: string;
}

export const approveUpdate = defineUpdate<ApprovalApplied, [ApprovalSubmission]>('countersign.approve');
/**
 * Newer device records (a revoked device, a new or revoked standing approval), sent by the
 * registry to every open plan. A plan adopts them only when they extend its chain and verify.
 */
export const trustRecordsSignal = defineSignal<[{ records: Envelope[] }]>('countersign.trustRecords');
export const planViewQuery = defineQuery<PlanView>('countersign.planView');

export interface RegistryWorkflowInput {
  records: Envelope[];
  /** SHA-256 (hex) of the one-time pairing code, while no root is enrolled. */
  pairingCodeHash?: string | undefined;
  /** The control worker's policy public key (base64), offered for introduction at pairing. */
  policyPublicKey?: string | undefined;
  /** The executor host's result key (base64), offered for introduction at pairing. */
  executorPublicKey?: string | undefined;
  /** Per standing approval with a use limit: the steps it was used for (`workflowId/stepPath/digest`). */
  grantUses?: Record<string, string[]> | undefined;
}

export interface RegistryView {
  records: Envelope[];
  rootKeyId?: string | undefined;
  pairingOpen: boolean;
  policyPublicKey?: string | undefined;
  executorPublicKey?: string | undefined;
  devices: {
    keyId: string;
    name: string;
    role: string;
    introducedBy?: string | undefined;
    revoked?: { by: string; at: string; reason: string } | undefined;
  }[];
  /** Agent tokens issued by devices (their secrets' hashes only). Absent in views of older registries. */
  agents?: Agent[] | undefined;
  /** Standing approvals people signed, with how often each limited one was used. */
  grants?: GrantView[] | undefined;
}

export interface GrantView {
  grantId: string;
  record: GrantRecord;
  issuedBy: string;
  revoked?: { by: string; at: string; reason: string } | undefined;
  /** Uses spent (only counted for grants with `maxUses`). */
  uses: number;
}

/** The control worker spends one use of a limited grant for one step; the same step again spends nothing. */
export const spendGrantUseUpdate = defineUpdate<{ use: number }, [{ grantId: string; useKey: string }]>(
  'countersign.registry.spendGrantUse',
);

export const enrollRootUpdate = defineUpdate<RegistryView, [{ record: Envelope; pairingCode: string }]>(
  'countersign.registry.enrollRoot',
);
export const addDeviceRecordUpdate = defineUpdate<RegistryView, [{ record: Envelope }]>(
  'countersign.registry.addRecord',
);
export const openPairingUpdate = defineUpdate<
  RegistryView,
  [{ pairingCodeHash: string; policyPublicKey?: string | undefined; executorPublicKey?: string | undefined }]
>('countersign.registry.openPairing');
export const registryViewQuery = defineQuery<RegistryView>('countersign.registry.view');

export interface NotifySettingsView {
  devices: Record<string, DeviceNotifySettings>;
  offer: NotifyOffer;
}

export interface NotifySettingsWorkflowInput {
  devices: Record<string, DeviceNotifySettings>;
  offer?: NotifyOffer | undefined;
  allowLocalPushEndpoints?: boolean | undefined;
}

export const notifySettingsQuery = defineQuery<NotifySettingsView>('countersign.notify.settings');
/** `ntfyTopic`: the topic a device gets the first time it changes anything (made by the caller, at random). */
export const changeNotifySettingsUpdate = defineUpdate<
  DeviceNotifySettings,
  [{ keyId: string; change: NotifyChange; ntfyTopic: string }]
>('countersign.notify.change');
export const publishNotifyOfferUpdate = defineUpdate<
  NotifySettingsView,
  [{ offer: NotifyOffer; allowLocalPushEndpoints: boolean }]
>('countersign.notify.offer');
