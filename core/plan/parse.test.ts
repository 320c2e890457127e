import { afterEach, describe, expect, it } from 'vitest';
import { PLAN_LIMITS } from './limits.js';
import { parsePlanText } from './parse.js';
import { PlanValidationError, validatePlan, type PlanIssue } from './validate.js';
import { planSteps } from './walk.js';

function issuesOf(text: string): PlanIssue[] {
  try {
    parsePlanText(text);
  } catch (error) {
    expect(error).toBeInstanceOf(PlanValidationError);
    expect((error as Error).message.startsWith('plan is invalid (nothing was started)')).toBe(true);
    return (error as PlanValidationError).issues;
  }
  throw new Error('expected the plan text to be refused, but it was accepted');
}

const YAML_PLAN = `
name: release
policy:
  remind: 1h
steps:
  - id: lint
    run: npm run lint
    approval: auto
  - parallel:
      - id: unit
        run: npm test
        env: { CI: "true" }
      - id: e2e
        run: npm run e2e
        timeout: 1h
    failFast: false
    maxConcurrency: 1
  - id: ship
    gate: Ship it?
    approval: { quorum: 2 }
`;

const JSON_PLAN = JSON.stringify({
  name: 'release',
  policy: { remind: '1h' },
  steps: [
    { id: 'lint', run: 'npm run lint', approval: 'auto' },
    {
      parallel: [
        { id: 'unit', run: 'npm test', env: { CI: 'true' } },
        { id: 'e2e', run: 'npm run e2e', timeout: '1h' },
      ],
      failFast: false,
      maxConcurrency: 1,
    },
    { id: 'ship', gate: 'Ship it?', approval: { quorum: 2 } },
  ],
});

afterEach(() => {
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect(Object.prototype).not.toHaveProperty('run');
});

