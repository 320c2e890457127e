import { describe, expect, it } from 'vitest';
import type { Proposer } from '../approval/proposal.js';
import type { McpPin } from '../mcp/catalog.js';
import { stepRisk } from '../notify/risk.js';
import type { Risk, StepNode } from '../plan/types.js';
import { validatePlan } from '../plan/validate.js';
import { planSteps } from '../plan/walk.js';
import type { ArgumentRule, GrantRecord, GrantScope, McpCoverage, ShellCoverage } from './grant.js';
import {
  argumentFits,
  commandMatches,
  globMatches,
  grantCovers,
  type Coverage,
  type GrantedStep,
} from './match.js';

// ---------------------------------------------------------------------------------------------
// Fixture: steps come from validatePlan (so they carry every default), grants are plain records.
// ---------------------------------------------------------------------------------------------

const AGENT = '0123456789abcdef';
const OTHER_AGENT = 'fedcba9876543210';
const DEVICE = 'a'.repeat(32);
const OTHER_DEVICE = 'b'.repeat(32);

/** One validated step (`approval: auto` unless `fields` says otherwise) of a plan named "release". */
function stepOf(fields: Record<string, unknown>, plan: Record<string, unknown> = {}): StepNode {
  const spec = validatePlan({ name: 'release', ...plan, steps: [{ id: 's', approval: 'auto', ...fields }] });
  return planSteps(spec)[0]!;
}

const shell = (
  command: string,
  match: 'exact' | 'prefix' = 'exact',
  extra: Partial<ShellCoverage> = {},
): ShellCoverage => ({ kind: 'shell', command, match, ...extra });

const mcp = (args: Record<string, ArgumentRule>, extra: Partial<McpCoverage> = {}): McpCoverage => ({
  kind: 'mcp',
  server: 'filesystem',
  tool: 'read_text_file',
  arguments: args,
  ...extra,
});

function grant(covers: GrantRecord['covers'], overrides: Partial<GrantRecord> = {}): GrantRecord {
  return {
    type: 'grant',
    grantId: '1111222233334444',
    name: 'test grant',
    scope: { agent: AGENT },
    covers,
    expiresAt: '2030-02-01T00:00:00.000Z',
    at: '2030-01-01T00:00:00.000Z',
    ...overrides,
  };
}

function at(step: StepNode, overrides: Partial<GrantedStep> = {}): GrantedStep {
  return { step, egress: false, planName: 'release', proposer: { agent: AGENT }, ...overrides };
}

function pin(overrides: Partial<McpPin> = {}): McpPin {
  return {
    server: 'filesystem',
    image: `sha256:${'0'.repeat(64)}`,
    tool: 'read_text_file',
    toolSha256: '1'.repeat(64),
    description: 'Reads a text file',
    workspace: 'read-only',
    network: 'none',
    configSha256: '2'.repeat(64),
    readOnly: true,
    ...overrides,
  };
}

const mcpStep = (args: Record<string, unknown>, tool = 'read_text_file', server = 'filesystem'): StepNode =>
  stepOf({ mcp: { server, tool, arguments: args } });

/** `true` for a match, or the reason it does not match. */
const verdict = (expected: true | string): Coverage =>
  expected === true ? { ok: true } : { ok: false, reason: expected };

// ---------------------------------------------------------------------------------------------

