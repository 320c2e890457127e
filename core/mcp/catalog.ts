/**
 * The MCP catalog: the servers a plan may call, how each runs, and every allowed tool as it was
 * approved (name, description and input schema, hashed). A server whose tools no longer hash to
 * these values is refused before any call: that is how a poisoned or "rug-pulled" tool is caught.
 */
import { z } from 'zod';
import { sha256Hex } from '../bytes.js';
import { canonicalJson } from '../canonical.js';
import { DURATION_PATTERN, parseDuration } from '../duration.js';
import { DURATION_LIMITS } from '../plan/limits.js';

export type WorkspaceAccess = 'none' | 'read-only' | 'read-write';

export interface PinnedTool {
  /** SHA-256 of the tool's name, description and input schema (see `toolSha256`). */
  sha256: string;
  /** What the tool says it does, as approved: shown to every approver of a call. */
  description: string;
  inputSchema: Record<string, unknown>;
  /** The server annotated the tool read-only when it was pinned (a grant needs `allowWrites` otherwise). */
  readOnly?: boolean | undefined;
}

export interface McpServerEntry {
  id: string;
  description: string;
  /** The locally built image (Docker). */
  image: string;
  /** The image id the catalog was pinned to: a rebuilt image is refused until `countersign mcp pin`. */
  imageId?: string | undefined;
  /** Folder, relative to the project, holding the server's files (copied into the image; bound into the jail). */
  source: string;
  /** SHA-256 of the server's package-lock.json: what the jail pins, where there is no image. */
  sourceLock?: string | undefined;
  /** Run inside the container or jail, where `source` is at /opt/mcp. */
  command: string[];
  /** Variables for the server (a file location, say); never secrets: the catalog is not a vault. */
  env: Record<string, string>;
  workspace: WorkspaceAccess;
  network: 'none' | 'egress';
  limits: { memoryMiB: number; cpus: number; pids: number; callTimeout: string };
  tools: Record<string, PinnedTool>;
}

export interface McpCatalog {
  version: 1;
  servers: McpServerEntry[];
}

/** What a workflow records for an `mcp` step once its call is matched to the catalog; part of the step digest. */
export interface McpPin {
  server: string;
  /** The image id (Docker) or `jail:<sha256 of the server's lock file>`. */
  image: string;
  tool: string;
  toolSha256: string;
  /** The pinned description, shown to approvers. */
  description: string;
  workspace: WorkspaceAccess;
  network: 'none' | 'egress';
  /** SHA-256 of how the server runs (command, env, workspace, network, limits): see `serverConfigSha256`. */
  configSha256: string;
  /** The tool is pinned as read-only (its server annotates it so). Absent in pins made before this existed. */
  readOnly?: boolean | undefined;
}

/** The longest a call may take; a server container older than this (and a margin) is a leftover. */
export const MAX_CALL_TIMEOUT_MS = DURATION_LIMITS.mcpTimeout.max;

const TOOL_DOMAIN = 'countersign/mcp-tool/v1\n';

/** The hash that pins a tool: any change to its name, description or input schema changes it. */
export function toolSha256(tool: {
  name: string;
  description?: string | undefined;
  inputSchema: unknown;
}): string {
  return sha256Hex(
    TOOL_DOMAIN +
      canonicalJson({ name: tool.name, description: tool.description ?? '', inputSchema: tool.inputSchema }),
  );
}

/** How an entry runs its server: a changed command (another folder to serve, say) changes this. */
export function serverConfigSha256(
  entry: Pick<McpServerEntry, 'command' | 'env' | 'workspace' | 'network' | 'limits'>,
): string {
  const { command, env, workspace, network, limits } = entry;
  return sha256Hex(
    'countersign/mcp-server-config/v1\n' +
      canonicalJson({
        command,
        env,
        workspace,
        network,
        limits: { ...limits, cpus: Math.round(limits.cpus * 1000) },
      }),
  );
}

/** The pinned description and schema still hash to the pin (nobody edited the text approvers are shown). */
export function pinIsIntact(name: string, tool: PinnedTool): boolean {
  return toolSha256({ name, description: tool.description, inputSchema: tool.inputSchema }) === tool.sha256;
}

/** The pinned tool of that name, never a property every object has (`constructor`). */
export function pinnedTool(entry: McpServerEntry, name: string): PinnedTool | undefined {
  return Object.hasOwn(entry.tools, name) ? entry.tools[name] : undefined;
}

const serverId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'server ids are 1-63 of a-z, 0-9, "-" and "_"');
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'expected a SHA-256 in hex');
const entrySchema = z
  .object({
    id: serverId,
    description: z.string().max(2000),
    image: z.string().regex(/^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9._-]+)?$/, 'expected an image tag'),
    imageId: z
      .string()
      .regex(/^sha256:[0-9a-f]{64}$/)
      .optional(),
    source: z
      .string()
      .regex(/^[A-Za-z0-9._/-]+$/)
      .refine(
        (p) => !p.startsWith('/') && !p.split('/').includes('..'),
        'must be a folder inside the project',
      ),
    sourceLock: sha256.optional(),
    command: z.array(z.string().max(4096)).min(1).max(64),
    env: z.record(z.string().regex(/^[A-Z_][A-Z0-9_]{0,63}$/), z.string().max(4096)).default({}),
    workspace: z.enum(['none', 'read-only', 'read-write']).default('none'),
    network: z.enum(['none', 'egress']).default('none'),
    limits: z
      .object({
        memoryMiB: z.int().min(16).max(4096).default(256),
        cpus: z.number().min(0.1).max(2).default(1),
        pids: z.int().min(8).max(1024).default(128),
        callTimeout: z
          .string()
          .regex(DURATION_PATTERN)
          .refine((d) => parseDuration(d) <= MAX_CALL_TIMEOUT_MS, 'a call may take at most 1h')
          .default('2m'),
      })
      .strict()
      .prefault({}),
    tools: z.record(
      z.string().min(1).max(128),
      z
        .object({
          sha256,
          description: z.string(),
          inputSchema: z.record(z.string(), z.unknown()),
          readOnly: z.boolean().optional(),
        })
        .strict(),
    ),
  })
  .strict();
const catalogSchema = z.object({ version: z.literal(1), servers: z.array(entrySchema).max(256) }).strict();

export class CatalogError extends Error {
  override readonly name = 'CatalogError';
}

/** Checks a catalog read from disk; throws CatalogError naming the bad field. */
export function parseCatalog(raw: unknown, where: string): McpCatalog {
  const result = catalogSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new CatalogError(`${where}: ${issue.path.join('.') || '(catalog)'}: ${issue.message}`);
  }
  const ids = new Set<string>();
  for (const server of result.data.servers) {
    if (ids.has(server.id)) throw new CatalogError(`${where}: server "${server.id}" is listed twice`);
    ids.add(server.id);
  }
  return result.data;
}
