/**
 * Execution-zone activities. A shell step is checked against its approvals, handed to a
 * detached runner inside the sandbox, and followed through its run directory, so a restarted
 * executor re-attaches to a running step instead of starting it again.
 */
import { parseSize } from '../core/plan/limits.js';
import { watch } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import { parseDuration } from '../core/duration.js';
import { FAILURE_TYPES, planWorkflowId, STEP_LAUNCHED_DETAIL } from '../core/names.js';
import type { StepResult } from '../core/plan/state.js';
import type { ShellStep } from '../core/plan/types.js';
import {
  SandboxRefused,
  type SandboxBackend,
  type StepExecution,
  type StepLaunch,
} from '../sandbox/backend.js';
import { BrokerRefused } from '../sandbox/docker/container-policy.js';
import type { RunnerPool } from '../sandbox/runner/pool.js';
import { isAlive, RunDir, type RunState } from '../sandbox/runner/run-dir.js';
import type { Envelope } from '../core/approval/dsse.js';
import { signClose, type CloseClaims } from '../core/approval/attestation.js';
import {
  attested,
  authorizeExecution,
  trustedChain,
  type ApprovedStep,
  type ExecutorTrust,
} from './step-trust.js';

export interface ExecutorDependencies {
  backend: SandboxBackend;
  runners: RunnerPool;
  runsDir: string;
  /** This host's own chain and ledgers (its pinned root is read on every activity). */
  trust: ExecutorTrust;
  maxTranscriptBytes?: number;
}

export interface ShellStepInput extends ApprovedStep {
  step: ShellStep;
}

const HEARTBEAT_MS = 1_000;
const LAUNCH_GRACE_MS = 3_000;
const KILL_WAIT_MS = 5_000;

