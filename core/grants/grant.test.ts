import { describe, expect, it } from 'vitest';
import { previewGrant } from './examples.js';
import { coverageText, grantText, GRANT_LIMITS, ruleText, scopeText, type GrantRecord } from './grant.js';
import { grantRecordSchema, grantRevocationSchema } from './schema.js';

const AGENT = '0123456789abcdef';
const DEVICE = 'a'.repeat(32);
const AT = '2030-01-01T00:00:00.000Z';
const DAY = 86_400_000;

const valid: GrantRecord = {
  type: 'grant',
  grantId: '1111222233334444',
  name: 'run the tests',
  scope: { agent: AGENT },
  covers: { kind: 'shell', command: 'npm test', match: 'exact' },
  expiresAt: '2030-01-31T00:00:00.000Z',
  at: AT,
};

const withCovers = (covers: Record<string, unknown>): Record<string, unknown> => ({ ...valid, covers });
const shell = (command: string, match = 'prefix', extra: Record<string, unknown> = {}) =>
  withCovers({ kind: 'shell', command, match, ...extra });
const mcpArgs = (args: unknown, extra: Record<string, unknown> = {}) =>
  withCovers({ kind: 'mcp', server: 'filesystem', tool: 'read_text_file', arguments: args, ...extra });
const expiringAfter = (ms: number) => ({ ...valid, expiresAt: new Date(Date.parse(AT) + ms).toISOString() });

/** Every issue the schema reports, as `path: message`. */
function issues(value: unknown): string[] {
  const parsed = grantRecordSchema.safeParse(value);
  return parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('grantRecordSchema: records it accepts', () => {
  it.each([
    ['an exact command', valid],
    ['an exact command with shell syntax (matched as one string)', shell('make build && make test', 'exact')],
    ['a plain-words prefix', shell('git status')],
    ['a prefix with quoted words', shell("git commit -m 'wip: a; b'")],
    ['an exact grant of a runner with its arguments', shell('sudo apt-get update', 'exact')],
    ['a one-word exact runner', shell('sh', 'exact')],
    [
      'a cwd and an environment',
      shell('npm test', 'exact', { cwd: 'packages/api', env: { CI: 'true', X: null } }),
    ],
    [
      'an MCP tool with each kind of rule',
      mcpArgs(
        {
          path: { glob: '/workspace/**' },
          n: { equals: 1 },
          mode: { oneOf: ['a', { b: [1] }] },
          x: { any: true },
        },
        { allowWrites: true },
      ),
    ],
    ['an MCP tool without arguments', mcpArgs({})],
    ['all agents', { ...valid, scope: { agents: 'all' } }],
    ['one device', { ...valid, scope: { device: DEVICE } }],
    ['every limit', { ...valid, plans: ['release'], egress: true, maxUses: 10_000, maxRisk: 'high' }],
    ['a lifetime of exactly 366 days', expiringAfter(366 * DAY)],
    ['a lifetime of one millisecond', expiringAfter(1)],
    [
      'exactly 32 argument rules',
      mcpArgs(Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`a${i}`, { any: true }]))),
    ],
    ['an equals value of exactly 4096 bytes as JSON', mcpArgs({ p: { equals: 'x'.repeat(4094) } })],
  ])('%s', (_what, record) => {
    expect(issues(record)).toEqual([]);
  });
});

