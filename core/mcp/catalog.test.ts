import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CatalogError, parseCatalog, toolSha256 } from './catalog.js';

const SHIPPED_PATH = new URL('../../sandbox/mcp/catalog.json', import.meta.url);
const shipped = (): { version: number; servers: Record<string, unknown>[] } =>
  JSON.parse(readFileSync(SHIPPED_PATH, 'utf8')) as { version: number; servers: Record<string, unknown>[] };

const HEX64 = 'a'.repeat(64);

/** A small entry with every required field and nothing else. */
const entry = (more: Record<string, unknown> = {}): Record<string, unknown> => ({
  id: 'echo',
  description: 'an echo server',
  image: 'countersign/mcp-echo:latest',
  source: 'sandbox/mcp/servers/echo',
  command: ['node', '/opt/mcp/index.js'],
  tools: { echo: { sha256: HEX64, description: 'Echoes its input', inputSchema: { type: 'object' } } },
  ...more,
});
const catalogOf = (...servers: unknown[]) => ({ version: 1, servers });

/** The message parseCatalog refuses `raw` with; fails the test when it is accepted. */
function refusal(raw: unknown): string {
  try {
    parseCatalog(raw, 'catalog.json');
  } catch (error) {
    expect(error).toBeInstanceOf(CatalogError);
    return (error as CatalogError).message;
  }
  throw new Error('expected the catalog to be refused, but it was accepted');
}

describe('parseCatalog', () => {
  it('parses the shipped catalog, with its three servers and their pinned tools', () => {
    const catalog = parseCatalog(shipped(), 'sandbox/mcp/catalog.json');
    expect(catalog.version).toBe(1);
    expect(catalog.servers.map((s) => s.id)).toEqual(['filesystem', 'everything', 'memory']);
    const everything = catalog.servers.find((s) => s.id === 'everything')!;
    expect(everything).toMatchObject({ workspace: 'none', network: 'none', env: {} });
    expect(Object.keys(everything.tools)).toContain('echo');
    expect(catalog.servers.find((s) => s.id === 'memory')!.env).toEqual({
      MEMORY_FILE_PATH: '/workspace/.mcp-memory.jsonl',
    });
  });

  it('fills in the defaults of a minimal entry', () => {
    const [server] = parseCatalog(catalogOf(entry()), 'catalog.json').servers;
    expect(server).toEqual({
      ...entry(),
      env: {},
      workspace: 'none',
      network: 'none',
      limits: { memoryMiB: 256, cpus: 1, pids: 128, callTimeout: '2m' },
    });
  });

  it('refuses a server id listed twice, naming it', () => {
    expect(refusal(catalogOf(entry(), entry({ image: 'other:1' })))).toBe(
      'catalog.json: server "echo" is listed twice',
    );
  });

  it('refuses the shipped catalog with one of its servers repeated', () => {
    const raw = shipped();
    raw.servers.push(raw.servers[0]!);
    expect(refusal(raw)).toBe('catalog.json: server "filesystem" is listed twice');
  });

  it.each([
    [
      'the catalog',
      { ...catalogOf(entry()), extra: 1 },
      'catalog.json: (catalog): Unrecognized key: "extra"',
    ],
    [
      'a server',
      catalogOf(entry(), entry({ id: 'two', bogus: true })),
      'catalog.json: servers.1: Unrecognized key: "bogus"',
    ],
    [
      'the limits',
      catalogOf(entry({ limits: { memoryMiB: 64, swapMiB: 64 } })),
      'catalog.json: servers.0.limits: Unrecognized key: "swapMiB"',
    ],
    [
      'a pinned tool',
      catalogOf(
        entry({ tools: { echo: { sha256: HEX64, description: '', inputSchema: {}, annotations: {} } } }),
      ),
      'catalog.json: servers.0.tools.echo: Unrecognized key: "annotations"',
    ],
  ])('refuses an unknown field in %s with a message naming its path', (_where, raw, message) => {
    expect(refusal(raw)).toBe(message);
  });

  it.each(['Countersign/Echo:latest', 'echo:lat est', '-echo:latest', 'echo:', 'echo@sha256:' + HEX64])(
    'refuses the image tag %j',
    (image) => {
      expect(refusal(catalogOf(entry({ image })))).toBe(
        'catalog.json: servers.0.image: expected an image tag',
      );
    },
  );

  it('accepts image tags with a registry path and no tag', () => {
    for (const image of ['echo', 'registry.local/team/echo:1.2.3', 'echo:v1_rc-2'])
      expect(parseCatalog(catalogOf(entry({ image })), 'c').servers[0]!.image).toBe(image);
  });

  it.each([
    ['upper-case hex', HEX64.toUpperCase()],
    ['63 digits', HEX64.slice(1)],
    ['65 digits', `${HEX64}0`],
    ['a non-hex letter', `${HEX64.slice(1)}g`],
  ])('refuses a tool sha256 with %s', (_what, sha256) => {
    const tools = { echo: { sha256, description: '', inputSchema: {} } };
    expect(refusal(catalogOf(entry({ tools })))).toBe(
      'catalog.json: servers.0.tools.echo.sha256: expected a SHA-256 in hex',
    );
  });

  it('refuses a sourceLock that is not a SHA-256, and an imageId that is not sha256:<hex>', () => {
    expect(refusal(catalogOf(entry({ sourceLock: 'abc' })))).toBe(
      'catalog.json: servers.0.sourceLock: expected a SHA-256 in hex',
    );
    expect(refusal(catalogOf(entry({ imageId: HEX64 })))).toMatch(/^catalog\.json: servers\.0\.imageId: /);
    expect(
      parseCatalog(catalogOf(entry({ imageId: `sha256:${HEX64}`, sourceLock: HEX64 })), 'c').servers[0],
    ).toMatchObject({ imageId: `sha256:${HEX64}`, sourceLock: HEX64 });
  });

  it.each(['..', '../outside', 'sandbox/../../etc', 'sandbox/mcp/..', '/etc/mcp'])(
    'refuses the source %j, which leaves the project',
    (source) => {
      expect(refusal(catalogOf(entry({ source })))).toBe(
        'catalog.json: servers.0.source: must be a folder inside the project',
      );
    },
  );

  it('accepts a source whose names merely contain dots', () => {
    const source = 'sandbox/mcp/servers/..echo/v1.2';
    expect(parseCatalog(catalogOf(entry({ source })), 'c').servers[0]!.source).toBe(source);
  });

  it('refuses a bad server id and an env name that is not upper case', () => {
    expect(refusal(catalogOf(entry({ id: 'Echo' })))).toBe(
      'catalog.json: servers.0.id: server ids are 1-63 of a-z, 0-9, "-" and "_"',
    );
    expect(refusal(catalogOf(entry({ env: { lower: 'x' } })))).toMatch(
      /^catalog\.json: servers\.0\.env\.lower: /,
    );
  });

  it('refuses a version other than 1 and a value that is not an object', () => {
    expect(refusal({ version: 2, servers: [] })).toMatch(/^catalog\.json: version: /);
    expect(refusal([])).toMatch(/^catalog\.json: \(catalog\): /);
  });
});

