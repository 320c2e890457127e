import { afterEach, describe, expect, it } from 'vitest';
import { PLAN_LIMITS } from './limits.js';
import type { PlanSpec } from './types.js';
import {
  autoRuleMatches,
  PLAN_RULES_REFUSED,
  PlanValidationError,
  validatePlan,
  type PlanIssue,
} from './validate.js';
import { planSteps, subPlans } from './walk.js';

/** The issues validatePlan reports; fails the test when the plan is accepted or something else is thrown. */
function issuesOf(raw: unknown, options?: Parameters<typeof validatePlan>[1]): PlanIssue[] {
  try {
    validatePlan(raw, options);
  } catch (error) {
    expect(error).toBeInstanceOf(PlanValidationError);
    return (error as PlanValidationError).issues;
  }
  throw new Error('expected the plan to be refused, but it was accepted');
}

function errorOf(raw: unknown): PlanValidationError {
  try {
    validatePlan(raw);
  } catch (error) {
    expect(error).toBeInstanceOf(PlanValidationError);
    return error as PlanValidationError;
  }
  throw new Error('expected the plan to be refused, but it was accepted');
}

/** Plans recorded before standing approvals, whose own auto-approve rules still replay. */
const legacy = { planRules: 'legacy' as const };

/** A plan with the given steps. */
const plan = (steps: unknown[], extra: Record<string, unknown> = {}) => ({ name: 'p', steps, ...extra });
const step = (id: string, more: Record<string, unknown> = {}) => ({ id, run: `echo ${id}`, ...more });

function nestedSequences(levels: number): unknown {
  let node: unknown = step('leaf');
  for (let i = 0; i < levels; i++) node = { sequence: [node] };
  return node;
}

afterEach(() => {
  // No test may leave Object.prototype polluted.
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect(Object.prototype).not.toHaveProperty('run');
});

describe('validatePlan: a valid plan', () => {
  const raw = {
    name: 'release',
    description: 'build, check, ship',
    policy: { remind: '1h' },
    steps: [
      { id: 'checkout', run: 'git pull' },
      {
        id: 'checks',
        parallel: [
          { id: 'lint', run: 'npm run lint', approval: 'auto' },
          { id: 'test', run: 'npm test', approval: { mode: 'auto' } },
          { id: 'hello', run: 'echo hello', approval: 'auto' },
        ],
        failFast: false,
        maxConcurrency: 2,
      },
      { parallel: [{ id: 'a', run: 'true' }] },
      {
        id: 'confirm',
        name: 'Confirm',
        gate: 'Ship to production?',
        approval: { quorum: 2, timeout: '2h', remind: '10m' },
      },
      {
        sequence: [
          {
            id: 'deploy',
            run: 'make deploy',
            cwd: 'infra/prod',
            env: { STAGE: 'prod', REGION: 'eu' },
            timeout: '10m',
          },
        ],
      },
      {
        id: 'docs',
        plan: { name: 'docs', steps: [{ id: 'build', run: 'make docs' }] },
        shareWorkspace: true,
      },
      {
        id: 'notes',
        plan: {
          name: 'notes',
          policy: { approvalTimeout: '1h' },
          steps: [{ id: 'checkout', run: 'write notes' }],
        },
      },
    ],
  };

  it('fills in every default and keeps every given value', () => {
    const required = (timeout = '24h') => ({ mode: 'required', quorum: 1, timeout, remind: '1h' });
    const auto = { mode: 'auto', quorum: 1, timeout: '24h', remind: '1h' };
    const shellDefaults = { type: 'step', kind: 'shell', cwd: '.', env: {}, timeout: '30m' };
    const expected: PlanSpec = {
      version: 1,
      name: 'release',
      description: 'build, check, ship',
      policy: {
        autoApprove: [],
        approvalTimeout: '24h',
        remind: '1h',
        oneTapUpTo: 'medium',
      },
      egress: false,
      keepWorkspace: true,
      root: {
        type: 'sequence',
        path: '',
        children: [
          { ...shellDefaults, path: 'checkout', id: 'checkout', run: 'git pull', approval: required() },
          {
            type: 'parallel',
            id: 'checks',
            path: 'checks',
            failFast: false,
            maxConcurrency: 2,
            children: [
              { ...shellDefaults, path: 'lint', id: 'lint', run: 'npm run lint', approval: auto },
              { ...shellDefaults, path: 'test', id: 'test', run: 'npm test', approval: auto },
              { ...shellDefaults, path: 'hello', id: 'hello', run: 'echo hello', approval: auto },
            ],
          },
          {
            type: 'parallel',
            path: 'steps[2]',
            failFast: true,
            maxConcurrency: 0,
            children: [{ ...shellDefaults, path: 'a', id: 'a', run: 'true', approval: required() }],
          },
          {
            type: 'step',
            kind: 'gate',
            path: 'confirm',
            id: 'confirm',
            name: 'Confirm',
            gate: 'Ship to production?',
            approval: { mode: 'required', quorum: 2, timeout: '2h', remind: '10m' },
          },
          {
            type: 'sequence',
            path: 'steps[4]',
            children: [
              {
                ...shellDefaults,
                path: 'deploy',
                id: 'deploy',
                run: 'make deploy',
                cwd: 'infra/prod',
                env: { STAGE: 'prod', REGION: 'eu' },
                timeout: '10m',
                approval: required(),
              },
            ],
          },
          {
            type: 'plan',
            id: 'docs',
            path: 'docs',
            shareWorkspace: true,
            raw: { name: 'docs', steps: [{ id: 'build', run: 'make docs' }] },
            plan: {
              version: 1,
              name: 'docs',
              policy: { autoApprove: [], approvalTimeout: '24h', oneTapUpTo: 'medium' },
              egress: false,
              keepWorkspace: true,
              root: {
                type: 'sequence',
                path: '',
                children: [
                  {
                    ...shellDefaults,
                    path: 'build',
                    id: 'build',
                    run: 'make docs',
                    approval: { mode: 'required', quorum: 1, timeout: '24h' },
                  },
                ],
              },
            },
          },
          {
            type: 'plan',
            id: 'notes',
            path: 'notes',
            shareWorkspace: false,
            raw: {
              name: 'notes',
              policy: { approvalTimeout: '1h' },
              steps: [{ id: 'checkout', run: 'write notes' }],
            },
            plan: {
              version: 1,
              name: 'notes',
              policy: { autoApprove: [], approvalTimeout: '1h', oneTapUpTo: 'medium' },
              egress: false,
              keepWorkspace: true,
              root: {
                type: 'sequence',
                path: '',
                children: [
                  {
                    ...shellDefaults,
                    path: 'checkout',
                    id: 'checkout',
                    run: 'write notes',
                    approval: { mode: 'required', quorum: 1, timeout: '1h' },
                  },
                ],
              },
            },
          },
        ],
      },
    } as PlanSpec;
    expect(validatePlan(raw)).toEqual(expected);
  });

  it('does not modify its input and survives a JSON round trip of the result', () => {
    const copy = structuredClone(raw);
    const spec = validatePlan(copy);
    expect(copy).toEqual(raw);
    expect(validatePlan(JSON.parse(JSON.stringify(raw)))).toEqual(spec);
  });

  it('keeps the sub-plan as written so the child workflow can validate it again', () => {
    const spec = validatePlan(raw);
    const [docs, notes] = subPlans(spec);
    expect(docs?.raw).toEqual(raw.steps[5]!.plan);
    expect(validatePlan(docs?.raw)).toEqual(docs?.plan);
    expect(validatePlan(notes?.raw)).toEqual(notes?.plan);
  });

  it('walks steps in document order, leaving sub-plan steps to the sub-plan', () => {
    const spec = validatePlan(raw);
    expect(planSteps(spec).map((s) => s.id)).toEqual([
      'checkout',
      'lint',
      'test',
      'hello',
      'a',
      'confirm',
      'deploy',
    ]);
    expect(subPlans(spec).map((s) => s.id)).toEqual(['docs', 'notes']);
  });

  it('accepts version 1 written out, and the shortest plan', () => {
    expect(validatePlan({ version: 1, name: 'x', steps: [{ id: 'g', gate: 'ok?' }] }).version).toBe(1);
    expect(validatePlan({ name: 'x', steps: [step('a')] }).root.children).toHaveLength(1);
  });

  it('accepts ids, env names and durations at the edges of their grammar and bounds', () => {
    const spec = validatePlan(
      plan([
        step('0', { env: { _: 'x', a_B_9: '' } }),
        step('a'.repeat(63), { timeout: '1000ms' }),
        step('a-b_c', { timeout: '7d', cwd: 'a/b/c' }),
        step('dots', { cwd: '..hidden/x..y' }),
        step('constructor'),
      ]),
    );
    expect(planSteps(spec).map((s) => s.id)).toEqual(['0', 'a'.repeat(63), 'a-b_c', 'dots', 'constructor']);
  });
});