describe('parsePlanText', () => {
  it('reads YAML and JSON to the same validated plan', () => {
    const fromYaml = parsePlanText(YAML_PLAN);
    expect(parsePlanText(JSON_PLAN)).toEqual(fromYaml);
    expect(fromYaml).toEqual(validatePlan(JSON.parse(JSON_PLAN)));
    expect(planSteps(fromYaml).map((s) => [s.id, s.approval.mode, s.approval.quorum])).toEqual([
      ['lint', 'auto', 1],
      ['unit', 'required', 1],
      ['e2e', 'required', 1],
      ['ship', 'required', 2],
    ]);
  });

  it('keeps YAML scalars that look like other types as the plan says', () => {
    // An unquoted "true" is a boolean in YAML, and env values must be strings.
    expect(issuesOf('name: p\nsteps:\n  - id: a\n    run: x\n    env: { CI: true }\n')).toEqual([
      { path: 'steps[0].env.CI', message: 'expected string' },
    ]);
    expect(issuesOf('name: p\nsteps:\n  - id: a\n    run: 42\n')).toEqual([
      { path: 'steps[0].run', message: 'expected string' },
    ]);
  });

  it('reports validation problems with their path', () => {
    expect(
      issuesOf('name: p\nsteps:\n  - id: a\n    run: x\n  - parallel:\n      - id: b\n        run: [1]\n'),
    ).toEqual([{ path: 'steps[1].parallel[0].run', message: 'expected string' }]);
  });

  it('refuses text that is not YAML, on one line', () => {
    const issues = issuesOf('name: p\nsteps: [\n');
    expect(issues).toHaveLength(1);
    expect(issues[0]?.path).toBe('');
    expect(issues[0]?.message).toMatch(/^not valid YAML or JSON: /);
    expect(issues[0]?.message).not.toContain('\n');
    expect(issuesOf('{"name": "p", "steps": [}')[0]?.message).toMatch(/^not valid YAML or JSON: /);
  });

  it('refuses duplicate keys instead of keeping the last one', () => {
    const issues = issuesOf('name: p\nsteps:\n  - id: a\n    run: ls\n    run: rm -rf /\n');
    expect(issues).toHaveLength(1);
    expect(issues[0]?.message).toMatch(/^not valid YAML or JSON: Map keys must be unique/);
  });

  it('refuses several YAML documents in one text', () => {
    expect(issuesOf('name: p\nsteps: [{id: a, run: x}]\n---\nname: q\n')[0]?.message).toMatch(
      /^not valid YAML or JSON: .*multiple documents/,
    );
  });

  it('refuses a top level that is not a mapping', () => {
    for (const text of ['', '# only a comment', '- a\n- b\n', '42', 'just words', '"quoted"', 'null', '[]']) {
      expect(issuesOf(text), JSON.stringify(text)).toEqual([{ path: '', message: 'expected object' }]);
    }
  });

  it('refuses a YAML alias bomb', () => {
    const text = [
      'name: p',
      'steps: [{id: a, run: x}]',
      'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
      'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]',
      'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]',
      'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]',
      'e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]',
      'f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]',
      'g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]',
      '',
    ].join('\n');
    const issues = issuesOf(text);
    expect(issues).toEqual([
      {
        path: '',
        message: 'not valid YAML or JSON: Excessive alias count indicates a resource exhaustion attack',
      },
    ]);
  });

  it('refuses an alias bomb hidden inside a step', () => {
    const lines = ['name: p', 'x: &x [a, a, a, a, a, a, a, a, a, a]'];
    let previous = 'x';
    for (let i = 0; i < 6; i++) {
      lines.push(`l${i}: &l${i} [${Array(10).fill(`*${previous}`).join(', ')}]`);
      previous = `l${i}`;
    }
    lines.push(`steps: [{id: a, run: x, env: {A: *${previous}}}]`);
    expect(issuesOf(lines.join('\n'))[0]?.message).toMatch(/^not valid YAML or JSON: Excessive alias count/);
  });

  it('still allows a few ordinary aliases', () => {
    const spec = parsePlanText(
      'name: p\nsteps:\n  - id: a\n    run: x\n    env: &env { A: "1" }\n  - id: b\n    run: y\n    env: *env\n',
    );
    expect(planSteps(spec).map((s) => (s.kind === 'shell' ? s.env : undefined))).toEqual([
      { A: '1' },
      { A: '1' },
    ]);
  });

  it('refuses a 10 MB plan by its size, before parsing it', () => {
    // Unbalanced on purpose: were it parsed, the error would be a YAML error, not the size.
    const text = `{"name":"p","steps":[${'{"id":"a","run":"x"},'.repeat(500_000)}`;
    expect(text.length).toBeGreaterThan(10_000_000);
    const started = performance.now();
    const issues = issuesOf(text);
    const elapsedMs = performance.now() - started;
    expect(issues).toEqual([
      { path: '', message: `plan is ${text.length} bytes; the limit is ${PLAN_LIMITS.maxTextBytes} bytes` },
    ]);
    expect(issues[0]?.message).toContain('the limit is 524288 bytes');
    // Printed, not asserted: timing assertions are flaky. Refusing by size should take milliseconds.
    console.info(`10 MB plan refused in ${elapsedMs.toFixed(1)} ms`);
  });

  it('counts UTF-8 bytes, not characters', () => {
    const padding = 'é'.repeat(PLAN_LIMITS.maxTextBytes / 2); // 2 bytes each: the text is over the limit, its length is not
    const text = `name: p\ndescription: ${padding}\nsteps: [{id: a, run: x}]\n`;
    expect(text.length).toBeLessThan(PLAN_LIMITS.maxTextBytes);
    expect(issuesOf(text)[0]?.message).toBe(
      `plan is ${Buffer.byteLength(text)} bytes; the limit is ${PLAN_LIMITS.maxTextBytes} bytes`,
    );
  });

  it('accepts a plan just under the size limit', () => {
    const head = 'name: p\nsteps: [{id: a, run: x}]\n';
    const text = head + '#'.repeat(PLAN_LIMITS.maxTextBytes - head.length);
    expect(Buffer.byteLength(text)).toBe(PLAN_LIMITS.maxTextBytes);
    expect(parsePlanText(text).name).toBe('p');
    expect(issuesOf(text + '#')[0]?.message).toMatch(/^plan is 524289 bytes/);
  });

  it('refuses "__proto__", "constructor" and "prototype" keys in YAML without polluting anything', () => {
    const guard = 'this key name is not allowed (prototype pollution guard)';
    expect(issuesOf('name: p\n__proto__:\n  polluted: yes\nsteps: [{id: a, run: x}]\n')).toEqual([
      { path: '__proto__', message: guard },
    ]);
    expect(
      issuesOf('name: p\nsteps:\n  - id: a\n    run: x\n    __proto__: { polluted: 1, run: evil }\n'),
    ).toEqual([{ path: 'steps[0].__proto__', message: guard }]);
    expect(issuesOf('name: p\nsteps:\n  - id: a\n    run: x\n    env:\n      constructor: x\n')).toEqual([
      { path: 'steps[0].env.constructor', message: guard },
    ]);
    expect(issuesOf('name: p\npolicy: { prototype: {} }\nsteps: [{id: a, run: x}]\n')).toEqual([
      { path: 'policy.prototype', message: guard },
    ]);
    expect(issuesOf('{"name":"p","steps":[{"id":"a","run":"x","__proto__":{"polluted":1}}]}')).toEqual([
      { path: 'steps[0].__proto__', message: guard },
    ]);
  });

  it('refuses "__proto__" smuggled through a YAML 1.1 merge key', () => {
    const text =
      '%YAML 1.1\n---\nname: p\nsteps:\n  - <<: { __proto__: { run: evil, polluted: 1 } }\n    id: a\n    gate: hi\n';
    expect(issuesOf(text)).toEqual([
      { path: 'steps[0].__proto__', message: 'this key name is not allowed (prototype pollution guard)' },
    ]);
  });

  it('refuses 10,000 nested parallels with a clear message, twice in a row, without crashing', () => {
    // Regression: the YAML composer recursed until the stack ran out; the second time, Node aborted.
    const levels = 10_000;
    const text = `{"name":"p","steps":[${'{"parallel":['.repeat(levels)}{"id":"a","run":"x"}${']}'.repeat(levels)}]}`;
    for (let attempt = 0; attempt < 3; attempt++) {
      expect(issuesOf(text)).toEqual([
        { path: '', message: `plan is nested deeper than ${PLAN_LIMITS.maxDepth} levels` },
      ]);
    }
  });

  it('refuses deep nesting in every YAML style', () => {
    const message = `plan is nested deeper than ${PLAN_LIMITS.maxDepth} levels`;
    const blockSequences = `name: p\nsteps:\n  - ${'- '.repeat(5_000)}x\n`;
    const flowMaps = `name: p\nsteps: [{id: a, run: x}]\nx: ${'{a: '.repeat(5_000)}1${'}'.repeat(5_000)}\n`;
    const flowSeqs = `name: p\nsteps: [{id: a, run: x}]\nx: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`;
    let indented = 'name: p\nsteps: [{id: a, run: x}]\nx:\n';
    for (let i = 1; i <= 200; i++) indented += `${' '.repeat(i)}k:\n`;
    for (const text of [blockSequences, flowMaps, flowSeqs, indented, blockSequences]) {
      expect(issuesOf(text)).toEqual([{ path: '', message }]);
    }
  });

  it('refuses 30 nested sequences with the validator’s path', () => {
    let node = 'id: a\nrun: x';
    for (let i = 0; i < 30; i++) node = `sequence:\n  - ${node.replace(/\n/g, '\n    ')}`;
    const issues = issuesOf(`name: p\nsteps:\n  - ${node.replace(/\n/g, '\n    ')}\n`);
    expect(issues).toEqual([
      {
        path: `steps[0]${'.sequence[0]'.repeat(PLAN_LIMITS.maxDepth)}`,
        message: 'plan is nested deeper than 24 levels',
      },
    ]);
  });

  it('accepts plans nested as deep as the validator allows', () => {
    let node = 'id: a\nrun: x';
    for (let i = 0; i < PLAN_LIMITS.maxDepth - 1; i++)
      node = `sequence:\n  - ${node.replace(/\n/g, '\n    ')}`;
    expect(
      planSteps(parsePlanText(`name: p\nsteps:\n  - ${node.replace(/\n/g, '\n    ')}\n`)).map((s) => s.id),
    ).toEqual(['a']);
    // A sub-plan chain nested to the validator's depth limit also parses (it sits 3 raw levels per level).
    let sub = '{"name":"s","steps":[{"id":"a","run":"x"}]}';
    for (let i = 0; i < 11; i++) sub = `{"name":"s","steps":[{"id":"sub","plan":${sub}}]}`;
    expect(parsePlanText(sub).name).toBe('s');
  });
});
