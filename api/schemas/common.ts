/** Schemas shared by several routes. The web app imports their static types. */
import { Type, type Static } from 'typebox';
import type { GrantRecord } from '../../core/grants/grant.js';

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String(),
      message: Type.String(),
      issues: Type.Optional(Type.Array(Type.Object({ path: Type.String(), message: Type.String() }))),
    }),
  },
  { $id: 'ErrorBody' },
);
export type ErrorBody = Static<typeof ErrorBody>;

/** The error replies every protected route may give, besides its own. */
export const AUTH_ERRORS = { 401: ErrorBody, 403: ErrorBody, 429: ErrorBody, 500: ErrorBody, 503: ErrorBody };

export const Envelope = Type.Object(
  {
    payloadType: Type.String({ maxLength: 200 }),
    payload: Type.String({ maxLength: 64 * 1024 }),
    signatures: Type.Array(
      Type.Object(
        { keyid: Type.String({ maxLength: 64 }), sig: Type.String({ maxLength: 200 }) },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: 1 },
    ),
  },
  { additionalProperties: false },
);

export const KeyId = Type.String({ pattern: '^[0-9a-f]{32}$' });

export const DeviceInfo = Type.Object({
  keyId: Type.String(),
  name: Type.String(),
  role: Type.String(),
  introducedBy: Type.Optional(Type.String()),
  revoked: Type.Optional(Type.Object({ by: Type.String(), at: Type.String(), reason: Type.String() })),
});
export type DeviceInfo = Static<typeof DeviceInfo>;

/** An agent token as devices see it: never its secret, nor the secret's hash. */
export const AgentInfo = Type.Object({
  agentId: Type.String(),
  name: Type.String(),
  issuedBy: Type.String(),
  issuedAt: Type.String(),
  revoked: Type.Optional(Type.Object({ by: Type.String(), at: Type.String(), reason: Type.String() })),
});
export type AgentInfo = Static<typeof AgentInfo>;

/** A standing approval: the record a person's device signed (core/grants/grant.ts), and its fate. */
export const GrantInfo = Type.Object({
  grantId: Type.String(),
  record: Type.Unsafe<GrantRecord>({ type: 'object', additionalProperties: true }),
  issuedBy: Type.String(),
  revoked: Type.Optional(Type.Object({ by: Type.String(), at: Type.String(), reason: Type.String() })),
  /** Uses spent, for grants with a limit. */
  uses: Type.Integer(),
});
export type GrantInfo = Static<typeof GrantInfo>;

export const DeviceList = Type.Object({
  rootKeyId: Type.Union([Type.String(), Type.Null()]),
  devices: Type.Array(DeviceInfo),
  agents: Type.Array(AgentInfo),
  grants: Type.Array(GrantInfo),
});
export type DeviceList = Static<typeof DeviceList>;

/**
 * A body that is one of the domain's own types (core/plan/state.ts, services/history/types.ts):
 * checked to be an object and sent as it is, typed for the web app.
 */
export const DomainObject = <T>(description: string) =>
  Type.Unsafe<T>({ type: 'object', additionalProperties: true, description });

/** A plan reference in a path: `abc123`, `plan-abc123`, or a sub-plan's `plan-abc123.docs`. */
export const PlanParams = Type.Object({
  plan: Type.String({ pattern: '^[A-Za-z0-9._-]{1,200}$' }),
});