describe('validatePlan: error reporting', () => {
  it('reports the exact path and message of a bad field', () => {
    const raw = plan([step('a'), step('b'), { parallel: [step('c'), { id: 'd', run: 5 }] }]);
    const error = errorOf(raw);
    expect(error.issues).toEqual([{ path: 'steps[2].parallel[1].run', message: 'expected string' }]);
    expect(error.message).toBe(
      'plan is invalid (nothing was started):\n  steps[2].parallel[1].run: expected string',
    );
    expect(error.name).toBe('PlanValidationError');
  });

  it('starts every error message with "plan is invalid (nothing was started)"', () => {
    for (const raw of [null, plan([]), plan([{ kind: 'weird' }]), { steps: [step('a')] }]) {
      expect(errorOf(raw).message.startsWith('plan is invalid (nothing was started)')).toBe(true);
    }
  });

  it('reports every problem at once, not only the first', () => {
    const issues = issuesOf(
      plan([{ id: 'a', run: 1 }, { sequence: [{ id: 'b', gate: 2 }] }, step('c', { timeout: 'soon' })], {
        name: '',
      }),
    );
    expect(issues).toEqual([{ path: 'name', message: 'Too small: expected string to have >=1 characters' }]);
    // The plan fields are checked first; with a good name the node problems all appear.
    expect(
      issuesOf(
        plan([{ id: 'a', run: 1 }, { sequence: [{ id: 'b', gate: 2 }] }, step('c', { timeout: 'soon' })]),
      ),
    ).toEqual([
      { path: 'steps[0].run', message: 'expected string' },
      { path: 'steps[1].sequence[0].gate', message: 'expected string' },
      { path: 'steps[2].timeout', message: 'expected a duration such as 30s, 5m, 2h or 1d' },
    ]);
  });

  it('shows at most 20 issues in the message and counts the rest', () => {
    const error = errorOf(plan(Array.from({ length: 25 }, (_, i) => ({ id: `s${i}`, run: i }))));
    expect(error.issues).toHaveLength(25);
    const lines = error.message.split('\n');
    expect(lines).toHaveLength(22);
    expect(lines[20]).toBe('  steps[19].run: expected string');
    expect(lines[21]).toBe('  … and 5 more');
  });

  it('says when issues are left out of the message, down to a single one', () => {
    const withIssues = (n: number) =>
      errorOf(plan(Array.from({ length: n }, (_, i) => ({ id: `s${i}`, run: i }))));
    expect(withIssues(20).message.split('\n')).toHaveLength(21);
    expect(withIssues(20).message).not.toContain('more');
    expect(withIssues(21).message.split('\n').at(-1)).toBe('  … and 1 more');
  });

  it('labels a problem with the whole plan as "(plan)" in the message', () => {
    expect(errorOf(42).message).toBe('plan is invalid (nothing was started):\n  (plan): expected object');
  });

  it('refuses a top level that is not an object', () => {
    for (const raw of [null, undefined, 42, 'steps', true, [], [plan([step('a')])]]) {
      expect(issuesOf(raw), JSON.stringify(raw)).toEqual([{ path: '', message: 'expected object' }]);
    }
  });

  it('refuses a plan without a name, an empty name, or without steps', () => {
    expect(issuesOf({ steps: [step('a')] })).toEqual([{ path: 'name', message: 'expected string' }]);
    expect(issuesOf({ name: 7, steps: [step('a')] })).toEqual([{ path: 'name', message: 'expected string' }]);
    expect(issuesOf({ name: 'p' })).toEqual([{ path: 'steps', message: 'expected array' }]);
    expect(issuesOf(plan([]))).toEqual([
      { path: 'steps', message: 'Too small: expected array to have >=1 items' },
    ]);
  });

  it('refuses a version other than 1', () => {
    expect(issuesOf(plan([step('a')], { version: 2 }))).toEqual([
      { path: 'version', message: 'Invalid input: expected 1' },
    ]);
    expect(issuesOf(plan([step('a')], { version: '1' }))).toEqual([
      { path: 'version', message: 'Invalid input: expected 1' },
    ]);
  });

  it('refuses a step without an id, or with an id outside the grammar', () => {
    const idRule = 'ids are 1-63 of a-z, 0-9, "-" and "_", starting with a letter or digit';
    expect(issuesOf(plan([{ run: 'x' }]))).toEqual([{ path: 'steps[0].id', message: 'expected string' }]);
    expect(issuesOf(plan([{ gate: 'x' }]))).toEqual([{ path: 'steps[0].id', message: 'expected string' }]);
    expect(issuesOf(plan([{ plan: { name: 's', steps: [step('a')] } }]))).toEqual([
      { path: 'steps[0].id', message: 'expected string' },
    ]);
    for (const bad of ['', 'Build', '-a', '_a', 'a b', 'a/b', 'a.b', 'é', 'a'.repeat(64), '__proto__']) {
      expect(issuesOf(plan([step(bad)])), bad).toEqual([{ path: 'steps[0].id', message: idRule }]);
    }
  });
});

describe('validatePlan: node kinds', () => {
  const unknownNode = (fields: string) =>
    `unknown node: expected one of run, mcp, gate, parallel, sequence, plan; found fields ${fields}`;

  it('refuses node kinds it does not know', () => {
    expect(issuesOf(plan([{ id: 'x', agent: { cli: 'opencode' } }]))).toEqual([
      { path: 'steps[0]', message: unknownNode('"id", "agent"') },
    ]);
    expect(issuesOf(plan([{ kind: 'weird' }]))).toEqual([
      { path: 'steps[0]', message: unknownNode('"kind"') },
    ]);
    expect(issuesOf(plan([{ id: 'x', agent: 'claude' }]))).toEqual([
      { path: 'steps[0]', message: unknownNode('"id", "agent"') },
    ]);
    expect(issuesOf(plan([{}]))).toEqual([{ path: 'steps[0]', message: unknownNode('none') }]);
  });

  it('refuses an unknown node deep in the tree with its full path', () => {
    expect(issuesOf(plan([step('a'), { sequence: [step('b'), { parallel: [{ kind: 'weird' }] }] }]))).toEqual(
      [{ path: 'steps[1].sequence[1].parallel[0]', message: unknownNode('"kind"') }],
    );
  });

  it('refuses a node with two or more kinds', () => {
    expect(issuesOf(plan([{ id: 'x', run: 'ls', gate: 'ok?' }]))).toEqual([
      {
        path: 'steps[0]',
        message: 'a node has exactly one of run, mcp, gate, parallel, sequence, plan; found run and gate',
      },
    ]);
    expect(issuesOf(plan([{ sequence: [step('a')], parallel: [step('b')] }]))).toEqual([
      {
        path: 'steps[0]',
        message:
          'a node has exactly one of run, mcp, gate, parallel, sequence, plan; found parallel and sequence',
      },
    ]);
    expect(issuesOf(plan([{ id: 'x', run: 'a', plan: {}, gate: 'g' }]))[0]?.message).toBe(
      'a node has exactly one of run, mcp, gate, parallel, sequence, plan; found run and gate and plan',
    );
  });

  it('refuses nodes that are not objects', () => {
    const message = 'expected a node object (with one of run, mcp, gate, parallel, sequence, plan)';
    expect(issuesOf(plan([1, 'echo hi', null, [step('a')], true]))).toEqual(
      [0, 1, 2, 3, 4].map((i) => ({ path: `steps[${i}]`, message })),
    );
  });

  it('refuses empty and oversized child lists', () => {
    expect(issuesOf(plan([{ parallel: [] }]))).toEqual([
      { path: 'steps[0].parallel', message: 'Too small: expected array to have >=1 items' },
    ]);
    expect(issuesOf(plan([{ sequence: 'step' }]))).toEqual([
      { path: 'steps[0].sequence', message: 'expected array' },
    ]);
    const wide = Array.from({ length: PLAN_LIMITS.maxChildren + 1 }, (_, i) => step(`s${i}`));
    expect(issuesOf(plan(wide))).toEqual([
      { path: 'steps', message: 'Too big: expected array to have <=256 items' },
    ]);
    expect(issuesOf(plan([{ parallel: wide }]))).toEqual([
      { path: 'steps[0].parallel', message: 'Too big: expected array to have <=256 items' },
    ]);
  });

  it('checks parallel options', () => {
    expect(issuesOf(plan([{ parallel: [step('a')], failFast: 'no', maxConcurrency: -1 }]))).toEqual([
      { path: 'steps[0].failFast', message: 'expected boolean' },
      { path: 'steps[0].maxConcurrency', message: 'Too small: expected number to be >=0' },
    ]);
    expect(issuesOf(plan([{ parallel: [step('a')], maxConcurrency: 1.5 }]))).toEqual([
      { path: 'steps[0].maxConcurrency', message: 'expected int' },
    ]);
  });

  it('validates a sub-plan with paths that lead into it', () => {
    expect(issuesOf(plan([{ id: 'sub', plan: { steps: [{ id: 'b', run: 5 }] } }]))).toEqual([
      { path: 'steps[0].plan.name', message: 'expected string' },
    ]);
    expect(issuesOf(plan([{ id: 'sub', plan: { name: 's', steps: [{ id: 'b', run: 5 }] } }]))).toEqual([
      { path: 'steps[0].plan.steps[0].run', message: 'expected string' },
    ]);
    expect(issuesOf(plan([{ id: 'sub', plan: 'other.yaml' }]))).toEqual([
      { path: 'steps[0].plan', message: 'expected record' },
    ]);
    expect(
      issuesOf(plan([{ id: 'sub', plan: { name: 's', steps: [step('a')] }, shareWorkspace: 'yes' }])),
    ).toEqual([{ path: 'steps[0].shareWorkspace', message: 'expected boolean' }]);
  });
});

