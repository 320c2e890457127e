/**
 * Control-zone activities: sign auto-approvals with the policy key, and record that a gate
 * was reached (push delivery comes later; for now the record is a line in the state folder).
 */
import { randomBytes } from 'node:crypto';
import { appendFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { planIdOf } from '../core/names.js';
import { signApproval } from '../core/approval/approval.js';
import type { Envelope } from '../core/approval/dsse.js';
import type { KeyPair } from '../core/keys.js';

export interface ControlDependencies {
  policyKey: KeyPair;
  /** JSON lines file where reached gates are recorded. */
  gateLogPath: string;
  /** Lists open plan workflows; only the janitor needs it. */
  client?: Client;
}

/** The workspaces of every open plan, and when that was true (for the reaper's race guard). */
export interface OpenWorkspaces {
  workspaceIds: string[];
  listedAtMs: number;
}

export interface AutoApprovalRequest {
  workflowId: string;
  runId: string;
  stepPath: string;
  stepDigest: string;
  /** Index of the matching rule in the plan's policy.autoApprove. */
  rule: number;
}

export interface GateReached {
  workflowId: string;
  planName: string;
  stepPath: string;
  kind: string;
  /** 0 for the first notice, then one per reminder. With workflow and step, the idempotency key. */
  attempt: number;
  deadline: string;
}

export function createControlActivities(deps: ControlDependencies) {
  return {
    /** A plan's workspace id is its plan id (a sub-plan that shares one runs inside an open parent). */
    async listOpenWorkspaces(): Promise<OpenWorkspaces> {
      if (!deps.client) throw new Error('the control worker was started without a Temporal client');
      const listedAtMs = Date.now();
      const workspaceIds: string[] = [];
      const query = "WorkflowType = 'planWorkflow' AND ExecutionStatus = 'Running'";
      for await (const execution of deps.client.workflow.list({ query })) {
        const planId = planIdOf(execution.workflowId);
        if (planId) workspaceIds.push(planId);
      }
      return { workspaceIds, listedAtMs };
    },

    async signAutoApproval(request: AutoApprovalRequest): Promise<Envelope> {
      return signApproval(
        {
          workflowId: request.workflowId,
          runId: request.runId,
          stepPath: request.stepPath,
          stepDigest: request.stepDigest,
          decision: 'approve',
          reason: `auto-approved by plan policy rule #${request.rule}`,
          nowMs: Date.now(),
          ttlMs: 10 * 60_000,
          nonce: randomBytes(18).toString('base64url'),
        },
        deps.policyKey,
      );
    },

    async gateReached(gate: GateReached): Promise<{ recorded: true }> {
      const key = `${gate.workflowId}/${gate.stepPath}/${gate.attempt}`;
      Context.current().log.info('gate reached', { key, plan: gate.planName, deadline: gate.deadline });
      await mkdir(dirname(deps.gateLogPath), { recursive: true });
      await appendFile(
        deps.gateLogPath,
        `${JSON.stringify({ key, ...gate, recordedAt: new Date().toISOString() })}\n`,
      );
      return { recorded: true };
    },
  };
}
