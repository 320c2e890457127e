/**
 * MCP activities (execution zone). `pinMcpCalls` matches a plan's tool calls to the catalog
 * before anything is approved; `runMcpStep` makes one approved call on a server started for it
 * alone, and removes the server afterwards, whatever happened.
 */
import { parseSize } from '../core/plan/limits.js';
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';
import { parseDuration } from '../core/duration.js';
import {
  pinIsIntact,
  pinnedTool,
  serverConfigSha256,
  type McpCatalog,
  type McpPin,
  type McpServerEntry,
} from '../core/mcp/catalog.js';
import { FAILURE_TYPES, STEP_LAUNCHED_DETAIL } from '../core/names.js';
import type { StepResult } from '../core/plan/state.js';
import type { McpStep } from '../core/plan/types.js';
import type { PlanIssue } from '../core/plan/validate.js';
import { SandboxRefused } from '../sandbox/backend.js';
import { BrokerRefused } from '../sandbox/docker/container-policy.js';
import {
  callPinnedTool,
  McpCallRefused,
  McpServerFailed,
  type ToolCallOutcome,
} from '../sandbox/mcp/call.js';
import type { LaunchedServer, McpLauncher } from '../sandbox/mcp/launcher.js';
import { attested, authorizeExecution, type ApprovedStep, type ExecutorTrust } from './step-trust.js';

export interface McpDependencies {
  launcher: McpLauncher;
  /** Read on every call, so `countersign mcp pin` takes effect without a restart. */
  catalog: () => Promise<McpCatalog>;
  /** This host's own chain and ledgers. */
  trust: ExecutorTrust;
}

export interface McpCallSpec {
  path: string;
  server: string;
  tool: string;
  arguments: Record<string, unknown>;
}

export interface McpStepInput extends ApprovedStep {
  step: McpStep;
  mcpPin: McpPin;
}

const HEARTBEAT_MS = 1_000;
const ajv = new AjvJsonSchemaValidator();
/** Compiled argument checks by tool hash: the catalog is re-read on every plan, its schemas are not recompiled. */
const argumentChecks = new Map<string, ReturnType<AjvJsonSchemaValidator['getValidator']>>();
function argumentCheck(toolSha: string, schema: Record<string, unknown>) {
  let check = argumentChecks.get(toolSha);
  if (!check) {
    // A schema's own $id must not let one cached under that id answer for it.
    const anonymous = { ...schema };
    delete anonymous.$id;
    check = ajv.getValidator(anonymous);
    if (argumentChecks.size >= 512) argumentChecks.delete(argumentChecks.keys().next().value!);
    argumentChecks.set(toolSha, check);
  }
  return check;
}

/** The same on every attempt of one approved call. */
export function callKeyOf(
  input: Pick<ApprovedStep, 'workflowId' | 'runId' | 'digest'> & { step: { path: string } },
): string {
  return createHash('sha256')
    .update(`${input.workflowId}\n${input.runId}\n${input.step.path}\n${input.digest}`)
    .digest('hex')
    .slice(0, 32);
}

function refused(message: string): never {
  throw ApplicationFailure.nonRetryable(message, FAILURE_TYPES.mcpCallRefused);
}

/** Why the catalog no longer matches what was approved, or undefined when it does. */
function pinDrift(entry: McpServerEntry, pin: McpPin, image: string | undefined): string | undefined {
  if (image !== pin.image) return `its image is now ${image ?? 'not pinned'}, approved was ${pin.image}`;
  const tool = pinnedTool(entry, pin.tool);
  if (!tool) return `the tool "${pin.tool}" is no longer allowed`;
  if (tool.sha256 !== pin.toolSha256) return `the tool "${pin.tool}" was re-pinned since`;
  if (pin.readOnly !== undefined && (tool.readOnly === true) !== pin.readOnly)
    return `the tool "${pin.tool}" is ${pin.readOnly ? 'no longer' : 'now'} pinned as read-only`;
  if (tool.description !== pin.description)
    return `the description approvers were shown is not the catalog's description of "${pin.tool}"`;
  if (entry.workspace !== pin.workspace) return `its workspace access is now ${entry.workspace}`;
  if (entry.network !== pin.network) return `its network is now ${entry.network}`;
  if (serverConfigSha256(entry) !== pin.configSha256)
    return 'how its server runs (command, environment or limits) changed';
  return undefined;
}