describe('grantCovers: shell commands', () => {
  const notExactly = (c: string) => `the command is not exactly \`${c}\``;
  const unlisted = (option: string) =>
    `it adds the option \`${option}\`, which the grant does not list (options after a prefix must be listed: programs take code through them)`;
  const notStarting = (c: string) => `the command does not start with the words \`${c}\``;
  const notPlain = (why: string) => `the command is not plain words: ${why}`;
  const cases: [string, 'exact' | 'prefix', string, true | string][] = [
    ['npm test', 'exact', 'npm test', true],
    ['npm test', 'exact', 'npm test --watch', notExactly('npm test')],
    ['npm test', 'exact', 'npm  test', notExactly('npm test')],
    ['npm test', 'exact', ' npm test', notExactly('npm test')],
    ['npm test', 'exact', 'npm', notExactly('npm test')],
    ['npm test', 'exact', "npm 'test'", notExactly('npm test')],
    // An exact grant is a string compare: shell syntax in it is allowed, and matches only itself.
    ['make build && make test', 'exact', 'make build && make test', true],
    [
      'make build && make test',
      'exact',
      'make build && make test; id',
      notExactly('make build && make test'),
    ],
    ['git status', 'prefix', 'git status', true],
    ['git status', 'prefix', 'git status src/app', true],
    ['git status', 'prefix', 'git   status\tsrc', true],
    ['git status', 'prefix', "git 'status' src", true],
    ['git status', 'prefix', 'git status --short', unlisted('--short')],
    [
      'npm test',
      'prefix',
      "npm test --node-options='--import=data:text/javascript,x'",
      unlisted('--node-options=--import=data:text/javascript,x'),
    ],
    [
      'git fetch',
      'prefix',
      "git fetch --upload-pack='id;git-upload-pack' .",
      unlisted('--upload-pack=id;git-upload-pack'),
    ],
    ['git status', 'prefix', 'git status "a quoted; argument"', true],
    ['git status', 'prefix', 'git statusx', notStarting('git status')],
    ['git status', 'prefix', 'git', notStarting('git status')],
    ['git status', 'prefix', 'git log', notStarting('git status')],
    ['git status', 'prefix', 'status git', notStarting('git status')],
    ['git status', 'prefix', "'git status'", notStarting('git status')],
    ['git status', 'prefix', 'git status; id', notPlain('a command separator (;)')],
    ['git status', 'prefix', 'git status && id', notPlain('a background job or a chain (&, &&)')],
    ['git status', 'prefix', 'git status | sh', notPlain('a pipe or a chain (|, ||)')],
    ['git status', 'prefix', 'git status $(id)', notPlain('a variable or a substitution ($)')],
    ['git status', 'prefix', 'git status `id`', notPlain('a command substitution (`…`)')],
    ['git status', 'prefix', 'git status > /workspace/x', notPlain('a redirection (>)')],
    ['git status', 'prefix', 'git status\nid', notPlain('a second line')],
    ['git status', 'prefix', 'git status *', notPlain('a glob (*)')],
    [
      'git status',
      'prefix',
      'GIT_DIR=/tmp git status',
      notPlain('it sets an environment variable before the command (NAME=…)'),
    ],
  ];
  it.each(cases)('%j (%s) against %j', (command, match, run, expected) => {
    const step = stepOf({ run });
    expect(grantCovers(grant(shell(command, match)), at(step))).toEqual(verdict(expected));
    // commandMatches is the command half of it, on its own.
    expect(commandMatches({ command, match }, run)).toEqual(verdict(expected));
  });

  it('allows after a prefix only the options the grant lists, as whole words', () => {
    const covers = { command: 'git status', match: 'prefix' as const, options: ['--short', '-b'] };
    expect(commandMatches(covers, 'git status --short -b')).toEqual(verdict(true));
    expect(commandMatches(covers, 'git status --short=x')).toEqual(verdict(unlisted('--short=x')));
    expect(commandMatches(covers, 'git status -- --short --porcelain')).toEqual(verdict(unlisted('--')));
    expect(
      grantCovers(
        grant(shell('git status', 'prefix', { options: ['--short'] })),
        at(stepOf({ run: 'git status --short' })),
      ),
    ).toEqual(verdict(true));
  });

  it('refuses a prefix that is not plain words (the schema refuses it too; the matcher does not trust that)', () => {
    expect(commandMatches({ command: 'git status; id', match: 'prefix' }, 'git status')).toEqual(
      verdict("the grant's prefix is not plain words"),
    );
  });
});