describe('validatePlan: fields', () => {
  it('refuses unknown fields by name, everywhere', () => {
    expect(issuesOf(plan([step('a')], { foo: 1 }))).toEqual([{ path: '', message: 'unknown field "foo"' }]);
    expect(issuesOf(plan([step('a', { bar: 2, baz: 3 })]))).toEqual([
      { path: 'steps[0]', message: 'unknown fields "bar", "baz"' },
    ]);
    expect(issuesOf(plan([{ id: 'g', gate: 'ok?', run_as: 'root' }]))).toEqual([
      { path: 'steps[0]', message: 'unknown field "run_as"' },
    ]);
    expect(issuesOf(plan([{ sequence: [step('a')], failFast: false }]))).toEqual([
      { path: 'steps[0]', message: 'unknown field "failFast"' },
    ]);
    expect(issuesOf(plan([{ parallel: [step('a')], concurrency: 2 }]))).toEqual([
      { path: 'steps[0]', message: 'unknown field "concurrency"' },
    ]);
    expect(issuesOf(plan([{ id: 's', plan: { name: 's', steps: [step('a')] }, image: 'x' }]))).toEqual([
      { path: 'steps[0]', message: 'unknown field "image"' },
    ]);
    expect(issuesOf(plan([step('a', { approval: { mode: 'required', who: 'me' } })]))).toEqual([
      { path: 'steps[0].approval', message: 'unknown field "who"' },
    ]);
    expect(issuesOf(plan([step('a')], { policy: { auto: [] } }))).toEqual([
      { path: 'policy', message: 'unknown field "auto"' },
    ]);
    expect(issuesOf(plan([step('a')], { policy: { autoApprove: [{ id: 'a', image: 'x' }] } }))).toEqual([
      { path: 'policy.autoApprove[0]', message: 'unknown field "image"' },
    ]);
  });

  it('refuses cwd outside the workspace', () => {
    const message = 'must be a relative path that stays inside the workspace';
    for (const cwd of ['../x', '..', '/', '/etc', '/work/main', 'a/../../b', 'a/..', 'a/../b', './..']) {
      expect(issuesOf(plan([step('a', { cwd })])), cwd).toEqual([{ path: 'steps[0].cwd', message }]);
    }
    expect(issuesOf(plan([step('a', { cwd: 'x'.repeat(1025) })]))).toEqual([
      { path: 'steps[0].cwd', message: 'Too big: expected string to have <=1024 characters' },
    ]);
  });

  it('refuses durations it cannot read, wherever they appear', () => {
    const message = 'expected a duration such as 30s, 5m, 2h or 1d';
    for (const bad of [
      '5 min',
      '1.5h',
      '10',
      '-1s',
      '1y',
      '',
      'h',
      '1H',
      ' 1h',
      '1h ',
      '1h30m',
      '1234567890s',
    ]) {
      expect(issuesOf(plan([step('a', { timeout: bad })])), bad).toEqual([
        { path: 'steps[0].timeout', message },
      ]);
    }
    expect(issuesOf(plan([step('a', { timeout: 30 })]))).toEqual([
      { path: 'steps[0].timeout', message: 'expected string' },
    ]);
    expect(issuesOf(plan([{ id: 'g', gate: 'ok?', approval: { timeout: '1w' } }]))).toEqual([
      { path: 'steps[0].approval.timeout', message },
    ]);
    expect(issuesOf(plan([{ id: 'g', gate: 'ok?', approval: { remind: 'often' } }]))).toEqual([
      { path: 'steps[0].approval.remind', message },
    ]);
    expect(issuesOf(plan([step('a')], { policy: { approvalTimeout: 'never' } }))).toEqual([
      { path: 'policy.approvalTimeout', message },
    ]);
    expect(issuesOf(plan([step('a')], { policy: { remind: '5' } }))).toEqual([
      { path: 'policy.remind', message },
    ]);
  });

  it('checks env names, values and count', () => {
    expect(issuesOf(plan([step('a', { env: { 'A-B': '1', OK: 2, '1X': 'y' } })]))).toEqual([
      { path: 'steps[0].env.A-B', message: 'Invalid key in record' },
      { path: 'steps[0].env.OK', message: 'expected string' },
      { path: 'steps[0].env.1X', message: 'Invalid key in record' },
    ]);
    const many = Object.fromEntries(
      Array.from({ length: PLAN_LIMITS.maxEnvEntries + 1 }, (_, i) => [`V${i}`, 'x']),
    );
    expect(issuesOf(plan([step('a', { env: many })]))).toEqual([
      { path: 'steps[0].env', message: 'at most 64 variables' },
    ]);
    const enough = Object.fromEntries(
      Array.from({ length: PLAN_LIMITS.maxEnvEntries }, (_, i) => [`V${i}`, 'x']),
    );
    expect(() => validatePlan(plan([step('a', { env: enough })]))).not.toThrow();
  });

  it('checks command size', () => {
    expect(issuesOf(plan([step('a', { run: '' })]))).toEqual([
      { path: 'steps[0].run', message: 'Too small: expected string to have >=1 characters' },
    ]);
    expect(issuesOf(plan([step('a', { run: 'x'.repeat(PLAN_LIMITS.maxCommandBytes + 1) })]))).toEqual([
      { path: 'steps[0].run', message: 'Too big: expected string to have <=16384 characters' },
    ]);
  });

  it('refuses duplicate ids anywhere in one plan, naming the second one', () => {
    expect(issuesOf(plan([step('a'), { parallel: [step('b'), step('a')] }]))).toEqual([
      { path: 'steps[1].parallel[1].id', message: 'duplicate id "a" in this plan' },
    ]);
    expect(issuesOf(plan([{ id: 'a', gate: 'ok?' }, { sequence: [step('a')] }]))).toEqual([
      { path: 'steps[1].sequence[0].id', message: 'duplicate id "a" in this plan' },
    ]);
    expect(issuesOf(plan([step('a'), { id: 'a', plan: { name: 's', steps: [step('b')] } }]))).toEqual([
      { path: 'steps[1].id', message: 'duplicate id "a" in this plan' },
    ]);
    expect(issuesOf(plan([step('a'), step('a'), step('a')]))).toEqual([
      { path: 'steps[1].id', message: 'duplicate id "a" in this plan' },
      { path: 'steps[2].id', message: 'duplicate id "a" in this plan' },
    ]);
  });

  it('gives a sub-plan its own id namespace', () => {
    const spec = validatePlan(
      plan([step('a'), { id: 'sub', plan: { name: 's', steps: [step('a'), step('sub')] } }]),
    );
    expect(subPlans(spec)[0]?.plan.root.children.map((c) => c.path)).toEqual(['a', 'sub']);
    expect(issuesOf(plan([{ id: 'sub', plan: { name: 's', steps: [step('a'), step('a')] } }]))).toEqual([
      { path: 'steps[0].plan.steps[1].id', message: 'duplicate id "a" in this plan' },
    ]);
  });
});