export function createExecutorActivities(deps: ExecutorDependencies) {
  function executionOf(run: RunDir, input: ShellStepInput): StepExecution {
    return {
      workspaceId: input.workspaceId,
      stepPath: input.step.path,
      runKey: run.key,
      egress: input.egress ?? false,
    };
  }

  /** Frees what the sandbox made for this execution; a failure here leaves it to the plan's release. */
  async function releaseStep(execution: StepExecution): Promise<void> {
    await deps.backend.releaseStep?.(execution).catch((error: unknown) =>
      Context.current().log.warn('could not free the step sandbox; the plan end frees it', {
        runKey: execution.runKey,
        error: (error as Error).message,
      }),
    );
  }

  async function launch(run: RunDir, input: ShellStepInput): Promise<void> {
    const execution = executionOf(run, input);
    let argv: StepLaunch;
    try {
      const workspace = await deps.backend.prepareWorkspace(input.workspaceId, input.step.cwd, {
        egress: execution.egress,
        sizeBytes: input.workspaceSize ? parseSize(input.workspaceSize) : undefined,
      });
      argv = await deps.backend.argvFor({
        workspace,
        cwd: input.step.cwd,
        env: input.step.env,
        run: input.step.run,
        timeoutMs: parseDuration(input.step.timeout),
        execution,
      });
    } catch (error) {
      // A refusal is final (the step never starts); anything else may pass, so it is retried.
      if (error instanceof SandboxRefused || error instanceof BrokerRefused)
        throw ApplicationFailure.nonRetryable(
          `the sandbox refused the step: ${error.message}`,
          FAILURE_TYPES.sandboxRefused,
        );
      throw ApplicationFailure.retryable(
        `could not prepare the workspace: ${(error as Error).message}`,
        FAILURE_TYPES.sandboxUnavailable,
      );
    }
    try {
      await deps.runners.launch({
        runDir: run.dir,
        file: argv.file,
        args: argv.args,
        env: argv.env,
        stop: argv.stop,
        maxTranscriptBytes: deps.maxTranscriptBytes ?? 1024 * 1024,
        timeoutMs: parseDuration(input.step.timeout),
      });
    } catch (error) {
      await releaseStep(execution);
      throw ApplicationFailure.retryable(
        `could not start a runner for the step: ${(error as Error).message}`,
        FAILURE_TYPES.sandboxUnavailable,
      );
    }
  }

  /** Why the run failed, as the sandbox says; asked once, and kept, before the step's sandbox goes. */
  async function diagnose(
    run: RunDir,
    input: ShellStepInput,
    { started, finished }: Extract<RunState, { phase: 'finished' }>,
  ): Promise<string | undefined> {
    const kept = await run.keptDiagnosis();
    if (kept) return kept.diagnosis;
    const diagnosis = await deps.backend
      .explainFailure?.(input.workspaceId, {
        ...finished,
        startedAtMs: started.startedAtMs,
        runKey: run.key,
      })
      .catch(() => undefined);
    await run.keepDiagnosis(diagnosis);
    return diagnosis;
  }

  /** Brings the run to "started" or "finished": launches it once, or finds it already under way. */
  async function ensureLaunched(run: RunDir, input: ShellStepInput): Promise<void> {
    // Claiming first (one exclusive create) keeps the common case, a fresh step, to one file operation.
    if (await run.claim()) return launch(run, input);
    const state = await run.state();
    if (state.phase === 'claimed') {
      // Claimed but not started: an earlier attempt may be handing the job to a runner right now.
      const deadline = Date.now() + LAUNCH_GRACE_MS;
      while (Date.now() < deadline && (await run.state()).phase === 'claimed') await sleep(100);
      const again = await run.state();
      if (again.phase === 'claimed' && !isAlive(again.runnerPid)) {
        Context.current().log.warn('step was claimed but never started; starting it now', { dir: run.dir });
        await run.reclaim();
        return launch(run, input);
      }
    }
  }

  async function follow(run: RunDir, stepPath: string): Promise<Extract<RunState, { phase: 'finished' }>> {
    const context = Context.current();
    // A change noticed while we were reading must not be lost: it sets `changed` for the next wait.
    let changed = false;
    let wake: () => void = () => undefined;
    const watcher = watch(run.dir, () => {
      changed = true;
      wake();
    });
    const nextChange = () => (changed ? Promise.resolve() : new Promise<void>((resolve) => (wake = resolve)));
    try {
      for (;;) {
        changed = false;
        const state = await run.state();
        if (state.phase === 'finished') return state;
        if (state.phase === 'started' && !isAlive(state.started.pid)) {
          const last = await run.state();
          if (last.phase === 'finished') return last;
          throw ApplicationFailure.nonRetryable(
            'the step started but its process vanished without a result (was the machine restarted?); it is not started again, so it never runs twice',
            FAILURE_TYPES.stepVanished,
          );
        }
        const tail = await run.tail(2048);
        context.heartbeat({ step: stepPath, outputTail: tail.text, outputBytes: tail.size });
        await Promise.race([nextChange(), sleep(HEARTBEAT_MS), context.cancelled.catch(() => undefined)]);
        if (context.cancellationSignal.aborted) await stop(run);
      }
    } finally {
      watcher.close();
    }
  }

  async function stop(run: RunDir): Promise<never> {
    const state = await run.state();
    if (state.phase === 'started') {
      try {
        process.kill(state.started.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      const deadline = Date.now() + KILL_WAIT_MS;
      while (Date.now() < deadline && (await run.state()).phase !== 'finished') await sleep(100);
    }
    // The plan tells "stopped while it ran" from "never started" by this detail.
    throw new CancelledFailure('step cancelled; its process was stopped', [STEP_LAUNCHED_DETAIL]);
  }

  return {
    /**
     * The janitor's round: removes workspace containers of plans that are not open, created
     * before the list was taken (a plan that started since then is not in it). Returns what went.
     */
    async reapWorkspaces(open: { workspaceIds: string[]; listedAtMs: number }): Promise<string[]> {
      const reaped = (await deps.backend.reap?.(new Set(open.workspaceIds), open.listedAtMs)) ?? [];
      // A plan whose workspace was reaped was not open (terminated): it runs nothing more on old approvals.
      for (const workspaceId of reaped)
        await deps.trust.ledger.planEnded(planWorkflowId(workspaceId), 'found closed by the janitor');
      return reaped;
    },

    /**
     * Newer device records, from the registry: this host's chain grows (revocations take effect for
     * every later step, whatever records a step arrives with). Older or equal records change nothing.
     */
    async adoptTrustRecords(input: { records: Envelope[] }): Promise<{ records: number }> {
      await trustedChain(deps.trust.chain, input.records);
      return { records: (await deps.trust.chain.held()).length };
    },

    /** The plan has ended: its workspace container (if any) is removed, and its files if asked. Idempotent. */
    async releaseWorkspace(input: {
      workspaceId: string;
      removeFiles?: boolean;
      workflowId?: string;
    }): Promise<void> {
      // Histories recorded before the ledger release without naming the plan.
      if (input.workflowId)
        await deps.trust.ledger.planEnded(input.workflowId, 'its workspace was released at its end');
      await deps.backend.releaseWorkspace(input.workspaceId, { removeFiles: input.removeFiles ?? false });
    },

    async runShellStep(input: ShellStepInput): Promise<StepResult> {
      const context = Context.current();
      const run = new RunDir(deps.runsDir, {
        workflowId: input.workflowId,
        runId: input.runId,
        stepPath: input.step.path,
        digest: input.digest,
      });
      // A step re-attached after a crash is judged as of its launch, not failed for lateness.
      const launchedAtMs = (await run.claimedAtMs()) ?? Date.now();
      await authorizeExecution(input, deps.trust, launchedAtMs);
      await ensureLaunched(run, input);
      const attachCount = await run.recordAttach(context.info.attempt);
      const execution = executionOf(run, input);
      let outcome: Extract<RunState, { phase: 'finished' }>;
      try {
        outcome = await follow(run, input.step.path);
      } catch (error) {
        // Stopped, or its runner vanished: nothing of the step runs on.
        await releaseStep(execution);
        throw error;
      }
      const { started, finished } = outcome;
      const tail = await run.tail(4096);
      const diagnosis = finished.exitCode === 0 ? undefined : await diagnose(run, input, outcome);
      const result = await attested(
        input,
        {
          ...(diagnosis ? { diagnosis } : {}),
          exitCode: finished.exitCode,
          signal: finished.signal,
          durationMs: finished.durationMs,
          outputTail: tail.text,
          outputBytes: finished.outputBytes,
          truncated: finished.truncated,
          timedOut: finished.timedOut ?? false,
          backend: deps.backend.name,
          startedAt: new Date(started.startedAtMs).toISOString(),
          finishedAt: new Date(finished.finishedAtMs).toISOString(),
          attachCount,
          attempt: context.info.attempt,
        },
        deps.trust,
      );
      // The result is kept (in the run directory, and signed): what ran the step may go.
      await releaseStep(execution);
      return result;
    },

    /**
     * Signs a plan's close with this host's key: every step's outcome, naming each result this
     * host signed for the plan (any it signed and the plan leaves out is refused: a close does not
     * hide a step that ran). The plan has ended here from then on.
     */
    async attestPlanClose(claims: Omit<CloseClaims, 'at'>): Promise<Envelope> {
      const signed = await deps.trust.ledger.resultsOf(claims.workflowId);
      for (const [path, hashes] of signed) {
        const named = claims.steps[path]?.result;
        if (!named || !hashes.includes(named))
          throw ApplicationFailure.nonRetryable(
            `the close of ${claims.workflowId} leaves out the result of step "${path}" that this executor signed`,
            FAILURE_TYPES.stepNotApproved,
          );
      }
      for (const [path, step] of Object.entries(claims.steps))
        if (step.result && !(signed.get(path) ?? []).includes(step.result))
          throw ApplicationFailure.nonRetryable(
            `the close of ${claims.workflowId} names a result of step "${path}" this executor never signed`,
            FAILURE_TYPES.stepNotApproved,
          );
      await deps.trust.ledger.planEnded(claims.workflowId, `it closed ${claims.status}`);
      return signClose({ ...claims, at: new Date().toISOString() }, deps.trust.key);
    },
  };
}