describe('grantCovers: working directory', () => {
  const cases: [string | undefined, string, boolean][] = [
    [undefined, '.', true],
    [undefined, 'anywhere/at/all', true],
    ['src', 'src', true],
    ['src', './src', true],
    ['src', 'src/', true],
    ['src', 'src/./', true],
    ['./src', 'src', true],
    ['src', 'lib', false],
    ['src', '.', false],
    ['src', 'src/sub', false],
    ['src/sub', 'src', false],
    ['.', '.', true],
    ['.', './', true],
    ['.', 'src', false],
    ['a/./b', 'a/b', true],
    ['a/b', 'a/./b/', true],
    ['a//b', 'a/b', true],
    ['a/b', 'b/a', false],
  ];
  it.each(cases)('grant cwd %j, step cwd %j: %s', (cwd, stepCwd, ok) => {
    const step = stepOf({ run: 'npm test', cwd: stepCwd });
    const result = grantCovers(grant(shell('npm test', 'exact', { cwd })), at(step));
    expect(result).toEqual(
      ok ? verdict(true) : verdict(`the step runs in ${stepCwd}, the grant only in ${cwd}`),
    );
  });
});

describe('grantCovers: environment', () => {
  const cases: [string, Record<string, string | null> | undefined, Record<string, string>, true | string][] =
    [
      ['no env either side', undefined, {}, true],
      [
        'a variable the grant does not list',
        undefined,
        { A: '1' },
        'the step sets A, which the grant does not allow',
      ],
      ['an empty grant env', {}, { A: '1' }, 'the step sets A, which the grant does not allow'],
      ['null allows any value', { A: null }, { A: 'anything at all' }, true],
      ['null allows the empty value', { A: null }, { A: '' }, true],
      ['listed but not set', { A: null, B: '2' }, {}, true],
      ['a fixed value, equal', { A: '1' }, { A: '1' }, true],
      [
        'a fixed value, different',
        { A: '1' },
        { A: '2' },
        "the step sets A to another value than the grant's",
      ],
      ['a fixed empty value', { A: '' }, { A: 'x' }, "the step sets A to another value than the grant's"],
      [
        'one listed, one not',
        { A: '1' },
        { A: '1', B: '2' },
        'the step sets B, which the grant does not allow',
      ],
      [
        'names are case-sensitive',
        { path: null },
        { PATH: '/tmp' },
        'the step sets PATH, which the grant does not allow',
      ],
    ];
  it.each(cases)('%s', (_what, env, stepEnv, expected) => {
    const step = stepOf({ run: 'npm test', env: stepEnv });
    expect(grantCovers(grant(shell('npm test', 'exact', { env })), at(step))).toEqual(verdict(expected));
  });
});

describe('grantCovers: scope', () => {
  const noProposal = 'the plan carries no verified proposal, so no grant scope can apply';
  const cases: [string, GrantScope, Proposer | undefined, true | string][] = [
    ['the agent itself', { agent: AGENT }, { agent: AGENT }, true],
    [
      'another agent',
      { agent: AGENT },
      { agent: OTHER_AGENT },
      `the grant is for agent ${AGENT}; this plan was proposed by agent ${OTHER_AGENT}`,
    ],
    [
      "an agent grant, a device's plan",
      { agent: AGENT },
      { device: DEVICE },
      `the grant is for agent ${AGENT}; this plan was proposed by device aaaaaaaaaaaa…`,
    ],
    ['all agents, any agent', { agents: 'all' }, { agent: OTHER_AGENT }, true],
    [
      "all agents, a device's plan",
      { agents: 'all' },
      { device: DEVICE },
      'the grant is for agents; a device proposed this plan',
    ],
    ['the device itself', { device: DEVICE }, { device: DEVICE }, true],
    [
      'another device',
      { device: DEVICE },
      { device: OTHER_DEVICE },
      'the grant is for plans of device aaaaaaaaaaaa…; this plan was proposed by device bbbbbbbbbbbb…',
    ],
    [
      "a device grant, an agent's plan",
      { device: DEVICE },
      { agent: AGENT },
      `the grant is for plans of device aaaaaaaaaaaa…; this plan was proposed by agent ${AGENT}`,
    ],
    ['an agent grant without a proposer', { agent: AGENT }, undefined, noProposal],
    ['an all-agents grant without a proposer', { agents: 'all' }, undefined, noProposal],
    ['a device grant without a proposer', { device: DEVICE }, undefined, noProposal],
  ];
  it.each(cases)('%s', (_what, scope, proposer, expected) => {
    const step = stepOf({ run: 'npm test' });
    expect(grantCovers(grant(shell('npm test'), { scope }), at(step, { proposer }))).toEqual(
      verdict(expected),
    );
  });
});