describe('validatePlan: standing approvals, not plan rules', () => {
  it("refuses a plan's own auto-approve rules and says what to do instead", () => {
    for (const rules of [[{ kind: 'shell' }], [{ id: 'pwn' }], [{ run: 'echo a' }], [{ runPrefix: 'echo ' }]])
      expect(
        issuesOf(plan([step('a', { approval: 'auto' })], { policy: { autoApprove: rules } })),
        JSON.stringify(rules),
      ).toEqual([{ path: 'policy.autoApprove', message: PLAN_RULES_REFUSED }]);
    expect(PLAN_RULES_REFUSED).toContain('countersign grants add');
  });

  it('accepts "auto" with no rule: the step asks for a standing approval, else a person decides', () => {
    const mcp = { id: 'read', mcp: { server: 'filesystem', tool: 'read_text_file' }, approval: 'auto' };
    const spec = validatePlan(plan([step('a', { approval: 'auto' }), mcp]));
    expect(planSteps(spec).map((s) => s.approval.mode)).toEqual(['auto', 'auto']);
    expect(spec.policy.autoApprove).toEqual([]);
    expect(validatePlan(plan([step('a')], { policy: { autoApprove: [] } })).policy.autoApprove).toEqual([]);
  });

  it('refuses a quorum on an auto step, where a standing approval stands for one person', () => {
    expect(issuesOf(plan([step('a', { approval: { mode: 'auto', quorum: 2 } })]))).toEqual([
      {
        path: 'steps[0].approval',
        message:
          'a step that needs a quorum of people cannot be approved by a standing approval: use approval: required',
      },
    ]);
  });

  it('reads a recorded plan of either kind for the history (its rules read, never required)', () => {
    const read = { planRules: 'read' as const };
    expect(planSteps(validatePlan(plan([step('a', { approval: 'auto' })]), read))[0]?.approval.mode).toBe(
      'auto',
    );
    const ruled = plan([step('a', { approval: 'auto' })], { policy: { autoApprove: [{ id: 'a' }] } });
    expect(validatePlan(ruled, read).policy.autoApprove).toEqual([{ id: 'a' }]);
  });

  it('never lets a gate ask for a standing approval', () => {
    expect(issuesOf(plan([{ id: 'g', gate: 'ok?', approval: 'auto' }]))).toEqual([
      { path: 'steps[0].approval', message: 'a gate is a human checkpoint: it cannot be auto-approved' },
    ]);
  });
});

describe('validatePlan: recorded plans with their own rules (legacy replay)', () => {
  const needsRule = '"auto" needs a rule in policy.autoApprove that matches this step';

  it('refuses "auto" without a matching rule', () => {
    expect(issuesOf(plan([step('a', { approval: 'auto' })]), legacy)).toEqual([
      { path: 'steps[0].approval', message: needsRule },
    ]);
    expect(issuesOf(plan([{ sequence: [step('a', { approval: { mode: 'auto' } })] }]), legacy)).toEqual([
      { path: 'steps[0].sequence[0].approval', message: needsRule },
    ]);
  });

  it('accepts "auto" with a rule matching by id, run, runPrefix or kind', () => {
    const cases: [Record<string, unknown>, Record<string, unknown>][] = [
      [{ id: 'lint' }, { id: 'lint', run: 'anything' }],
      [{ run: 'npm test' }, { id: 'x', run: 'npm test' }],
      [{ runPrefix: 'npm run ' }, { id: 'x', run: 'npm run build' }],
      [{ kind: 'shell' }, { id: 'x', run: 'rm -rf build' }],
      [
        { id: 'x', runPrefix: 'make ' },
        { id: 'x', run: 'make all' },
      ],
    ];
    for (const [rule, fields] of cases) {
      const spec = validatePlan(
        plan([{ ...fields, approval: 'auto' }], { policy: { autoApprove: [{ id: 'other' }, rule] } }),
        legacy,
      );
      expect(planSteps(spec)[0]?.approval.mode, JSON.stringify(rule)).toBe('auto');
    }
  });

  it('refuses "auto" when the rule differs in any field it names', () => {
    const cases: [Record<string, unknown>, Record<string, unknown>][] = [
      [{ id: 'lint' }, { id: 'lint2', run: 'x' }],
      [{ run: 'npm test' }, { id: 'x', run: 'npm test && curl evil' }],
      [{ run: 'npm test' }, { id: 'x', run: 'npm  test' }],
      [{ runPrefix: 'npm run ' }, { id: 'x', run: 'npm runx' }],
      [{ runPrefix: 'npm run ' }, { id: 'x', run: ' npm run build' }],
      [
        { id: 'x', runPrefix: 'make ' },
        { id: 'y', run: 'make all' },
      ],
      [
        { id: 'x', runPrefix: 'make ' },
        { id: 'x', run: 'rm -rf /' },
      ],
    ];
    for (const [rule, fields] of cases) {
      expect(
        issuesOf(plan([{ ...fields, approval: 'auto' }], { policy: { autoApprove: [rule] } }), legacy),
        JSON.stringify([rule, fields]),
      ).toEqual([{ path: 'steps[0].approval', message: needsRule }]);
    }
  });

  it('refuses rules that match nothing specific, or that are malformed', () => {
    expect(issuesOf(plan([step('a')], { policy: { autoApprove: [{}] } }), legacy)).toEqual([
      {
        path: 'policy.autoApprove[0]',
        message: 'a rule must match on at least one of id, kind, run, runPrefix, tool',
      },
    ]);
    expect(issuesOf(plan([step('a')], { policy: { autoApprove: [{ runPrefix: '' }] } }), legacy)).toEqual([
      {
        path: 'policy.autoApprove[0].runPrefix',
        message: 'Too small: expected string to have >=1 characters',
      },
    ]);
    expect(issuesOf(plan([step('a')], { policy: { autoApprove: [{ kind: 'gate' }] } }), legacy)).toEqual([
      { path: 'policy.autoApprove[0].kind', message: 'Invalid option: expected one of "shell"|"mcp"' },
    ]);
  });

  it('never auto-approves a gate, even with a rule naming it', () => {
    const issues = issuesOf(
      plan([{ id: 'g', gate: 'ok?', approval: 'auto' }], { policy: { autoApprove: [{ id: 'g' }] } }),
      legacy,
    );
    expect(issues).toEqual([
      { path: 'steps[0].approval', message: 'a gate is a human checkpoint: it cannot be auto-approved' },
    ]);
  });

  it('refuses a quorum on an auto step', () => {
    const issues = issuesOf(
      plan([step('a', { approval: { mode: 'auto', quorum: 2 } })], {
        policy: { autoApprove: [{ id: 'a' }] },
      }),
      legacy,
    );
    expect(issues).toEqual([
      {
        path: 'steps[0].approval',
        message:
          'a step that needs a quorum of people cannot be approved by a standing approval: use approval: required',
      },
    ]);
  });
});

describe('validatePlan: approval policy', () => {
  it('bounds the quorum and the approval mode', () => {
    const union =
      'expected "required", "auto" or an object with mode, quorum, timeout, remind, escalate, approvers, risk';
    expect(issuesOf(plan([{ id: 'g', gate: 'ok?', approval: { quorum: 0 } }]))).toEqual([
      { path: 'steps[0].approval.quorum', message: 'Too small: expected number to be >=1' },
    ]);
    expect(issuesOf(plan([{ id: 'g', gate: 'ok?', approval: { quorum: 17 } }]))).toEqual([
      { path: 'steps[0].approval.quorum', message: 'Too big: expected number to be <=16' },
    ]);
    for (const approval of [{ quorum: 1.5 }, 'maybe', { mode: 'sometimes' }, 1, null]) {
      expect(issuesOf(plan([{ id: 'g', gate: 'ok?', approval }])), JSON.stringify(approval)).toEqual([
        { path: 'steps[0].approval', message: union },
      ]);
    }
    expect(
      planSteps(validatePlan(plan([{ id: 'g', gate: 'ok?', approval: { quorum: 16 } }])))[0]?.approval.quorum,
    ).toBe(16);
  });
});

