/**
 * `countersign mcp catalog` and `countersign mcp pin` as a person types them, against a fresh
 * state folder, with the jail as sandbox (no Docker) and no Temporal at all: what the catalog
 * offers, a re-pin that finds nothing new, a changed description shown as was/now and written
 * only when asked, the allowlist grown by `--allow`, and the messages for names that do not exist.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toolSha256, type McpCatalog, type PinnedTool } from '../core/mcp/catalog.js';
import { PROJECT_ROOT, statePaths } from '../workers/config.js';
import { MCP_CATALOG_TEMPLATE } from '../workers/sandbox-choice.js';

let home: string;
let catalogPath: string;
let template: string;

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'countersign-mcp-cli-'));
  catalogPath = statePaths(home).mcpCatalog;
  template = await readFile(MCP_CATALOG_TEMPLATE, 'utf8');
});
afterAll(async () => {
  if (home) await rm(home, { recursive: true, force: true });
});

async function cli(...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(join(PROJECT_ROOT, 'bin', 'countersign'), args, {
      env: {
        ...process.env,
        COUNTERSIGN_HOME: home,
        COUNTERSIGN_SANDBOX: 'jail',
        // Nothing listens here: the mcp commands must not need Temporal.
        TEMPORAL_ADDRESS: '127.0.0.1:1',
        NO_COLOR: '1',
      },
      cwd: PROJECT_ROOT,
    });
    return { code: 0, out: stdout + stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

const readHomeCatalog = async () => JSON.parse(await readFile(catalogPath, 'utf8')) as McpCatalog;
const everything = (catalog: McpCatalog) => catalog.servers.find((s) => s.id === 'everything')!;

/** The home's catalog with the pin of `echo` changed the way `edit` says. */
async function editEcho(edit: (tool: PinnedTool) => void): Promise<string> {
  const catalog = await readHomeCatalog();
  edit(everything(catalog).tools.echo!);
  const text = `${JSON.stringify(catalog, null, 2)}\n`;
  await writeFile(catalogPath, text);
  return text;
}

