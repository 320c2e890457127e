/**
 * One pinned tool call on a freshly started MCP server: initialise, list the tools, refuse the
 * call if any allowed tool no longer hashes to its pinned value, call, and shape the result for
 * the plan's history (bounded, with a marker where it was cut). The server is disposed of by the
 * caller, whatever happens here.
 */
import type { Readable, Writable } from 'node:stream';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import { canonicalJson } from '../../core/canonical.js';
import { pinnedTool, toolSha256, type McpServerEntry, type PinnedTool } from '../../core/mcp/catalog.js';
import { quoteServerOutput, StreamTransport } from './stream-transport.js';

/** A server process started for one call, in a container or a jail. */
export interface McpServerHandle {
  stdout: Readable;
  stdin: Writable;
  /** The last KiB the server wrote to stderr. */
  stderrTail(): string;
  /** How the server ended, as far as the sandbox knows; waits at most `waitMs` for it to end. */
  exit(waitMs: number): Promise<ServerExit | undefined>;
}

export interface ServerExit {
  exitCode: number | null;
  /** The sandbox's own words for a kill the exit code does not explain (out of memory). */
  diagnosis?: string | undefined;
}

/** The call was refused before it was made: nothing ran. */
export class McpCallRefused extends Error {
  override readonly name = 'McpCallRefused';
  constructor(
    readonly code: 'tool_missing' | 'tool_changed',
    message: string,
  ) {
    super(message);
  }
}

/** The server failed (crashed, hung, wrote garbage, ran out of memory); `called` says whether the call had been sent. */
export class McpServerFailed extends Error {
  override readonly name = 'McpServerFailed';
  constructor(
    message: string,
    readonly called: boolean,
  ) {
    super(message);
  }
}

export interface ToolCallOutcome {
  isError: boolean;
  /** Every content item in words, cut at the limit with a marker saying so. */
  text: string;
  /** Bytes of the whole result as JSON, before any cut. */
  resultBytes: number;
  truncated: boolean;
  structuredContent?: unknown;
  timings: { initializeMs: number; listMs: number; callMs: number };
}

export interface ToolCallRequest {
  entry: McpServerEntry;
  tool: string;
  arguments: Record<string, unknown>;
  /** For everything from initialize to the result. */
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  /** Told just before the call is sent: from then on, the call may have taken effect. */
  onCalling?: () => void;
  limits?: Partial<typeof RESULT_LIMITS>;
}

export const RESULT_LIMITS = {
  /** The largest JSON-RPC message read from a server. */
  maxMessageBytes: 8 * 1024 * 1024,
  /** Text kept in the step's result (the plan history). */
  maxTextBytes: 32 * 1024,
  /** Structured content kept, as JSON. */
  maxStructuredBytes: 32 * 1024,
  /** How long a server may take to answer `initialize`. */
  initializeMs: 15_000,
};

/** Compares what the server lists now with what was approved; throws McpCallRefused on any difference. */
export function checkToolsAgainstPins(
  entry: McpServerEntry,
  listed: Pick<Tool, 'name' | 'description' | 'inputSchema' | 'annotations'>[],
  tool: string,
): void {
  const byName = new Map(listed.map((t) => [t.name, t]));
  if (byName.size !== listed.length) {
    const twice = listed.find((t, i) => listed.findIndex((u) => u.name === t.name) !== i)!.name;
    throw new McpCallRefused(
      'tool_changed',
      `server "${entry.id}" lists the tool "${twice}" more than once, so which one it would run cannot be told; nothing was called`,
    );
  }
  if (!pinnedTool(entry, tool))
    throw new McpCallRefused(
      'tool_missing',
      `tool "${tool}" is not pinned in the catalog entry of "${entry.id}"; nothing was called`,
    );
  if (!byName.has(tool))
    throw new McpCallRefused(
      'tool_missing',
      `server "${entry.id}" no longer offers the tool "${tool}"; nothing was called`,
    );
  for (const [name, pinned] of Object.entries(entry.tools)) {
    const now = byName.get(name);
    if (!now) continue;
    const hash = toolSha256(now);
    if (hash !== pinned.sha256)
      throw new McpCallRefused(
        'tool_changed',
        `tool "${name}" on server "${entry.id}" is not what was approved (${whatChanged(pinned, now)}; pinned ${pinned.sha256.slice(0, 12)}…, now ${hash.slice(0, 12)}…); nothing was called. Review it with \`countersign mcp pin ${entry.id}\``,
      );
    // A grant may allow a read-only tool without asking; a tool that stops saying so is not that tool.
    if (pinned.readOnly === true && now.annotations?.readOnlyHint !== true)
      throw new McpCallRefused(
        'tool_changed',
        `tool "${name}" on server "${entry.id}" was pinned as read-only and no longer says it is; nothing was called. Review it with \`countersign mcp pin ${entry.id}\``,
      );
  }
}