describe('autoRuleMatches', () => {
  const shell = planSteps(validatePlan(plan([{ id: 'lint', run: 'npm run lint' }])))[0]!;
  const gate = planSteps(validatePlan(plan([{ id: 'lint', gate: 'npm run lint' }])))[0]!;

  it('requires every named field to match', () => {
    expect(autoRuleMatches({ id: 'lint', runPrefix: 'npm ' }, shell)).toBe(true);
    expect(autoRuleMatches({ id: 'lint', run: 'npm run lint', kind: 'shell' }, shell)).toBe(true);
    expect(autoRuleMatches({ id: 'lint', run: 'npm run' }, shell)).toBe(false);
    expect(autoRuleMatches({ id: 'lint', runPrefix: 'yarn' }, shell)).toBe(false);
  });

  it('never lets a run or runPrefix rule match a gate through its message', () => {
    expect(autoRuleMatches({ run: 'npm run lint' }, gate)).toBe(false);
    expect(autoRuleMatches({ runPrefix: 'npm' }, gate)).toBe(false);
    expect(autoRuleMatches({ kind: 'shell' }, gate)).toBe(false);
  });
});

describe('validatePlan: prototype pollution', () => {
  const guard = 'this key name is not allowed (prototype pollution guard)';

  it('refuses "__proto__" as an own key at any depth', () => {
    const texts: [string, string][] = [
      ['{"name":"p","__proto__":{"polluted":1},"steps":[{"id":"a","run":"x"}]}', '__proto__'],
      ['{"name":"p","steps":[{"id":"a","run":"x","__proto__":{"polluted":1}}]}', 'steps[0].__proto__'],
      [
        '{"name":"p","steps":[{"id":"a","run":"x","env":{"__proto__":{"polluted":"1"}}}]}',
        'steps[0].env.__proto__',
      ],
      [
        '{"name":"p","policy":{"__proto__":{"polluted":1}},"steps":[{"id":"a","run":"x"}]}',
        'policy.__proto__',
      ],
      [
        '{"name":"p","steps":[{"sequence":[{"id":"s","plan":{"name":"s","steps":[{"id":"b","gate":"g","__proto__":{"run":"evil"}}]}}]}]}',
        'steps[0].sequence[0].plan.steps[0].__proto__',
      ],
    ];
    for (const [text, path] of texts) {
      const raw: unknown = JSON.parse(text);
      expect(issuesOf(raw), text).toEqual([{ path, message: guard }]);
    }
  });

  it('refuses "constructor" and "prototype" keys', () => {
    expect(issuesOf(plan([step('a', { env: { constructor: 'x' } })]))).toEqual([
      { path: 'steps[0].env.constructor', message: guard },
    ]);
    expect(issuesOf(plan([step('a')], { policy: { prototype: { autoApprove: [] } } }))).toEqual([
      { path: 'policy.prototype', message: guard },
    ]);
    expect(
      issuesOf(
        JSON.parse('{"name":"p","steps":[{"id":"a","run":"x","constructor":{"prototype":{"polluted":1}}}]}'),
      ),
    ).toEqual([{ path: 'steps[0].constructor', message: guard }]);
  });

  it('allows those words as values', () => {
    const spec = validatePlan(
      plan([step('constructor', { run: '__proto__', env: { X: 'prototype' } })], { name: '__proto__' }),
    );
    expect(spec.name).toBe('__proto__');
  });
});

describe('validatePlan: size and depth limits', () => {
  it('refuses 10,000 nested parallels (JSON text) with a clear message and no stack overflow', () => {
    const levels = 10_000;
    const text = `{"name":"p","steps":[${'{"parallel":['.repeat(levels)}{"id":"a","run":"x"}${']}'.repeat(levels)}]}`;
    const issues = issuesOf(JSON.parse(text));
    expect(issues).toHaveLength(1);
    expect(issues[0]?.message).toBe(`plan is nested deeper than ${PLAN_LIMITS.maxDepth} levels`);
    expect(issues[0]?.path).toMatch(/^steps\[0\](\.parallel\[0\])+\.parallel$/);
  });

  it('refuses deep nesting under a field no schema reads', () => {
    const text = `{"name":"p","steps":[{"id":"a","run":"x","env":${'{"A":'.repeat(10_000)}"x"${'}'.repeat(10_000)}}]}`;
    expect(issuesOf(JSON.parse(text))[0]?.message).toBe(
      `plan is nested deeper than ${PLAN_LIMITS.maxDepth} levels`,
    );
  });

  it('refuses 30 nested sequences, naming where the limit was crossed', () => {
    const issues = issuesOf(plan([nestedSequences(30)]));
    expect(issues).toEqual([
      {
        path: `steps[0]${'.sequence[0]'.repeat(PLAN_LIMITS.maxDepth)}`,
        message: 'plan is nested deeper than 24 levels',
      },
    ]);
  });

  it('accepts nesting up to the limit and refuses one level more', () => {
    // Top-level steps are at depth 1, so a leaf inside 23 sequences is at depth 24.
    expect(() => validatePlan(plan([nestedSequences(PLAN_LIMITS.maxDepth - 1)]))).not.toThrow();
    expect(issuesOf(plan([nestedSequences(PLAN_LIMITS.maxDepth)]))[0]?.message).toBe(
      'plan is nested deeper than 24 levels',
    );
  });

  it('counts sub-plans towards the depth', () => {
    let raw: unknown = plan([step('leaf')]);
    for (let i = 0; i < 13; i++) raw = plan([{ id: `sub${i}`, plan: raw }]);
    expect(issuesOf(raw)[0]?.message).toBe('plan is nested deeper than 24 levels');
  });

  it('accepts 1000 nodes and refuses 1001, reporting it once', () => {
    const parallels = (stepsEach: number, count: number) =>
      Array.from({ length: count }, (_, p) => ({
        parallel: Array.from({ length: stepsEach }, (_, i) => step(`p${p}-s${i}`)),
      }));
    // 4 parallels + 4 × 249 steps = 1000 nodes.
    expect(planSteps(validatePlan(plan(parallels(249, 4))))).toHaveLength(996);
    const over = plan([...parallels(249, 4), step('one-more')]);
    expect(issuesOf(over)).toEqual([
      { path: 'steps[4]', message: `plan has more than ${PLAN_LIMITS.maxNodes} nodes` },
    ]);
    // 5 × (1 + 250) nodes: the 1001st is step 246 of the fourth parallel (3 × 251 + 1 + 247 = 1001).
    const wayOver = plan(parallels(250, 5));
    expect(issuesOf(wayOver)).toEqual([
      { path: 'steps[3].parallel[246]', message: 'plan has more than 1000 nodes' },
    ]);
  });

  it('counts sub-plan nodes in the same budget', () => {
    const sub = { id: 'sub', plan: { name: 's', steps: Array.from({ length: 3 }, (_, i) => step(`s${i}`)) } };
    expect(() => validatePlan(plan([step('a'), sub]), { maxNodes: 5 })).not.toThrow();
    expect(issuesOf(plan([step('a'), sub]), { maxNodes: 4 })).toEqual([
      { path: 'steps[1].plan.steps[2]', message: 'plan has more than 4 nodes' },
    ]);
  });
});