describe('toolSha256', () => {
  const tool = {
    name: 'echo',
    description: 'Echoes back the input',
    inputSchema: { type: 'object', properties: { message: { type: 'string' } }, required: ['message'] },
  };

  it('is SHA-256 over a domain tag and the canonical JSON of name, description and schema', () => {
    const bytes =
      'countersign/mcp-tool/v1\n' +
      '{"description":"Echoes back the input","inputSchema":{"properties":{"message":{"type":"string"}},"required":["message"],"type":"object"},"name":"echo"}';
    expect(toolSha256(tool)).toBe(createHash('sha256').update(bytes).digest('hex'));
  });

  it('does not depend on the key order of the input schema, at any depth', () => {
    const reordered = {
      inputSchema: { required: ['message'], properties: { message: { type: 'string' } }, type: 'object' },
      description: tool.description,
      name: tool.name,
    };
    expect(toolSha256(reordered)).toBe(toolSha256(tool));
  });

  it.each([
    ['name', { ...tool, name: 'echo2' }],
    ['description', { ...tool, description: 'Echoes back the input.' }],
    ['description (white space)', { ...tool, description: 'Echoes back the input ' }],
    [
      'schema: a property type',
      { ...tool, inputSchema: { ...tool.inputSchema, properties: { message: { type: 'number' } } } },
    ],
    ['schema: required', { ...tool, inputSchema: { ...tool.inputSchema, required: [] } }],
    [
      'schema: an added keyword',
      { ...tool, inputSchema: { ...tool.inputSchema, additionalProperties: false } },
    ],
  ])('changes when the %s changes', (_what, changed) => {
    expect(toolSha256(changed)).not.toBe(toolSha256(tool));
  });

  it('hashes a missing description as the empty string', () => {
    const bare = { name: tool.name, inputSchema: tool.inputSchema };
    expect(toolSha256(bare)).toBe(toolSha256({ ...tool, description: '' }));
    expect(toolSha256({ ...tool, description: undefined })).toBe(toolSha256({ ...tool, description: '' }));
    expect(toolSha256(bare)).not.toBe(toolSha256(tool));
  });

  it('keeps name, description and schema apart (moving text between them changes the hash)', () => {
    expect(toolSha256({ name: 'ab', description: 'c', inputSchema: {} })).not.toBe(
      toolSha256({ name: 'a', description: 'bc', inputSchema: {} }),
    );
  });
});

describe('the shipped catalog', () => {
  const catalog = parseCatalog(shipped(), 'sandbox/mcp/catalog.json');
  const pinned = catalog.servers.flatMap((server) =>
    Object.entries(server.tools).map(([name, tool]) => [`${server.id}/${name}`, name, tool] as const),
  );

  it('pins tools on every server', () => {
    for (const server of catalog.servers) expect(Object.keys(server.tools).length).toBeGreaterThan(0);
    expect(pinned.map(([label]) => label)).toContain('everything/echo');
  });

  it.each(pinned)('hashes %s to its own pinned name, description and schema', (_label, name, tool) => {
    expect(tool.sha256).toBe(
      toolSha256({ name, description: tool.description, inputSchema: tool.inputSchema }),
    );
  });
});