describe('grantCovers: plan names, egress and risk', () => {
  it.each([
    ['release', true],
    ['nightly', true],
    ['Release', 'the plan "Release" is not one of "release", "nightly"'],
    ['release-2', 'the plan "release-2" is not one of "release", "nightly"'],
  ] as [string, true | string][])('plans ["release", "nightly"], plan %j', (planName, expected) => {
    const covering = grant(shell('npm test'), { plans: ['release', 'nightly'] });
    expect(grantCovers(covering, at(stepOf({ run: 'npm test' }), { planName }))).toEqual(verdict(expected));
  });

  it('without plans, any plan name', () => {
    expect(grantCovers(grant(shell('npm test')), at(stepOf({ run: 'npm test' }), { planName: 'x' }))).toEqual(
      verdict(true),
    );
  });

  const noEgress = 'the plan reaches the network (egress), which the grant does not allow';
  it.each([
    [false, undefined, true],
    [false, true, true],
    [true, undefined, noEgress],
    [true, false, noEgress],
    [true, true, true],
  ] as [boolean, boolean | undefined, true | string][])(
    'plan egress %s, grant egress %s',
    (egress, grantEgress, expected) => {
      const step = stepOf({ run: 'npm test' }, { egress });
      expect(grantCovers(grant(shell('npm test'), { egress: grantEgress }), at(step, { egress }))).toEqual(
        verdict(expected),
      );
    },
  );

  it('needs grant.egress for an egress MCP call too', () => {
    const step = mcpStep({});
    expect(grantCovers(grant(mcp({})), at(step, { egress: true, mcpPin: pin() }))).toEqual(verdict(noEgress));
    expect(grantCovers(grant(mcp({}), { egress: true }), at(step, { egress: true, mcpPin: pin() }))).toEqual(
      verdict(true),
    );
  });

  const riskCases: [string, Record<string, unknown>, boolean, Risk | undefined, Risk, boolean][] = [
    // what, step fields, egress, grant maxRisk, the step's risk, covered
    ['a command, no limit', { run: 'npm test' }, false, undefined, 'medium', true],
    ['a command, up to low', { run: 'npm test' }, false, 'low', 'medium', false],
    ['a command, up to medium', { run: 'npm test' }, false, 'medium', 'medium', true],
    ['a command, up to high', { run: 'npm test' }, false, 'high', 'medium', true],
    ['an egress command, no limit', { run: 'npm test' }, true, undefined, 'high', true],
    ['an egress command, up to medium', { run: 'npm test' }, true, 'medium', 'high', false],
    ['an egress command, up to high', { run: 'npm test' }, true, 'high', 'high', true],
    [
      'a command declared high',
      { run: 'npm test', approval: { mode: 'auto', risk: 'high' } },
      false,
      'medium',
      'high',
      false,
    ],
    [
      'a command declared low (a plan may not lower its risk)',
      { run: 'npm test', approval: { mode: 'auto', risk: 'low' } },
      false,
      'low',
      'medium',
      false,
    ],
    [
      'an egress MCP call, up to medium',
      { mcp: { server: 'filesystem', tool: 'read_text_file' } },
      true,
      'medium',
      'medium',
      true,
    ],
    [
      'an MCP call, up to low',
      { mcp: { server: 'filesystem', tool: 'read_text_file' } },
      false,
      'low',
      'medium',
      false,
    ],
  ];
  it.each(riskCases)('%s', (_what, fields, egress, maxRisk, risk, covered) => {
    const step = stepOf(fields, { egress });
    expect(stepRisk(step, egress)).toBe(risk);
    const covers = step.kind === 'mcp' ? mcp({}) : shell('npm test');
    const result = grantCovers(grant(covers, { egress: true, maxRisk }), at(step, { egress, mcpPin: pin() }));
    expect(result).toEqual(
      covered ? verdict(true) : verdict(`the step's risk is ${risk}, above the grant's ${maxRisk}`),
    );
  });
});