describe('validatePlan: workspace network and retention', () => {
  const one = [{ id: 'a', run: 'true' }];
  const sub = (extra: Record<string, unknown>) => ({
    id: 'docs',
    plan: { name: 'docs', steps: [{ id: 'write', run: 'true' }], ...extra },
  });

  it('defaults to no egress and keeping the workspace, and takes both from the plan', () => {
    expect(validatePlan({ name: 'p', steps: one })).toMatchObject({ egress: false, keepWorkspace: true });
    expect(validatePlan({ name: 'p', egress: true, keepWorkspace: false, steps: one })).toMatchObject({
      egress: true,
      keepWorkspace: false,
    });
  });

  it('refuses a sub-plan that shares the workspace but not its network', () => {
    expect(issuesOf({ name: 'p', steps: [{ ...sub({ egress: true }), shareWorkspace: true }] })).toEqual([
      {
        path: 'steps[0].plan.egress',
        message:
          "a sub-plan that shares its parent's workspace shares its network too (the parent has egress: false)",
      },
    ]);
  });

  it('lets a sub-plan with its own workspace choose its own network', () => {
    const spec = validatePlan({ name: 'p', steps: [sub({ egress: true })] });
    expect(subPlans(spec)[0]?.plan.egress).toBe(true);
  });

  it('takes a workspace size from 16MiB to 1TiB, and refuses anything else with its path', () => {
    expect(validatePlan({ name: 'p', steps: one }).workspaceSize).toBeUndefined();
    expect(validatePlan({ name: 'p', workspaceSize: '512MiB', steps: one }).workspaceSize).toBe('512MiB');
    expect(issuesOf({ name: 'p', workspaceSize: '8MiB', steps: one })).toEqual([
      { path: 'workspaceSize', message: 'at least 16MiB (room for a file system)' },
    ]);
    expect(issuesOf({ name: 'p', workspaceSize: '2TiB', steps: one })).toEqual([
      { path: 'workspaceSize', message: 'at most 1TiB' },
    ]);
    for (const bad of ['4GB', '4 GiB', '0GiB', '-1GiB', '1.5GiB', 4096])
      expect(issuesOf({ name: 'p', workspaceSize: bad, steps: one })[0]?.path).toBe('workspaceSize');
  });

  it('refuses egress that is not a boolean', () => {
    expect(issuesOf({ name: 'p', egress: 'yes', steps: one })).toEqual([
      { path: 'egress', message: 'expected boolean' },
    ]);
  });
});

describe('validatePlan: nested sub-plan ids', () => {
  const nest = (ids: string[]): Record<string, unknown> => {
    let plan: Record<string, unknown> = { name: 'leaf', steps: [{ id: 'work', run: 'true' }] };
    for (const id of [...ids].reverse()) plan = { name: id, steps: [{ id, plan }] };
    return plan;
  };

  it('accepts nested ids up to the limit', () => {
    const ids = Array.from({ length: 4 }, (_, i) => `${i}`.padEnd(49, 'x')); // 4×49 + 3 dots = 199
    expect(() => validatePlan(nest(ids))).not.toThrow();
  });

  it('refuses ids that would nest into an overlong workflow id, once, where the limit is crossed', () => {
    const ids = Array.from({ length: 6 }, (_, i) => `${i}`.padEnd(60, 'x'));
    const issues = issuesOf(nest(ids));
    expect(issues).toHaveLength(1);
    expect(issues[0]!.path).toBe('steps[0].plan.steps[0].plan.steps[0].plan.steps[0].id');
    expect(issues[0]!.message).toMatch(
      /^nested sub-plan ids become workflow ids: .* is 243 characters, at most 200$/,
    );
  });
});

describe('validatePlan: mcp steps', () => {
  const call = (mcp: Record<string, unknown> = {}, more: Record<string, unknown> = {}) => ({
    id: 'echo',
    mcp: { server: 'everything', tool: 'echo', ...mcp },
    ...more,
  });
  const onlyStep = (spec: PlanSpec) => {
    const steps = planSteps(spec);
    expect(steps).toHaveLength(1);
    return steps[0]!;
  };

  it('validates with the defaults: no arguments, a 2m timeout, approval required', () => {
    expect(onlyStep(validatePlan(plan([call()])))).toEqual({
      type: 'step',
      kind: 'mcp',
      path: 'echo',
      id: 'echo',
      name: undefined,
      server: 'everything',
      tool: 'echo',
      arguments: {},
      timeout: '2m',
      approval: { mode: 'required', quorum: 1, timeout: '24h', remind: undefined },
    });
  });

  it('keeps the arguments, name, timeout and approval as written', () => {
    const args = { message: 'hi', n: 1.5, list: [true, null, { deep: 'x' }] };
    expect(
      onlyStep(
        validatePlan(
          plan([call({ arguments: args }, { name: 'Say hi', timeout: '30s', approval: { quorum: 2 } })]),
        ),
      ),
    ).toMatchObject({
      name: 'Say hi',
      arguments: args,
      timeout: '30s',
      approval: { mode: 'required', quorum: 2 },
    });
  });

  it('refuses unknown fields inside mcp, with the path of the mcp object', () => {
    expect(issuesOf(plan([call({ args: {} })]))).toEqual([
      { path: 'steps[0].mcp', message: 'unknown field "args"' },
    ]);
    expect(issuesOf(plan([{ parallel: [step('a'), call({ env: {}, cwd: '.' })] }]))).toEqual([
      { path: 'steps[0].parallel[1].mcp', message: 'unknown fields "env", "cwd"' },
    ]);
  });

  it('refuses shell-only fields on an mcp step', () => {
    expect(issuesOf(plan([call({}, { cwd: 'src' })]))).toEqual([
      { path: 'steps[0]', message: 'unknown field "cwd"' },
    ]);
  });

  it('refuses a missing or empty tool and an mcp that is not an object', () => {
    expect(issuesOf(plan([{ id: 'e', mcp: { server: 'everything' } }]))).toEqual([
      { path: 'steps[0].mcp.tool', message: 'expected string' },
    ]);
    expect(issuesOf(plan([call({ tool: '' })]))[0]!.path).toBe('steps[0].mcp.tool');
    expect(issuesOf(plan([call({ tool: 'x'.repeat(129) })]))[0]!.path).toBe('steps[0].mcp.tool');
    expect(issuesOf(plan([{ id: 'e', mcp: 'everything/echo' }]))).toEqual([
      { path: 'steps[0].mcp', message: 'expected object' },
    ]);
  });

  it.each(['Everything', '-everything', '_x', 'every/thing', 'every thing', '', 'a'.repeat(64)])(
    'refuses the server id %j',
    (server) => {
      expect(issuesOf(plan([call({ server })]))).toEqual([
        { path: 'steps[0].mcp.server', message: 'expected a catalog server id' },
      ]);
    },
  );

  it.each(['a', '0', 'mcp-server_2', 'a'.repeat(63)])('accepts the server id %j', (server) => {
    expect(onlyStep(validatePlan(plan([call({ server })])))).toMatchObject({ server });
  });

  it('accepts arguments of exactly 64 KiB as canonical JSON and refuses one byte more, giving the size', () => {
    // {"s":"…"} is 8 bytes around the string.
    const fits = { s: 'x'.repeat(PLAN_LIMITS.maxToolArgumentBytes - 8) };
    expect(onlyStep(validatePlan(plan([call({ arguments: fits })])))).toMatchObject({ arguments: fits });
    const over = { s: 'x'.repeat(PLAN_LIMITS.maxToolArgumentBytes - 7) };
    expect(issuesOf(plan([call({ arguments: over })]))).toEqual([
      { path: 'steps[0].mcp.arguments', message: 'arguments are 65537 bytes as JSON, at most 65536' },
    ]);
  });

  it.each([
    ['Infinity', { n: Infinity }, 'got Infinity'],
    ['NaN in a list', { list: [1, NaN] }, 'got NaN'],
    ['an unsafe integer', { n: 2 ** 53 }, 'got 9007199254740992'],
  ])('refuses arguments holding %s as not plain JSON', (_what, args, detail) => {
    expect(issuesOf(plan([call({ arguments: args })]))).toEqual([
      {
        path: 'steps[0].mcp.arguments',
        message: `arguments must be plain JSON: canonical JSON takes finite numbers and safe integers only, ${detail}`,
      },
    ]);
  });

  it('refuses arguments holding a bigint or a function, and arguments that are not an object', () => {
    expect(issuesOf(plan([call({ arguments: { n: 10n } })]))).toEqual([
      {
        path: 'steps[0].mcp.arguments',
        message: 'arguments must be plain JSON: canonical JSON cannot encode a bigint',
      },
    ]);
    expect(issuesOf(plan([call({ arguments: { f: () => 1 } })]))[0]!.message).toBe(
      'arguments must be plain JSON: canonical JSON cannot encode a function',
    );
    for (const args of ['{}', [1], 3, null])
      expect(issuesOf(plan([call({ arguments: args })]))).toEqual([
        { path: 'steps[0].mcp.arguments', message: 'expected record' },
      ]);
  });

  it('gives mcp steps ids in the same space as every other step', () => {
    expect(issuesOf(plan([step('echo'), call()]))).toEqual([
      { path: 'steps[1].id', message: 'duplicate id "echo" in this plan' },
    ]);
  });

  it('needs a matching auto-approve rule for an auto mcp step (legacy replay)', () => {
    expect(issuesOf(plan([call({}, { approval: 'auto' })]), legacy)).toEqual([
      {
        path: 'steps[0].approval',
        message: '"auto" needs a rule in policy.autoApprove that matches this step',
      },
    ]);
  });

  it('lets the rule tool "everything/echo" auto-approve that tool and no other (legacy replay)', () => {
    const policy = { policy: { autoApprove: [{ tool: 'everything/echo' }] } };
    const spec = validatePlan(plan([call({}, { approval: 'auto' })], policy), legacy);
    expect(onlyStep(spec).approval.mode).toBe('auto');
    const refusedAt = {
      path: 'steps[0].approval',
      message: '"auto" needs a rule in policy.autoApprove that matches this step',
    };
    expect(issuesOf(plan([call({ tool: 'get-sum' }, { approval: 'auto' })], policy), legacy)).toEqual([
      refusedAt,
    ]);
    expect(issuesOf(plan([call({ server: 'memory' }, { approval: 'auto' })], policy), legacy)).toEqual([
      refusedAt,
    ]);
    expect(issuesOf(plan([call({ tool: 'echo2' }, { approval: 'auto' })], policy), legacy)).toEqual([
      refusedAt,
    ]);
    expect(issuesOf(plan([step('s', { run: 'everything/echo', approval: 'auto' })], policy), legacy)).toEqual(
      [refusedAt],
    );
  });

  it('matches a tool rule exactly, through autoRuleMatches', () => {
    const [echo, sum, shell] = planSteps(
      validatePlan(
        plan([call(), call({ tool: 'get-sum' }, { id: 'sum' }), step('sh', { run: 'everything/echo' })]),
      ),
    );
    const rule = { tool: 'everything/echo' };
    expect(autoRuleMatches(rule, echo!)).toBe(true);
    expect(autoRuleMatches(rule, sum!)).toBe(false);
    expect(autoRuleMatches(rule, shell!)).toBe(false);
    expect(autoRuleMatches({ tool: 'everything/ech' }, echo!)).toBe(false);
    expect(autoRuleMatches({ tool: 'everything/echo', id: 'other' }, echo!)).toBe(false);
  });

  it('matches the kind "mcp" rule on mcp steps and not on shell steps (and "shell" the other way round)', () => {
    const [mcp, shell] = planSteps(validatePlan(plan([call(), step('sh')])));
    expect(autoRuleMatches({ kind: 'mcp' }, mcp!)).toBe(true);
    expect(autoRuleMatches({ kind: 'mcp' }, shell!)).toBe(false);
    expect(autoRuleMatches({ kind: 'shell' }, mcp!)).toBe(false);
    expect(autoRuleMatches({ kind: 'shell' }, shell!)).toBe(true);
    // Rules on shell commands never match an mcp step, which has no command.
    expect(autoRuleMatches({ runPrefix: 'e' }, mcp!)).toBe(false);

    const policy = { policy: { autoApprove: [{ kind: 'mcp' }] } };
    expect(onlyStep(validatePlan(plan([call({}, { approval: 'auto' })], policy), legacy)).approval.mode).toBe(
      'auto',
    );
    expect(issuesOf(plan([step('sh', { approval: 'auto' })], policy), legacy)).toEqual([
      {
        path: 'steps[0].approval',
        message: '"auto" needs a rule in policy.autoApprove that matches this step',
      },
    ]);
  });

  it('refuses a tool rule that is not server/tool, and an unknown rule kind', () => {
    expect(issuesOf(plan([call()], { policy: { autoApprove: [{ tool: 'echo' }] } }))).toEqual([
      { path: 'policy.autoApprove[0].tool', message: 'expected server/tool' },
    ]);
    expect(issuesOf(plan([call()], { policy: { autoApprove: [{ tool: 'Everything/echo' }] } }))).toEqual([
      { path: 'policy.autoApprove[0].tool', message: 'expected server/tool' },
    ]);
    expect(issuesOf(plan([call()], { policy: { autoApprove: [{ kind: 'gate' }] } }))[0]!.path).toBe(
      'policy.autoApprove[0].kind',
    );
  });
});