describe('grantRecordSchema: refusals and their messages', () => {
  const prefixHas = (what: string) =>
    `covers.command: a prefix is plain words only, and this one is not: ${what}`;
  const runnerAlone = (word: string) =>
    `covers.command: "${word}" runs whatever its arguments say: a prefix starting with it would allow any command; grant the exact command instead`;
  const cases: [string, unknown, string[]][] = [
    ['a prefix with a separator', shell('git status; id'), [prefixHas('a command separator (;)')]],
    ['a prefix with a pipe', shell('git log | sh'), [prefixHas('a pipe or a chain (|, ||)')]],
    ['a prefix with a substitution', shell('git $(id)'), [prefixHas('a variable or a substitution ($)')]],
    ['a prefix with a glob', shell('rm *'), [prefixHas('a glob (*)')]],
    ['a prefix with a second line', shell('git status\nid'), [prefixHas('a second line')]],
    ['a prefix of only sh', shell('sh'), [runnerAlone('sh')]],
    ['a prefix of only bash', shell('bash'), [runnerAlone('bash')]],
    ['a prefix of only env', shell('env'), [runnerAlone('env')]],
    ['a prefix of only sudo, padded', shell('  sudo  '), [runnerAlone('sudo')]],
    ['a prefix of only sh, quoted', shell("'sh'"), [runnerAlone('sh')]],
    ['an expiry before the issue', expiringAfter(-1), ['expiresAt: a grant expires after it is issued']],
    ['an expiry at the issue', expiringAfter(0), ['expiresAt: a grant expires after it is issued']],
    ['a lifetime over 366 days', expiringAfter(366 * DAY + 1), ['expiresAt: a grant lives at most 366 days']],
    [
      'a lifetime of years',
      { ...valid, expiresAt: '2040-01-01T00:00:00.000Z' },
      ['expiresAt: a grant lives at most 366 days'],
    ],
    ['an unknown field', { ...valid, admin: true }, [': Unrecognized key: "admin"']],
    [
      'an unknown field in covers',
      shell('npm test', 'exact', { sudo: true }),
      ['covers: Unrecognized key: "sudo"'],
    ],
    [
      'a glob with a newline',
      mcpArgs({ p: { glob: '/workspace/**\n' } }),
      ['covers.arguments.p.glob: a glob has no control or invisible characters'],
    ],
    [
      'a glob with a NUL',
      mcpArgs({ p: { glob: '/workspace/\u0000' } }),
      ['covers.arguments.p.glob: a glob has no control or invisible characters'],
    ],
    [
      'a glob with a tab',
      mcpArgs({ p: { glob: 'a\tb' } }),
      ['covers.arguments.p.glob: a glob has no control or invisible characters'],
    ],
    [
      '33 argument rules',
      mcpArgs(Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`a${i}`, { any: true }]))),
      ['covers.arguments: too many argument rules'],
    ],
    [
      'an equals value of 4097 bytes as JSON',
      mcpArgs({ p: { equals: 'x'.repeat(4095) } }),
      ['covers.arguments.p.equals: a value is at most 4096 bytes as JSON'],
    ],
    [
      'an equals value over 4096 bytes in UTF-8 (fewer characters)',
      mcpArgs({ p: { equals: 'é'.repeat(2048) } }),
      ['covers.arguments.p.equals: a value is at most 4096 bytes as JSON'],
    ],
    [
      'an oversized oneOf value',
      mcpArgs({ p: { oneOf: ['ok', { big: 'x'.repeat(4100) }] } }),
      ['covers.arguments.p.oneOf.1: a value is at most 4096 bytes as JSON'],
    ],
    [
      'a cwd outside the workspace',
      shell('npm test', 'exact', { cwd: '../elsewhere' }),
      ['covers.cwd: must be a relative path that stays inside the workspace'],
    ],
    [
      'an absolute cwd',
      shell('npm test', 'exact', { cwd: '/etc' }),
      ['covers.cwd: must be a relative path that stays inside the workspace'],
    ],
  ];
  it.each(cases)('refuses %s', (_what, record, expected) => {
    expect(issues(record)).toEqual(expected);
  });

  it.each([
    ['an agent id that is not 16 hex digits', { agent: 'XYZ' }],
    ['an upper-case agent id', { agent: AGENT.toUpperCase() }],
    ['a short device id', { device: 'abc' }],
    ['agents other than "all"', { agents: 'some' }],
    ['an empty scope', {}],
    ['two scopes at once', { agent: AGENT, device: DEVICE }],
    ['a scope with an extra field', { agents: 'all', plus: 1 }],
    ['a string', 'all'],
  ])('refuses a scope of %s', (_what, scope) => {
    const found = issues({ ...valid, scope });
    expect(found.length).toBeGreaterThan(0);
    expect(
      found.every((i) => i.startsWith('scope')),
      found.join('\n'),
    ).toBe(true);
  });

  it.each([
    ['an argument rule with two kinds', mcpArgs({ p: { equals: 1, oneOf: [1] } }), 'covers.arguments.p'],
    ['an argument rule of another kind', mcpArgs({ p: { regex: '.*' } }), 'covers.arguments.p'],
    ['"any: false"', mcpArgs({ p: { any: false } }), 'covers.arguments.p'],
    ['an empty oneOf', mcpArgs({ p: { oneOf: [] } }), 'covers.arguments.p.oneOf'],
    ['an empty glob', mcpArgs({ p: { glob: '' } }), 'covers.arguments.p.glob'],
    [
      'a glob over 512 characters',
      mcpArgs({ p: { glob: 'a'.repeat(GRANT_LIMITS.maxGlobChars + 1) } }),
      'covers.arguments.p.glob',
    ],
    [
      'an environment name with a dash',
      shell('npm test', 'exact', { env: { 'A-B': null } }),
      'covers.env.A-B',
    ],
    ['a server id in upper case', mcpArgs({}, { server: 'FileSystem' }), 'covers.server'],
    ['an unknown coverage kind', withCovers({ kind: 'http', url: 'x' }), 'covers.kind'],
    ['17 plan names', { ...valid, plans: Array.from({ length: 17 }, (_, i) => `p${i}`) }, 'plans'],
    ['an empty list of plan names', { ...valid, plans: [] }, 'plans'],
    ['zero uses', { ...valid, maxUses: 0 }, 'maxUses'],
    ['more than 10000 uses', { ...valid, maxUses: 10_001 }, 'maxUses'],
    ['a fractional number of uses', { ...valid, maxUses: 1.5 }, 'maxUses'],
    ['an unknown risk', { ...valid, maxRisk: 'extreme' }, 'maxRisk'],
    ['a grant id that is not 16 hex digits', { ...valid, grantId: 'g1' }, 'grantId'],
    ['an empty name', { ...valid, name: '' }, 'name'],
    ['an expiry that is not a time', { ...valid, expiresAt: 'next week' }, 'expiresAt'],
  ])('refuses %s', (_what, record, path) => {
    const found = issues(record);
    expect(found.length, 'refused').toBeGreaterThan(0);
    expect(found[0]!.startsWith(`${path}:`), found.join('\n')).toBe(true);
  });
});