describe('grantCovers: what no grant ever covers', () => {
  it('never a gate, whatever the grant says', () => {
    const gate = stepOf({ gate: 'Ship it?', approval: 'required' });
    for (const covers of [shell('Ship it?'), mcp({})])
      expect(grantCovers(grant(covers, { scope: { agents: 'all' }, egress: true }), at(gate))).toEqual(
        verdict('a checkpoint is always decided by a person'),
      );
  });

  it.each([
    ['required', 'required'],
    ['the default (required)', undefined],
    ['required with a quorum', { mode: 'required', quorum: 2 }],
  ])('never a step whose approval is %s', (_what, approval) => {
    const step = stepOf({ run: 'npm test', approval });
    expect(step.approval.mode).toBe('required');
    expect(grantCovers(grant(shell('npm test')), at(step))).toEqual(
      verdict('the plan did not ask for a standing approval for this step (approval: auto)'),
    );
  });

  it('never a step of another kind', () => {
    expect(grantCovers(grant(shell('npm test')), at(mcpStep({}), { mcpPin: pin() }))).toEqual(
      verdict('the grant covers shell steps, this is mcp'),
    );
    expect(grantCovers(grant(mcp({})), at(stepOf({ run: 'npm test' })))).toEqual(
      verdict('the grant covers mcp steps, this is shell'),
    );
  });
});