describe('validatePlan: every duration bounded (new plans)', () => {
  const gate = (approval: Record<string, unknown>) => plan([{ id: 'g', gate: 'ok?', approval }]);
  const call = (timeout: string) => ({
    id: 'echo',
    mcp: { server: 'everything', tool: 'echo' },
    timeout,
  });
  const running = {
    min: 'at least 1s (the shortest a step may run)',
    max: 'at most 7d (the longest a step may run)',
  };
  const tool = {
    min: 'at least 1s (the shortest a tool call may take)',
    max: 'at most 1h (the longest a tool call may take)',
  };
  const deadline = {
    min: 'at least 1s (the shortest a gate may wait for a decision)',
    max: 'at most 30d (the longest a gate may wait for a decision)',
  };
  const remind = {
    min: 'at least 1m (reminders more often would flood the approvers)',
    max: 'at most 30d (the longest a gate may wait for a decision)',
  };
  // field, plan with the value at that field, its path, lowest and highest accepted, just outside each, messages.
  const cases: [
    string,
    (value: string) => unknown,
    string,
    string,
    string,
    string,
    string,
    typeof running,
  ][] = [
    [
      'a shell step timeout',
      (v) => plan([step('a', { timeout: v })]),
      'steps[0].timeout',
      '1s',
      '7d',
      '999ms',
      '169h',
      running,
    ],
    [
      'an mcp step timeout',
      (v) => plan([call(v)]),
      'steps[0].timeout',
      '1000ms',
      '60m',
      '999ms',
      '3601s',
      tool,
    ],
    [
      'a gate deadline',
      (v) => gate({ timeout: v }),
      'steps[0].approval.timeout',
      '1s',
      '720h',
      '999ms',
      '31d',
      deadline,
    ],
    [
      "the plan's deadline",
      (v) => plan([step('a')], { policy: { approvalTimeout: v } }),
      'policy.approvalTimeout',
      '1s',
      '30d',
      '0s',
      '43201m',
      deadline,
    ],
    [
      'a gate reminder',
      (v) => gate({ remind: v }),
      'steps[0].approval.remind',
      '1m',
      '30d',
      '59s',
      '31d',
      remind,
    ],
    [
      "the plan's reminder",
      (v) => plan([step('a')], { policy: { remind: v } }),
      'policy.remind',
      '60s',
      '30d',
      '59999ms',
      '721h',
      remind,
    ],
    [
      'a sub-plan step timeout',
      (v) => plan([{ id: 'sub', plan: plan([step('a', { timeout: v })]) }]),
      'steps[0].plan.steps[0].timeout',
      '1s',
      '7d',
      '0ms',
      '8d',
      running,
    ],
  ];

  it.each(cases)('accepts %s at both bounds', (_what, build, _path, lowest, highest) => {
    expect(() => validatePlan(build(lowest))).not.toThrow();
    expect(() => validatePlan(build(highest))).not.toThrow();
  });

  it.each(cases)(
    'refuses %s just outside either bound, or 0, or 999999999d',
    (_what, build, path, _l, _h, below, above, messages) => {
      expect(issuesOf(build(below)), below).toEqual([{ path, message: messages.min }]);
      expect(issuesOf(build(above)), above).toEqual([{ path, message: messages.max }]);
      expect(issuesOf(build('0s'))).toEqual([{ path, message: messages.min }]);
      expect(issuesOf(build('999999999d'))).toEqual([{ path, message: messages.max }]);
    },
  );

  it('bounds an escalation below and, with the deadline, above', () => {
    const escalate = (after: string, timeout = '30d') =>
      gate({ timeout, escalate: { after, to: ['phone'] } });
    const path = 'steps[0].approval.escalate.after';
    expect(() => validatePlan(escalate('1m'))).not.toThrow();
    expect(() => validatePlan(escalate('43199m'))).not.toThrow();
    expect(issuesOf(escalate('59s'))).toEqual([
      { path, message: 'at least 1m (the first approvers need time to answer)' },
    ]);
    expect(issuesOf(escalate('999999999d'))).toEqual([
      { path, message: 'at most 30d (the longest a gate may wait for a decision)' },
      {
        path: 'steps[0].approval',
        message:
          'escalation after 999999999d comes at or after the deadline (30d): nobody would be asked in time',
      },
    ]);
    expect(issuesOf(plan([step('a')], { policy: { escalate: { after: '1s', to: ['phone'] } } }))).toEqual([
      { path: 'policy.escalate.after', message: 'at least 1m (the first approvers need time to answer)' },
    ]);
  });

  it('reports every bad duration of a plan at once', () => {
    expect(
      issuesOf(
        plan([step('a', { timeout: '999999999d', approval: { timeout: '999999999d', remind: '1ms' } })], {
          policy: { approvalTimeout: '0ms', remind: '1s' },
        }),
      ),
    ).toEqual([
      { path: 'policy.approvalTimeout', message: deadline.min },
      { path: 'policy.remind', message: remind.min },
      { path: 'steps[0].timeout', message: running.max },
      { path: 'steps[0].approval.timeout', message: deadline.max },
      { path: 'steps[0].approval.remind', message: remind.min },
    ]);
  });

  it('replays and reads recorded plans as they were accepted, and bounds them only when asked', () => {
    // A history recorded before the bounds (test/fixtures/histories/timeout-with-reminders.json has this plan).
    const recorded = plan([
      step('t', { run: 'true', timeout: '999999999d', approval: { timeout: '2s', remind: '1s' } }),
    ]);
    for (const planRules of ['legacy', 'read'] as const)
      expect(planSteps(validatePlan(recorded, { planRules }))[0]?.approval.remind, planRules).toBe('1s');
    expect(issuesOf(recorded)).toHaveLength(2);
    expect(issuesOf(recorded, { planRules: 'legacy', bounded: true })).toEqual([
      { path: 'steps[0].timeout', message: running.max },
      { path: 'steps[0].approval.remind', message: remind.min },
    ]);
    expect(() => validatePlan(recorded, { planRules: 'refuse', bounded: false })).not.toThrow();
  });

  it('never changes the plan it returns, only whether it is accepted', () => {
    const raw = plan([step('a', { timeout: '7d', approval: { remind: '1m' } })], {
      policy: { remind: '2m' },
    });
    expect(validatePlan(raw)).toEqual(validatePlan(raw, { planRules: 'read' }));
  });
});