export function createMcpActivities(deps: McpDependencies) {
  async function launch(
    input: McpStepInput,
    entry: McpServerEntry,
    callKey: string,
  ): Promise<LaunchedServer> {
    try {
      return await deps.launcher.launch({
        entry,
        workspaceId: input.workspaceId,
        workspaceSizeBytes: input.workspaceSize ? parseSize(input.workspaceSize) : undefined,
        stepPath: input.step.path,
        callKey,
      });
    } catch (error) {
      if (error instanceof SandboxRefused || error instanceof BrokerRefused)
        throw ApplicationFailure.nonRetryable(
          `the sandbox refused to start server "${entry.id}": ${error.message}`,
          FAILURE_TYPES.sandboxRefused,
        );
      throw ApplicationFailure.retryable(
        `could not start server "${entry.id}": ${(error as Error).message}`,
        FAILURE_TYPES.sandboxUnavailable,
      );
    }
  }

  return {
    /**
     * Matches each call to the catalog: the server exists, the tool is allowed, the arguments
     * fit the tool's pinned schema. Returns a pin per step path, or every problem found.
     */
    async pinMcpCalls(
      calls: McpCallSpec[],
    ): Promise<{ pins: Record<string, McpPin>; problems: PlanIssue[] }> {
      const catalog = await deps.catalog();
      const pins: Record<string, McpPin> = {};
      const problems: PlanIssue[] = [];
      for (const call of calls) {
        const problem = (message: string) => problems.push({ path: call.path, message });
        const entry = catalog.servers.find((s) => s.id === call.server);
        if (!entry) {
          problem(
            `unknown MCP server "${call.server}" (the catalog has ${catalog.servers.map((s) => s.id).join(', ')})`,
          );
          continue;
        }
        const tool = pinnedTool(entry, call.tool);
        if (!tool) {
          problem(
            `tool "${call.tool}" is not allowed on server "${call.server}" (allowed: ${Object.keys(entry.tools).join(', ')})`,
          );
          continue;
        }
        if (!pinIsIntact(call.tool, tool)) {
          problem(
            `the catalog's pinned description or schema of ${call.server}/${call.tool} does not match its hash (edited by hand?): review it with \`countersign mcp pin ${call.server}\``,
          );
          continue;
        }
        const image = deps.launcher.imageOf(entry);
        if (!image) {
          problem(
            `server "${call.server}" has no pinned image here: run \`countersign mcp pin ${call.server}\``,
          );
          continue;
        }
        let check;
        try {
          check = argumentCheck(tool.sha256, tool.inputSchema)(call.arguments);
        } catch (error) {
          problem(`the pinned input schema of "${call.tool}" cannot be used: ${(error as Error).message}`);
          continue;
        }
        if (!check.valid) {
          problem(
            `arguments do not fit the input schema of ${call.server}/${call.tool}: ${check.errorMessage}`,
          );
          continue;
        }
        pins[call.path] = {
          server: entry.id,
          image,
          tool: call.tool,
          toolSha256: tool.sha256,
          description: tool.description,
          workspace: entry.workspace,
          network: entry.network,
          configSha256: serverConfigSha256(entry),
          readOnly: tool.readOnly === true,
        };
      }
      return { pins, problems };
    },

    async runMcpStep(input: McpStepInput): Promise<StepResult> {
      const context = Context.current();
      await authorizeExecution(input, deps.trust, Date.now());
      const { step, mcpPin: pin } = input;
      const entry = (await deps.catalog()).servers.find((s) => s.id === step.server);
      if (!entry) refused(`server "${step.server}" is no longer in the catalog; nothing was called`);
      const drift = pinDrift(entry, pin, deps.launcher.imageOf(entry));
      if (drift)
        refused(
          `the catalog entry of "${entry.id}" on executor host ${hostname()} differs from the one this call was approved with (${drift}); nothing was called. Catalog pins are per host: submit the step again to approve the call as it is now`,
        );

      const callKey = callKeyOf(input);
      if (context.info.attempt > 1) {
        const earlier = context.info.heartbeatDetails as { phase?: string } | undefined;
        const leftovers = await deps.launcher.removeLeftovers(callKey);
        // An earlier attempt that got as far as starting its server may have sent the call (the
        // heartbeat saying so can be lost with the executor): only one that said it never did is retried.
        if (leftovers > 0 || (earlier !== undefined && earlier.phase !== 'not-called'))
          throw ApplicationFailure.nonRetryable(
            `attempt ${context.info.attempt - 1} of this call ended after its server had started (the executor stopped or lost touch); the tool may have run, so it is not called again (approved once, run at most once). ${leftovers ? 'The server left behind was removed. ' : ''}Submit the step again if it should run`,
            FAILURE_TYPES.mcpCallInterrupted,
          );
      }

      let phase = 'starting';
      context.heartbeat({ phase });
      const beat = setInterval(() => context.heartbeat({ phase }), HEARTBEAT_MS);
      const startedAtMs = Date.now();
      const timeoutMs = Math.min(parseDuration(step.timeout), parseDuration(entry.limits.callTimeout));
      let server: LaunchedServer | undefined;
      let outcome: ToolCallOutcome;
      let startMs = 0;
      let removeMs = 0;
      const launchStarted = performance.now();
      try {
        server = await launch(input, entry, callKey);
        startMs = performance.now() - launchStarted;
        outcome = await callPinnedTool(server, {
          entry,
          tool: step.tool,
          arguments: step.arguments,
          timeoutMs,
          signal: context.cancellationSignal,
          onCalling: () => {
            phase = 'calling';
            context.heartbeat({ phase });
          },
        });
      } catch (error) {
        if (!server) {
          // Nothing was started, so nothing was called: a retry may run it.
          phase = 'not-called';
          context.heartbeat({ phase });
        }
        if (context.cancellationSignal.aborted)
          throw new CancelledFailure(
            'MCP call cancelled; its server was removed',
            server ? [STEP_LAUNCHED_DETAIL] : [],
          );
        if (error instanceof McpCallRefused) refused(error.message);
        if (error instanceof McpServerFailed)
          throw ApplicationFailure.nonRetryable(
            error.called
              ? `${error.message}; the call may have taken effect and is not repeated`
              : error.message,
            FAILURE_TYPES.mcpServerFailed,
          );
        throw error;
      } finally {
        clearInterval(beat);
        const removeStarted = performance.now();
        await server?.dispose().catch((error: unknown) => {
          context.log.warn(
            'could not remove an MCP server; the janitor removes it once it outlives the longest call',
            { error: String(error) },
          );
        });
        removeMs = performance.now() - removeStarted;
      }
      const finishedAtMs = Date.now();
      const { timings } = outcome;
      return attested(
        input,
        {
          exitCode: null,
          signal: null,
          durationMs: finishedAtMs - startedAtMs,
          outputTail: outcome.text,
          outputBytes: outcome.resultBytes,
          truncated: outcome.truncated,
          timedOut: false,
          backend: deps.launcher.name,
          startedAt: new Date(startedAtMs).toISOString(),
          finishedAt: new Date(finishedAtMs).toISOString(),
          attachCount: 1,
          attempt: context.info.attempt,
          mcp: {
            isError: outcome.isError,
            ...(outcome.structuredContent === undefined
              ? {}
              : { structuredContent: outcome.structuredContent }),
            timings: {
              startMs: Math.round(startMs),
              initializeMs: Math.round(timings.initializeMs),
              listMs: Math.round(timings.listMs),
              callMs: Math.round(timings.callMs),
              removeMs: Math.round(removeMs),
            },
          },
        },
        deps.trust,
      );
    },
  };
}
