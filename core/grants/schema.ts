/** The schema of grant records, checked where a record enters the device registry (and by the CLI before signing). */
import { z } from 'zod';
import { utf8ToBytes } from '../bytes.js';
import { canonicalJson } from '../canonical.js';
import { PLAN_LIMITS } from '../plan/limits.js';
import { GRANT_LIMITS } from './grant.js';
import { hasHiddenCharacters, plainWords, prefixProblem } from './shell-words.js';

const hex16 = z.string().regex(/^[0-9a-f]{16}$/);
const keyId = z.string().regex(/^[0-9a-f]{32}$/);
const isoTime = z
  .string()
  .max(40)
  .refine((s) => !Number.isNaN(Date.parse(s)), 'expected an ISO 8601 time');
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'expected an environment variable name');
const relativePath = z
  .string()
  .max(1024)
  .refine(
    (p) => !p.startsWith('/') && !p.split('/').includes('..') && !hasHiddenCharacters(p),
    'must be a relative path that stays inside the workspace',
  );

const jsonValue = z.json().superRefine((value, ctx) => {
  let bytes = Infinity;
  try {
    bytes = utf8ToBytes(canonicalJson(value)).length;
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: `not plain JSON: ${(error as Error).message}` });
    return;
  }
  if (bytes > GRANT_LIMITS.maxValueBytes)
    ctx.addIssue({
      code: 'custom',
      message: `a value is at most ${GRANT_LIMITS.maxValueBytes} bytes as JSON`,
    });
});

const argumentRule = z.union([
  z.object({ equals: jsonValue }).strict(),
  z.object({ oneOf: z.array(jsonValue).min(1).max(64) }).strict(),
  z
    .object({
      glob: z
        .string()
        .min(1)
        .max(GRANT_LIMITS.maxGlobChars)
        .refine((g) => !hasHiddenCharacters(g), 'a glob has no control or invisible characters'),
    })
    .strict(),
  z.object({ any: z.literal(true) }).strict(),
]);

const shellCoverage = z
  .object({
    kind: z.literal('shell'),
    command: z.string().min(1).max(PLAN_LIMITS.maxCommandBytes),
    match: z.enum(['exact', 'prefix']),
    options: z
      .array(
        z
          .string()
          .max(200)
          .refine(
            (o) => {
              const parsed = plainWords(o);
              return o.startsWith('-') && parsed.ok && parsed.words.length === 1 && parsed.words[0] === o;
            },
            { message: 'an option is one plain word starting with -' },
          ),
      )
      .max(32)
      .optional(),
    cwd: relativePath.optional(),
    env: z.record(envName, z.string().max(4096).nullable()).optional(),
  })
  .strict()
  .superRefine((coverage, ctx) => {
    if (coverage.match !== 'prefix') {
      if (coverage.options?.length)
        ctx.addIssue({
          code: 'custom',
          path: ['options'],
          message: 'options are listed for a prefix grant only',
        });
      return;
    }
    const parsed = plainWords(coverage.command);
    if (!parsed.ok) {
      ctx.addIssue({
        code: 'custom',
        path: ['command'],
        message: `a prefix is plain words only, and this one is not: ${parsed.reason}`,
      });
      return;
    }
    const problem = prefixProblem(parsed.words, coverage.options);
    if (problem) ctx.addIssue({ code: 'custom', path: ['command'], message: problem });
  });

const mcpCoverage = z
  .object({
    kind: z.literal('mcp'),
    server: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'expected a catalog server id'),
    tool: z.string().min(1).max(128),
    arguments: z
      .record(z.string().min(1).max(128), argumentRule)
      .refine((a) => Object.keys(a).length <= GRANT_LIMITS.maxArgumentRules, 'too many argument rules'),
    allowWrites: z.boolean().optional(),
  })
  .strict();

const scope = z.union([
  z.object({ agent: hex16 }).strict(),
  z.object({ agents: z.literal('all') }).strict(),
  z.object({ device: keyId }).strict(),
]);

export const grantRecordSchema = z
  .object({
    type: z.literal('grant'),
    grantId: hex16,
    name: z.string().min(1).max(100),
    scope,
    plans: z.array(z.string().min(1).max(200)).min(1).max(GRANT_LIMITS.maxPlanNames).optional(),
    covers: z.discriminatedUnion('kind', [shellCoverage, mcpCoverage]),
    egress: z.boolean().optional(),
    maxUses: z.int().min(1).max(GRANT_LIMITS.maxUses).optional(),
    maxRisk: z.enum(['low', 'medium', 'high']).optional(),
    expiresAt: isoTime,
    at: isoTime,
  })
  .strict()
  .superRefine((grant, ctx) => {
    const lifetime = Date.parse(grant.expiresAt) - Date.parse(grant.at);
    if (!(lifetime > 0))
      ctx.addIssue({ code: 'custom', path: ['expiresAt'], message: 'a grant expires after it is issued' });
    else if (lifetime > GRANT_LIMITS.maxLifetimeMs)
      ctx.addIssue({ code: 'custom', path: ['expiresAt'], message: 'a grant lives at most 366 days' });
  });

export const grantRevocationSchema = z
  .object({ type: z.literal('revoke-grant'), grantId: hex16, reason: z.string().max(500), at: isoTime })
  .strict();