describe('validatePlan: NUL and control characters (new plans)', () => {
  const NUL = 'must not contain a NUL byte (\\0)';
  const CWD = 'must not contain control characters';
  const ENV = 'must not contain control characters other than tab and newline';

  it.each([
    ['the plan name', plan([step('a')], { name: 'p\u0000' }), ['name']],
    ['the description', plan([step('a')], { description: 'a\u0000b' }), ['description']],
    ['a step name', plan([step('a', { name: 'x\u0000' })]), ['steps[0].name']],
    ['a command', plan([step('a', { run: 'echo a\u0000; rm -rf /' })]), ['steps[0].run']],
    ['a gate message', plan([{ id: 'g', gate: 'ok?\u0000' }]), ['steps[0].gate']],
    ['a cwd', plan([step('a', { cwd: 'src\u0000/../../etc' })]), ['steps[0].cwd']],
    ['an env value', plan([step('a', { env: { A: 'x\u0000y' } })]), ['steps[0].env.A']],
    [
      'an mcp argument deep inside',
      plan([{ id: 'm', mcp: { server: 'fs', tool: 'read', arguments: { paths: ['ok', 'a\u0000'] } } }]),
      ['steps[0].mcp.arguments.paths[1]'],
    ],
    [
      'an approver name',
      plan([{ id: 'g', gate: 'ok?', approval: { approvers: ['me\u0000'] } }]),
      ['steps[0].approval.approvers[0]'],
    ],
    [
      'a sub-plan, twice',
      plan([{ id: 's', plan: plan([step('a', { name: '\u0000', run: '\u0000' })], { name: 's\u0000' }) }]),
      ['steps[0].plan.name', 'steps[0].plan.steps[0].run', 'steps[0].plan.steps[0].name'],
    ],
  ])('refuses a NUL byte in %s, with its path', (_what, raw, paths) => {
    expect(
      issuesOf(raw)
        .filter((i) => i.message === NUL)
        .map((i) => i.path),
    ).toEqual(paths);
  });

  it('refuses a NUL byte in a key, writing the key escaped', () => {
    expect(issuesOf(plan([step('a', { env: { 'A\u0000': 'x' } })]))).toEqual([
      { path: 'steps[0].env["A\\u0000"]', message: `the key ${NUL}` },
      { path: 'steps[0].env["A\\u0000"]', message: 'Invalid key in record' },
    ]);
  });

  it.each(['\u001b[2J', '\n', '\t', '\r', '\u007f', '\u009b8m', '\u0001'])(
    'refuses the control character %j in a cwd',
    (c) => {
      expect(issuesOf(plan([step('a', { cwd: `src${c}x` })]))).toEqual([
        { path: 'steps[0].cwd', message: CWD },
      ]);
    },
  );

  it.each(['\u001b[8m', '\r', '\u007f', '\u009b2J', '\u0007', '\u000b'])(
    'refuses the control character %j in an env value',
    (c) => {
      expect(issuesOf(plan([step('a', { env: { OK: 'fine', BAD: `x${c}y` } })]))).toEqual([
        { path: 'steps[0].env.BAD', message: ENV },
      ]);
    },
  );

  it('keeps tabs and newlines in env values (a certificate, a key) and newlines in commands (a script)', () => {
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\tIjAN\n-----END CERTIFICATE-----\n';
    const [s] = planSteps(validatePlan(plan([step('a', { env: { CERT: pem }, run: 'set -e\nmake\n' })])));
    expect(s).toMatchObject({ env: { CERT: pem }, run: 'set -e\nmake\n' });
  });

  it('accepts escapes in free text (names, gate messages, commands): every display cleans them', () => {
    const raw = plan(
      [step('a', { name: '\u001b[8mhidden', run: 'printf "\u001b[2J"' }), { id: 'g', gate: '\u001b[2Jok?' }],
      {
        name: '\u001b[2Jrelease',
      },
    );
    expect(validatePlan(raw).name).toBe('\u001b[2Jrelease');
  });

  it('writes keys holding control characters escaped in every message', () => {
    const error = errorOf(plan([step('a', { '\u001b[2Jrun_as': 'root', env: { '\u001b]0;x\u0007': 'y' } })]));
    expect(error.issues).toEqual([
      { path: 'steps[0].env["\\u001b]0;x\\u0007"]', message: 'Invalid key in record' },
      { path: 'steps[0]', message: 'unknown field "\\u001b[2Jrun_as"' },
    ]);
    expect(issuesOf(plan([step('a', { env: { '\u001b[8m': 'y' } })]))).toEqual([
      { path: 'steps[0].env["\\u001b[8m"]', message: 'Invalid key in record' },
    ]);
    expect(issuesOf(plan([{ '\u001b[2J': 1 }]))).toEqual([
      {
        path: 'steps[0]',
        message:
          'unknown node: expected one of run, mcp, gate, parallel, sequence, plan; found fields "\\u001b[2J"',
      },
    ]);
    // The message itself has newlines; nothing else below a space, no DEL, no C1.
    expect(
      [...error.message].filter((c) => c !== '\n' && (c < ' ' || (c >= '\u007f' && c <= '\u009f'))),
    ).toEqual([]);
  });

  it('replays and reads recorded plans with such text as they were accepted', () => {
    const recorded = plan([step('a', { cwd: 'x\u001b', env: { A: 'a\rb' }, run: 'echo \u0000' })]);
    for (const planRules of ['legacy', 'read'] as const)
      expect(planSteps(validatePlan(recorded, { planRules }))[0], planRules).toMatchObject({
        cwd: 'x\u001b',
      });
    expect(issuesOf(recorded)).toEqual([
      { path: 'steps[0].run', message: NUL },
      { path: 'steps[0].cwd', message: CWD },
      { path: 'steps[0].env.A', message: ENV },
    ]);
  });
});