describe('countersign mcp', () => {
  it('lists the shipped servers with their tools before anything is pinned, in words and as JSON', async () => {
    const [listed, json] = await Promise.all([cli('mcp', 'catalog'), cli('mcp', 'catalog', '--json')]);
    expect(listed.code).toBe(0);
    expect(listed.out).toContain(`catalog ${MCP_CATALOG_TEMPLATE}`);
    for (const [server, tools] of [
      ['filesystem', ['read_text_file', 'write_file', 'list_directory']],
      ['everything', ['echo', 'get-sum', 'get-structured-content']],
      ['memory', ['create_entities', 'search_nodes']],
    ] as const) {
      expect(listed.out).toMatch(new RegExp(`^${server}  `, 'm'));
      for (const tool of tools) expect(listed.out).toMatch(new RegExp(`^  ${tool} +\\S`, 'm'));
    }
    expect(listed.out).toMatch(/^ {2}echo +Echoes back the input string [0-9a-f]{12}$/m);

    expect(json.code).toBe(0);
    const catalog = JSON.parse(json.out) as McpCatalog;
    expect(catalog.servers.map((s) => s.id)).toEqual(['filesystem', 'everything', 'memory']);
    expect(everything(catalog).tools.echo!.description).toBe('Echoes back the input string');
    expect(existsSync(catalogPath)).toBe(false);
  });

  it('re-pins a server that has not changed: nothing to change, and the installation catalog is made', async () => {
    const pin = await cli('mcp', 'pin', 'everything', '--dry-run');
    expect(pin.code).toBe(0);
    expect(pin.out).toContain('everything (started in jail to read its tools)');
    expect(pin.out).toMatch(/^ {2}= echo$/m);
    expect(pin.out).toContain('nothing to change');
    expect(pin.out).not.toContain('dry run: nothing written');
    const catalog = await readHomeCatalog();
    expect(everything(catalog).sourceLock).toMatch(/^[0-9a-f]{64}$/);
    expect((await cli('mcp', 'catalog')).out).toContain(`catalog ${catalogPath}`);
  });

  it('shows a changed description as was/now on a dry run and writes nothing; pin writes it back', async () => {
    // As if echo had been pinned when the server described it otherwise.
    const before = await editEcho((tool) => {
      tool.description = 'Echoes back the input string, then emails it home';
      tool.sha256 = toolSha256({ name: 'echo', ...tool });
    });
    const dry = await cli('mcp', 'pin', 'everything', '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.out).toMatch(/^ {2}~ echo: description changed$/m);
    expect(dry.out).toMatch(/^ {6}was: Echoes back the input string, then emails it home$/m);
    expect(dry.out).toMatch(/^ {6}now: Echoes back the input string$/m);
    expect(dry.out).toMatch(/^ {2}= get-sum$/m);
    expect(dry.out).toContain('dry run: nothing written');
    expect(await readFile(catalogPath, 'utf8')).toBe(before);

    const pin = await cli('mcp', 'pin', 'everything');
    expect(pin.code).toBe(0);
    expect(pin.out).toContain('~ echo: description changed');
    expect(pin.out).toContain(`pinned; written to ${catalogPath}`);
    const echo = everything(await readHomeCatalog()).tools.echo!;
    expect(echo.description).toBe('Echoes back the input string');
    expect(echo.sha256).toBe(toolSha256({ name: 'echo', ...echo }));

    const again = await cli('mcp', 'pin', 'everything', '--dry-run');
    expect(again.out).toMatch(/^ {2}= echo$/m);
    expect(again.out).toContain('nothing to change');
  });

  // A pin whose description alone was edited no longer hashes to itself: approvers would be shown
  // text nobody pinned, so `mcp pin` reports it.
  it('notices a pinned description edited without its hash', async () => {
    const saved = await readFile(catalogPath, 'utf8');
    try {
      await editEcho((tool) => {
        tool.description = 'Echoes back the input string, then emails it home';
      });
      const dry = await cli('mcp', 'pin', 'everything', '--dry-run');
      expect(dry.out).toMatch(/^ {2}~ echo: description changed$/m);
    } finally {
      await writeFile(catalogPath, saved);
    }
  });

  it('refuses a server not in the catalog, naming the ones it has', async () => {
    const pin = await cli('mcp', 'pin', 'nosuch');
    expect(pin.code).toBe(1);
    expect(pin.out).toContain(
      'countersign: no server "nosuch" in the catalog (it has filesystem, everything, memory)',
    );
  });

  it('adds a tool to the allowlist with --allow', async () => {
    expect(everything(await readHomeCatalog()).tools['get-env']).toBeUndefined();
    const pin = await cli('mcp', 'pin', 'everything', '--allow', 'get-env');
    expect(pin.code).toBe(0);
    expect(pin.out).toMatch(/^ {2}\+ get-env: \S/m);
    expect(pin.out).toMatch(/^ {2}= echo$/m);
    const tools = everything(await readHomeCatalog()).tools;
    expect(tools['get-env']!.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(tools.echo).toBeDefined();
    expect((await cli('mcp', 'catalog')).out).toMatch(/^ {2}get-env +\S/m);
  });

  it('refuses --allow of a tool the server does not offer, naming those it does, and writes nothing', async () => {
    const before = await readFile(catalogPath, 'utf8');
    const pin = await cli('mcp', 'pin', 'everything', '--allow', 'nosuchtool');
    expect(pin.code).toBe(1);
    expect(pin.out).toMatch(
      /countersign: server "everything" has no tool "nosuchtool" \(it offers echo, .*get-env, .*get-sum/,
    );
    expect(await readFile(catalogPath, 'utf8')).toBe(before);
  });

  it('left the shipped catalog alone', async () => {
    expect(await readFile(MCP_CATALOG_TEMPLATE, 'utf8')).toBe(template);
  });
});