describe('grantRevocationSchema', () => {
  it('accepts a revocation and refuses extra fields or a bad id', () => {
    const revocation = { type: 'revoke-grant', grantId: valid.grantId, reason: 'done', at: AT };
    expect(grantRevocationSchema.safeParse(revocation).success).toBe(true);
    expect(grantRevocationSchema.safeParse({ ...revocation, grantId: 'nope' }).success).toBe(false);
    expect(grantRevocationSchema.safeParse({ ...revocation, by: 'me' }).success).toBe(false);
    expect(grantRevocationSchema.safeParse({ ...revocation, reason: 'x'.repeat(501) }).success).toBe(false);
  });
});

describe('programs that run other programs, however they are named', () => {
  it.each(['/bin/sh', '/usr/bin/env', '/usr/bin/sudo', 'sh -c', '/bin/bash -c', 'timeout 10', 'env FOO=bar'])(
    'refuses a prefix starting with %s',
    (command) => {
      expect(issues(shell(command))[0]).toMatch(
        /runs whatever its arguments say: a prefix starting with it would allow any command/,
      );
    },
  );

  it.each([
    'npm',
    'git',
    'npm exec',
    'npm x',
    'git bisect',
    'uv run',
    'npx',
    'bunx tsc',
    '/lib64/ld-linux-x86-64.so.2',
  ])('refuses the prefix %s, whose subcommands or arguments run any program', (command) => {
    expect(issues(shell(command))[0]).toMatch(/would allow any command/);
  });

  it('refuses an inline-code flag listed as an option after an interpreter prefix', () => {
    expect(issues(shell('python3 scripts/x.py', 'prefix', { options: ['-c'] }))[0]).toMatch(
      /runs code given in its arguments/,
    );
    expect(issues(shell('node app.js', 'prefix', { options: ['--eval=1'] }))[0]).toMatch(/runs code given/);
    expect(issues(shell('git status', 'prefix', { options: ['--short', 'not-an-option'] }))[0]).toMatch(
      /an option is one plain word starting with -/,
    );
    expect(issues(shell('git status', 'exact', { options: ['--short'] }))[0]).toMatch(
      /options are listed for a prefix grant only/,
    );
  });

  it.each(['python3', 'python3 -c', 'node -e', 'perl -e', '/usr/bin/ruby -e', 'node --eval', 'php -r'])(
    'refuses the interpreter prefix %s (code given in the arguments)',
    (command) => {
      expect(issues(shell(command))[0]).toMatch(
        /runs code given in its arguments: a prefix of it would allow any program/,
      );
    },
  );

  it('accepts an interpreter running a named script, with a warning in the preview', () => {
    expect(issues(shell('python3 scripts/check.py'))).toEqual([]);
    expect(
      previewGrant({
        covers: { kind: 'shell', command: 'python3 scripts/check.py', match: 'prefix' },
        scope: { agent: AGENT },
      }).warnings,
    ).toContain('`python3` runs code it is given: make sure the words after it pin what it runs.');
  });

  it('warns that /usr/bin/sudo runs other commands in the preview', () => {
    expect(
      previewGrant({
        covers: { kind: 'shell', command: '/usr/bin/sudo apt-get', match: 'prefix' },
        scope: { agent: AGENT },
      }).warnings,
    ).toContain('`/usr/bin/sudo` runs other commands given in its arguments.');
  });
});