function whatChanged(pinned: PinnedTool, now: Pick<Tool, 'description' | 'inputSchema'>): string {
  const changes: string[] = [];
  if ((now.description ?? '') !== pinned.description)
    changes.push(`its description now reads ${quoteServerOutput(now.description ?? '', 160)}`);
  let schemaChanged = true;
  try {
    schemaChanged = canonicalJson(now.inputSchema) !== canonicalJson(pinned.inputSchema);
  } catch {
    // a schema canonical JSON cannot encode counts as changed
  }
  if (schemaChanged) changes.push('its input schema changed');
  return changes.join(', and ') || 'its definition changed';
}

/** Cuts UTF-8 text to at most `maxBytes`, on a character boundary. */
function cutUtf8(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  return bytes
    .subarray(0, maxBytes)
    .toString('utf8')
    .replace(/\uFFFD$/, '');
}

const sizeInWords = (bytes: number) =>
  bytes >= 1024 ** 2 ? `${(bytes / 1024 ** 2).toFixed(1)} MiB` : `${Math.ceil(bytes / 1024)} KiB`;

/** The result in words for the history, bounded; binary content is described, never copied. */
export function shapeResult(
  result: CallToolResult,
  limits: Pick<typeof RESULT_LIMITS, 'maxTextBytes' | 'maxStructuredBytes'>,
): Omit<ToolCallOutcome, 'timings'> {
  const parts = result.content.map((item) => {
    switch (item.type) {
      case 'text':
        return item.text;
      case 'image':
      case 'audio':
        return `[${item.type} ${item.mimeType}, ${Math.floor((item.data.length * 3) / 4)} bytes]`;
      case 'resource':
        return 'text' in item.resource
          ? `[resource ${item.resource.uri}]\n${item.resource.text}`
          : `[resource ${item.resource.uri}${item.resource.mimeType ? ` ${item.resource.mimeType}` : ''}, ${Math.floor((item.resource.blob.length * 3) / 4)} bytes]`;
      case 'resource_link':
        return `[link ${item.uri}${item.name ? ` "${item.name}"` : ''}]`;
      default:
        return `[${(item as { type: string }).type} content]`;
    }
  });
  const full = parts.join('\n');
  const resultBytes = Buffer.byteLength(JSON.stringify(result), 'utf8');
  let text = cutUtf8(full, limits.maxTextBytes);
  let truncated = text.length < full.length;
  const structuredJson =
    result.structuredContent === undefined ? '' : JSON.stringify(result.structuredContent);
  const keepStructured = Buffer.byteLength(structuredJson, 'utf8') <= limits.maxStructuredBytes;
  if (!keepStructured) truncated = true;
  if (truncated)
    text += `\n…[truncated by Countersign: the result was ${sizeInWords(resultBytes)}; the first ${sizeInWords(limits.maxTextBytes)} of its text are kept${keepStructured ? '' : ', and its structured content was dropped'}]`;
  return {
    isError: result.isError === true,
    text,
    resultBytes,
    truncated,
    ...(keepStructured && result.structuredContent !== undefined
      ? { structuredContent: result.structuredContent }
      : {}),
  };
}