describe('grantCovers: MCP calls', () => {
  const docs: Record<string, ArgumentRule> = { path: { glob: '/workspace/docs/**' } };
  const inDocs = { path: '/workspace/docs/guide/a.md' };
  const writes = 'filesystem/read_text_file is not annotated read-only, and the grant does not allow writes';
  const notPinned = 'the call is not pinned to the catalog';
  const cases: [string, McpCoverage, StepNode, McpPin | undefined, true | string][] = [
    ['a read-only call within the rules', mcp(docs), mcpStep(inDocs), pin(), true],
    [
      'another server',
      mcp(docs, { server: 'github' }),
      mcpStep(inDocs),
      pin(),
      'the grant covers github/read_text_file, the step calls filesystem/read_text_file',
    ],
    [
      'another tool',
      mcp(docs, { tool: 'write_file' }),
      mcpStep(inDocs),
      pin(),
      'the grant covers filesystem/write_file, the step calls filesystem/read_text_file',
    ],
    ['no pin', mcp(docs), mcpStep(inDocs), undefined, notPinned],
    ['a pin of another tool', mcp(docs), mcpStep(inDocs), pin({ tool: 'write_file' }), notPinned],
    ['a pin of another server', mcp(docs), mcpStep(inDocs), pin({ server: 'github' }), notPinned],
    ['a tool not read-only', mcp(docs), mcpStep(inDocs), pin({ readOnly: false }), writes],
    [
      'a pin from before annotations (readOnly undefined)',
      mcp(docs),
      mcpStep(inDocs),
      pin({ readOnly: undefined }),
      writes,
    ],
    [
      'allowWrites: false',
      mcp(docs, { allowWrites: false }),
      mcpStep(inDocs),
      pin({ readOnly: false }),
      writes,
    ],
    [
      'allowWrites on a write tool',
      mcp(docs, { allowWrites: true }),
      mcpStep(inDocs),
      pin({ readOnly: false }),
      true,
    ],
    [
      'allowWrites on an unannotated pin',
      mcp(docs, { allowWrites: true }),
      mcpStep(inDocs),
      pin({ readOnly: undefined }),
      true,
    ],
    [
      'an argument without a rule',
      mcp(docs),
      mcpStep({ ...inDocs, head: 10 }),
      pin(),
      'the call passes "head", which the grant says nothing about',
    ],
    [
      'a rule for an argument not passed',
      mcp({ ...docs, head: { any: true } }),
      mcpStep(inDocs),
      pin(),
      true,
    ],
    ['no arguments, no rules', mcp({}), mcpStep({}), pin(), true],
    [
      'an argument outside its glob',
      mcp(docs),
      mcpStep({ path: '/etc/passwd' }),
      pin(),
      'argument "path": it does not match /workspace/docs/**',
    ],
    [
      'a glob over a number',
      mcp(docs),
      mcpStep({ path: 5 }),
      pin(),
      'argument "path": a glob matches text only',
    ],
    [
      'equals, keys in another order',
      mcp({ options: { equals: { a: 1, b: [1, 2], c: { d: null } } } }),
      mcpStep({ options: { c: { d: null }, b: [1, 2], a: 1 } }),
      pin(),
      true,
    ],
    [
      'equals, array in another order',
      mcp({ options: { equals: { a: 1, b: [1, 2] } } }),
      mcpStep({ options: { a: 1, b: [2, 1] } }),
      pin(),
      'argument "options": it is not the value the grant names',
    ],
    [
      'equals a number, given the string',
      mcp({ head: { equals: 1 } }),
      mcpStep({ head: '1' }),
      pin(),
      'argument "head": it is not the value the grant names',
    ],
    [
      'oneOf, listed',
      mcp({ mode: { oneOf: ['fast', { deep: true }] } }),
      mcpStep({ mode: { deep: true } }),
      pin(),
      true,
    ],
    [
      'oneOf, not listed',
      mcp({ mode: { oneOf: ['fast', 'slow'] } }),
      mcpStep({ mode: 'medium' }),
      pin(),
      'argument "mode": it is none of the values the grant lists',
    ],
    ['any', mcp({ path: { any: true } }), mcpStep({ path: { nested: ['anything'] } }), pin(), true],
  ];
  it.each(cases)('%s', (_what, covers, step, mcpPin, expected) => {
    expect(grantCovers(grant(covers), at(step, { mcpPin }))).toEqual(verdict(expected));
  });
});

describe('argumentFits', () => {
  const cases: [string, ArgumentRule, unknown, true | string][] = [
    ['any, a string', { any: true }, 'x', true],
    ['any, null', { any: true }, null, true],
    ['equals, same object other key order', { equals: { b: 2, a: 1 } }, { a: 1, b: 2 }, true],
    ['equals, -0 and 0 (the same JSON)', { equals: 0 }, -0, true],
    ['equals, null', { equals: null }, null, true],
    ['equals, missing key', { equals: { a: 1, b: 2 } }, { a: 1 }, 'it is not the value the grant names'],
    ['equals, true vs "true"', { equals: true }, 'true', 'it is not the value the grant names'],
    [
      'equals, a value canonical JSON cannot encode',
      { equals: 1 },
      Number.NaN,
      'it is not the value the grant names',
    ],
    ['oneOf, the second', { oneOf: [1, 2] }, 2, true],
    ['oneOf, none', { oneOf: [1, 2] }, 3, 'it is none of the values the grant lists'],
    ['glob, a string', { glob: 'src/*.ts' }, 'src/a.ts', true],
    ['glob, a boolean', { glob: '**' }, true, 'a glob matches text only'],
    ['glob, an array of strings', { glob: '**' }, ['a'], 'a glob matches text only'],
    ['glob, no match', { glob: 'src/*.ts' }, 'src/a/b.ts', 'it does not match src/*.ts'],
  ];
  it.each(cases)('%s', (_what, rule, value, expected) => {
    expect(argumentFits(rule, value)).toEqual(verdict(expected));
  });
});