describe('wording', () => {
  it.each([
    [{ kind: 'shell', command: 'npm test', match: 'exact' }, '`npm test` exactly'],
    [{ kind: 'shell', command: 'git status', match: 'prefix' }, 'commands starting `git status`'],
    [
      { kind: 'shell', command: 'npm test', match: 'exact', cwd: 'packages/api' },
      '`npm test` exactly in packages/api',
    ],
    [
      { kind: 'shell', command: 'npm run', match: 'prefix', cwd: '.', env: { CI: 'true', TOKEN: null } },
      'commands starting `npm run` in . with CI=true TOKEN=…',
    ],
    [{ kind: 'shell', command: 'npm test', match: 'exact', env: {} }, '`npm test` exactly'],
    [
      {
        kind: 'mcp',
        server: 'filesystem',
        tool: 'read_text_file',
        arguments: {
          path: { glob: '/workspace/**' },
          encoding: { equals: 'utf-8' },
          mode: { oneOf: ['fast', 2] },
          extra: { any: true },
        },
      },
      'filesystem/read_text_file with path like /workspace/**, encoding = "utf-8", mode one of "fast" | 2, extra any value',
    ],
    [
      { kind: 'mcp', server: 'github', tool: 'create_issue', arguments: {}, allowWrites: true },
      'github/create_issue with no arguments (writes allowed)',
    ],
  ] as [GrantRecord['covers'], string][])('coverageText(%j)', (covers, text) => {
    expect(coverageText(covers)).toBe(text);
  });

  it('ruleText names each kind of rule', () => {
    expect(ruleText({ equals: { a: 1 } })).toBe('= {"a":1}');
    expect(ruleText({ oneOf: [null, true] })).toBe('one of null | true');
    expect(ruleText({ glob: 'src/*' })).toBe('like src/*');
    expect(ruleText({ any: true })).toBe('any value');
  });

  it('scopeText names whose plans, with names when known', () => {
    const names: Record<string, string> = { [AGENT]: 'builder', [DEVICE]: 'laptop' };
    expect(scopeText({ agents: 'all' })).toBe('any agent');
    expect(scopeText({ agent: AGENT })).toBe(`agent "${AGENT}"`);
    expect(scopeText({ agent: AGENT }, (id) => names[id] ?? id)).toBe('agent "builder"');
    expect(scopeText({ device: DEVICE }, (id) => names[id] ?? id)).toBe('plans "laptop" proposes');
  });

  it('grantText is the whole grant in one sentence', () => {
    expect(grantText(valid)).toBe(
      `\`npm test\` exactly, for agent "${AGENT}", until 2030-01-31T00:00:00.000Z`,
    );
    expect(
      grantText(
        {
          ...valid,
          scope: { device: DEVICE },
          covers: { kind: 'shell', command: 'git status', match: 'prefix', cwd: 'repo' },
          plans: ['release', 'nightly'],
          egress: true,
          maxRisk: 'medium',
          maxUses: 1,
        },
        () => 'laptop',
      ),
    ).toBe(
      'commands starting `git status` in repo, for plans "laptop" proposes, in plans named "release", "nightly", also with network, up to medium risk, at most 1 time, until 2030-01-31T00:00:00.000Z',
    );
    expect(grantText({ ...valid, scope: { agents: 'all' }, maxUses: 5, egress: false })).toBe(
      '`npm test` exactly, for any agent, at most 5 times, until 2030-01-31T00:00:00.000Z',
    );
  });
});
