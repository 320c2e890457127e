/**
 * Control-zone activities: apply standing approvals people signed (the policy key signs an
 * approval naming the grant), tell open plans of new device records, and tell devices that a
 * gate was reached (ntfy, Web Push, FCM) and what became of it.
 */
import { appendFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { FAILURE_TYPES, planIdOf } from '../core/names.js';
import type { ChannelOutcome } from '../core/notify/types.js';
import { noticeKey, type GateNoticeRequest, type Notifier } from '../services/notify/notifier.js';

import type { Envelope } from '../core/approval/dsse.js';
import type { KeyPair } from '../core/keys.js';
import type { TrustAnchorFile } from '../services/trust-anchor.js';
import {
  announceTrustRecords,
  applyStandingGrant,
  type StandingGrantAnswer,
  type StandingGrantRequest,
} from '../services/grants.js';

export type { GateNoticeRequest, StandingGrantAnswer, StandingGrantRequest };

export interface ControlDependencies {
  policyKey: KeyPair;
  /** JSON lines file where reached gates are recorded. */
  gateLogPath: string;
  /** Reads the registry, spends grant uses, lists and signals open plans. */
  client?: Client;
  /** The control worker's chain from the pinned root (a replaced registry applies no grant). */
  anchor?: TrustAnchorFile | undefined;
  /** Sends notices; without it, reached gates are only recorded. */
  notifier?: Notifier | undefined;
}

/** The workspaces of every open plan, and when that was true (for the reaper's race guard). */
export interface OpenWorkspaces {
  workspaceIds: string[];
  listedAtMs: number;
}

/** What a notice did, returned into the plan's history. */
export interface GateNoticeResult {
  key: string;
  outcomes: ChannelOutcome[];
  /** Approver names the plan gives that match no active device. */
  unknown: string[];
}

export function createControlActivities(deps: ControlDependencies) {
  const client = (): Client => {
    if (!deps.client) throw new Error('the control worker was started without a Temporal client');
    return deps.client;
  };
  return {
    /** A plan's workspace id is its plan id (a sub-plan that shares one runs inside an open parent). */
    async listOpenWorkspaces(): Promise<OpenWorkspaces> {
      const listedAtMs = Date.now();
      const workspaceIds: string[] = [];
      const query = "WorkflowType = 'planWorkflow' AND ExecutionStatus = 'Running'";
      for await (const execution of client().workflow.list({ query })) {
        const planId = planIdOf(execution.workflowId);
        if (planId) workspaceIds.push(planId);
      }
      return { workspaceIds, listedAtMs };
    },

    /** A step asked for a standing approval: apply one a person signed that covers it, or say why none does. */
    async applyStandingGrant(request: StandingGrantRequest): Promise<StandingGrantAnswer> {
      return applyStandingGrant(client(), deps.policyKey, request, deps.anchor);
    },

    /** The registry changed: every open plan hears of its records (revocations win over waiting steps). */
    async announceTrustRecords(request: { records: Envelope[] }): Promise<{ told: number }> {
      return { told: await announceTrustRecords(client(), request.records) };
    },

    /**
     * Records that a gate was reached (or reminded, escalated, decided) and tells the devices.
     * Idempotent per notice: a retried attempt sends only what earlier attempts did not. Channels
     * that failed in a way worth retrying fail the attempt, so Temporal retries it with backoff;
     * the plan never waits for this.
     */
    async gateReached(request: GateNoticeRequest): Promise<GateNoticeResult> {
      const context = Context.current();
      const key = noticeKey(request);
      if (context.info.attempt === 1) {
        context.log.info('gate notice', { key, plan: request.planName, deadline: request.gate.deadline });
        await mkdir(dirname(deps.gateLogPath), { recursive: true });
        await appendFile(
          deps.gateLogPath,
          `${JSON.stringify({ key, kind: request.kind, stepPath: request.gate.stepPath, workflowId: request.gate.workflowId, recordedAt: new Date().toISOString() })}\n`,
        );
      }
      if (!deps.notifier) return { key, outcomes: [], unknown: [] };
      const beat = setInterval(() => context.heartbeat(), 1000);
      try {
        const report = await deps.notifier.notifyGate(request);
        const result = { key, outcomes: report.outcomes, unknown: report.unknown };
        if (report.retry.targets.length > 0) {
          throw ApplicationFailure.create({
            message: `notice ${key}: ${report.retry.targets.length} of ${report.outcomes.length} deliveries failed and will be retried: ${report.outcomes
              .filter((o) => o.status === 'failed' && o.detail.endsWith('(will retry)'))
              .map((o) => `${o.target}: ${o.detail.replace(/ \(will retry\)$/, '')}`)
              .join('; ')}`,
            type: FAILURE_TYPES.notifyChannelFailed,
            details: [result],
            ...(report.retry.afterMs !== undefined ? { nextRetryDelay: report.retry.afterMs } : {}),
          });
        }
        return result;
      } finally {
        clearInterval(beat);
      }
    },

    /** A test notice to one device's channels (the app's button and `countersign notify test`). */
    async notifyTest(request: { keyId: string }): Promise<ChannelOutcome[]> {
      if (!deps.notifier) return [];
      return deps.notifier.notifyTest(request.keyId);
    },
  };
}