describe('globMatches', () => {
  const cases: [string, string, boolean][] = [
    // `*` stops at `/`
    ['/workspace/docs/*', '/workspace/docs/a.md', true],
    ['/workspace/docs/*', '/workspace/docs/sub/a.md', false],
    ['/workspace/docs/*', '/workspace/docs/', true],
    ['*.md', 'a.md', true],
    ['*.md', '.md', true],
    ['*.md', 'dir/a.md', false],
    ['a/*/c', 'a/b/c', true],
    ['a/*/c', 'a/b/d/c', false],
    ['a*', 'a', true],
    ['*', '', true],
    // `**` crosses it
    ['/workspace/docs/**', '/workspace/docs/sub/deeper/a.md', true],
    ['/workspace/docs/**', '/workspace/docs/', true],
    ['/workspace/docs/**', '/workspace/doc', false],
    ['/workspace/docs/**', '/workspace/docsx/a.md', false],
    ['a/**/c', 'a/b/d/c', true],
    ['**/*.md', 'x/y/z.md', true],
    ['**', '', true],
    // `?` is one character, never `/`
    ['file?.txt', 'file1.txt', true],
    ['file?.txt', 'file.txt', false],
    ['file?.txt', 'file12.txt', false],
    ['file?.txt', 'file/.txt', false],
    ['?', '', false],
    // everything else is literal (not a regular expression, not a bracket class)
    ['a.b', 'a.b', true],
    ['a.b', 'axb', false],
    ['a+b', 'a+b', true],
    ['[ab]', 'a', false],
    ['[ab]', '[ab]', true],
    ['abc', 'abcd', false],
    ['abc', 'ab', false],
    ['ABC', 'abc', false],
    // a `..` segment never matches, whatever the glob
    ['/workspace/docs/**', '/workspace/docs/../../etc/passwd', false],
    ['/workspace/docs/*', '/workspace/docs/..', false],
    ['**', '..', false],
    ['**', 'a/../b', false],
    ['**', 'a\\..\\b', false],
    ['**', '../a', false],
    ['/workspace/docs/..*', '/workspace/docs/..', false],
    // …but a name that only starts with dots is a name
    ['**', 'a/..b', true],
    ['**', 'a/.../b', true],
    ['**', 'a/./b', true],
    // control characters never match
    ['**', 'a\nb', false],
    ['**', 'a\tb', false],
    ['**', 'a\u0000b', false],
    ['**', 'a\u001fb', false],
    ['**', 'a\u007fb', false],
    ['a?b', 'a\nb', false],
  ];
  it.each(cases)('%j against %j: %s', (glob, value, expected) => {
    expect(globMatches(glob, value)).toBe(expected);
  });

  it('never matches a value over 4096 characters', () => {
    expect(globMatches('**', 'a'.repeat(4096))).toBe(true);
    expect(globMatches('**', 'a'.repeat(4097))).toBe(false);
    expect(globMatches('*', 'a'.repeat(4097))).toBe(false);
    expect(argumentFits({ glob: '**' }, 'a'.repeat(4097))).toEqual(verdict('it does not match **'));
  });

  it('finishes on pathological globs without backtracking blow-up', () => {
    const value = 'a'.repeat(4000);
    expect(globMatches('*a*a*a*a*a*a*b', value)).toBe(false);
    expect(globMatches('**a**a**a**a**a**a**b', value)).toBe(false);
    expect(globMatches('*a*a*a*a*a*a*a', value)).toBe(true);
    expect(globMatches(`${'?'.repeat(100)}*b`, value)).toBe(false);
    expect(globMatches('*'.repeat(512), value)).toBe(true);
  });
});