/** Every tool a server lists, page by page (at most 20 pages: a server cannot keep us listing). */
export async function listAllTools(
  client: Client,
  options: () => { timeout: number; signal?: AbortSignal | undefined },
): Promise<Tool[]> {
  const tools: Tool[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 20; page++) {
    const result = await client.listTools(cursor ? { cursor } : {}, options());
    tools.push(...result.tools);
    cursor = result.nextCursor;
    if (!cursor) break;
  }
  return tools;
}

export async function callPinnedTool(
  server: McpServerHandle,
  request: ToolCallRequest,
): Promise<ToolCallOutcome> {
  const limits = { ...RESULT_LIMITS, ...request.limits };
  const transport = new StreamTransport(server.stdout, server.stdin, {
    maxMessageBytes: limits.maxMessageBytes,
  });
  const client = new Client({ name: 'countersign', version: '1' }, { capabilities: {} });
  const deadline = Date.now() + request.timeoutMs;
  const remaining = () => Math.max(1, deadline - Date.now());
  let phase: 'initialize' | 'list' | 'call' = 'initialize';
  const started = performance.now();
  const timings = { initializeMs: 0, listMs: 0, callMs: 0 };
  try {
    await client.connect(transport, {
      timeout: Math.min(limits.initializeMs, remaining()),
      signal: request.signal,
    });
    timings.initializeMs = performance.now() - started;
    phase = 'list';
    const listed = await listAllTools(client, () => ({ timeout: remaining(), signal: request.signal }));
    timings.listMs = performance.now() - started - timings.initializeMs;
    checkToolsAgainstPins(request.entry, listed, request.tool);
    phase = 'call';
    request.onCalling?.();
    const result = (await client.callTool({ name: request.tool, arguments: request.arguments }, undefined, {
      timeout: remaining(),
      signal: request.signal,
    })) as CallToolResult;
    timings.callMs = performance.now() - started - timings.initializeMs - timings.listMs;
    return { ...shapeResult(result, limits), timings };
  } catch (error) {
    if (error instanceof McpCallRefused || request.signal?.aborted) throw error;
    throw new McpServerFailed(await explain(server, transport, error, phase, request), phase === 'call');
  } finally {
    await client.close().catch(() => undefined);
  }
}

/** The real reason a session ended: what the sandbox saw beats the client's "Connection closed". */
async function explain(
  server: McpServerHandle,
  transport: StreamTransport,
  error: unknown,
  phase: 'initialize' | 'list' | 'call',
  request: ToolCallRequest,
): Promise<string> {
  const during = {
    initialize: 'while starting',
    list: 'while listing its tools',
    call: 'during the tool call',
  }[phase];
  const message = (error as Error).message ?? String(error);
  const stderr = server.stderrTail().trim();
  const said = stderr ? `; its last words on stderr: ${quoteServerOutput(stderr.slice(-300), 300)}` : '';
  if (transport.failure) return `server "${request.entry.id}" failed ${during}: ${transport.failure}${said}`;
  if (/timed out/i.test(message)) {
    const what =
      phase === 'initialize'
        ? 'did not answer `initialize`'
        : phase === 'call'
          ? 'did not finish the call'
          : 'did not list its tools';
    return `server "${request.entry.id}" ${what} in time (${phase === 'initialize' ? 'start-up limit' : 'step timeout'} reached)${said}`;
  }
  const exit = await server.exit(2_000).catch(() => undefined);
  if (exit?.diagnosis) return `server "${request.entry.id}" ${exit.diagnosis} ${during}${said}`;
  if (exit)
    return `server "${request.entry.id}" exited with code ${exit.exitCode ?? 'unknown'} ${during}${said}`;
  return `server "${request.entry.id}" failed ${during}: ${message}${said}`;
}
