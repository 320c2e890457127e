/**
 * The catalog on disk. The project ships `sandbox/mcp/catalog.json` (servers, allowed tools and
 * their approved hashes); each installation keeps its own copy in its state folder, where the
 * locally built images are pinned by id. The copy is made on first use; after that only
 * `countersign mcp pin` changes it, so a rebuilt image or a changed tool is refused until
 * someone looks at the difference.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  CatalogError,
  pinIsIntact,
  parseCatalog,
  toolSha256,
  type McpCatalog,
  type McpServerEntry,
  type PinnedTool,
} from '../../core/mcp/catalog.js';

export async function readCatalog(path: string): Promise<McpCatalog> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new CatalogError(`cannot read the MCP catalog ${path}: ${(error as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new CatalogError(`${path} is not JSON: ${(error as Error).message}`);
  }
  return parseCatalog(raw, path);
}

export async function writeCatalog(path: string, catalog: McpCatalog): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(catalog, null, 2)}\n`);
  await rename(temporary, path);
}

/**
 * The jail's pin, where there is no image id: SHA-256 over what runs, the server folder's own
 * files (package.json, package-lock.json, scripts) and the bundle built from its packages.
 * The jail recomputes it before each start, so changed code never runs under an old pin.
 */
export async function sourceLockOf(projectRoot: string, entry: McpServerEntry): Promise<string | undefined> {
  const dir = join(projectRoot, entry.source);
  if (!existsSync(dir)) return undefined;
  const files = (await readdir(dir, { withFileTypes: true }))
    .filter((f) => f.isFile() && /\.(json|m?js|cjs)$/.test(f.name))
    .map((f) => f.name)
    .sort();
  // The bundle a catalog command runs (scripts/bundle-mcp-server.mjs), when there is one.
  const bundles = entry.command
    .filter((arg) => arg.startsWith('/opt/mcp/') && arg.endsWith('.mjs') && arg.includes('/node_modules/'))
    .map((arg) => arg.slice('/opt/mcp/'.length));
  if (!files.length) return undefined;
  const hash = createHash('sha256');
  for (const name of [...files, ...bundles]) {
    const path = join(dir, name);
    hash.update(`${name}\n`).update(existsSync(path) ? await readFile(path) : 'missing');
  }
  return hash.digest('hex');
}

export interface SeedOptions {
  /** The installation's catalog (state folder). */
  path: string;
  /** The shipped catalog it starts from. */
  template: string;
  projectRoot: string;
  /** The id of a locally built image, or undefined where there is none (no Docker). */
  imageIdOf: (tag: string) => Promise<string | undefined>;
}

/**
 * Returns the installation's catalog, creating it from the shipped one on first use. An entry
 * pinned to nothing yet (a new machine, or the first start with Docker) is pinned to what is
 * built here now; a pin that exists is never moved.
 */
export async function ensureCatalog(options: SeedOptions): Promise<McpCatalog> {
  const catalog = existsSync(options.path)
    ? await readCatalog(options.path)
    : await readCatalog(options.template);
  let changed = !existsSync(options.path);
  for (const entry of catalog.servers) {
    if (!entry.imageId) {
      const id = await options.imageIdOf(entry.image);
      if (id) {
        entry.imageId = id;
        changed = true;
      }
    }
    if (!entry.sourceLock) {
      const lock = await sourceLockOf(options.projectRoot, entry);
      if (lock) {
        entry.sourceLock = lock;
        changed = true;
      }
    }
  }
  if (changed) await writeCatalog(options.path, catalog);
  return catalog;
}

export interface ListedTool {
  name: string;
  description?: string | undefined;
  inputSchema: Record<string, unknown>;
  annotations?: { readOnlyHint?: boolean | undefined } | undefined;
}

export interface PinChange {
  tool: string;
  change: 'added' | 'description' | 'schema' | 'read-only' | 'removed' | 'unchanged';
  before?: PinnedTool | undefined;
  after?: PinnedTool | undefined;
}

/**
 * The entry re-pinned to the tools a server lists now. Allowed tools stay allowed (and are
 * reported removed when the server lost them); `allow` adds tools to the allowlist.
 */
export function repin(
  entry: McpServerEntry,
  listed: ListedTool[],
  allow: string[] = [],
): { entry: McpServerEntry; changes: PinChange[]; unknown: string[] } {
  const byName = new Map(listed.map((t) => [t.name, t]));
  const wanted = [...new Set([...Object.keys(entry.tools), ...allow])];
  const tools: Record<string, PinnedTool> = {};
  const changes: PinChange[] = [];
  const unknown = allow.filter((name) => !byName.has(name));
  for (const name of wanted) {
    const before = entry.tools[name];
    const now = byName.get(name);
    if (!now) {
      if (before) changes.push({ tool: name, change: 'removed', before });
      continue;
    }
    const after: PinnedTool = {
      sha256: toolSha256(now),
      description: now.description ?? '',
      inputSchema: now.inputSchema,
      readOnly: now.annotations?.readOnlyHint === true,
    };
    tools[name] = after;
    // A pin whose text was edited by hand no longer hashes to itself: that is a change too.
    const intact = before !== undefined && pinIsIntact(name, before);
    const change = !before
      ? 'added'
      : before.sha256 === after.sha256 && intact
        ? before.readOnly === after.readOnly
          ? 'unchanged'
          : 'read-only'
        : before.description !== after.description
          ? 'description'
          : 'schema';
    changes.push({ tool: name, change, before, after });
  }
  return { entry: { ...entry, tools }, changes, unknown };
}
