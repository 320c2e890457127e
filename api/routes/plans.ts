/** Plans: submit, list, the live tree, cancel, the history timeline and the audit bundle. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { parsePlanDocument } from '../../core/plan/parse.js';
import { exportBundle } from '../../services/audit/bundle.js';
import { planTimeline, type PlanTimeline } from '../../services/history/index.js';
import { cancelPlan, listPlans, submitPlan, toWorkflowId } from '../../services/plans.js';
import { pinnedRootReader } from '../../workers/key-file.js';
import { statePaths } from '../../workers/config.js';
import {
  inboxOf,
  listItem,
  temporalUiLink,
  type InboxItem,
  type PlanDetail,
  type PlanListItem,
} from '../live/plans.js';
import { AUTH_ERRORS, DomainObject, ErrorBody, PlanParams } from '../schemas/common.js';

const PlanListItemSchema = Type.Object({
  workflowId: Type.String(),
  name: Type.String(),
  status: Type.String(),
  awaiting: Type.Array(Type.String()),
  startTime: Type.String(),
  closeTime: Type.Union([Type.String(), Type.Null()]),
});
const NOT_FOUND = { 404: ErrorBody, ...AUTH_ERRORS };

const plansRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { client, config } = app.controlPlane;
  const pinnedRoot = pinnedRootReader(statePaths(config.home).pinnedRoot);

  app.get(
    '/api/plans',
    {
      schema: {
        querystring: Type.Object(
          {
            filter: Type.Optional(
              Type.Union([Type.Literal('all'), Type.Literal('awaiting'), Type.Literal('mine')]),
            ),
            limit: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,2}$' })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ plans: Type.Array(PlanListItemSchema) }),
          400: ErrorBody,
          ...AUTH_ERRORS,
        },
      },
    },
    async (request): Promise<{ plans: PlanListItem[] }> => {
      const { filter = 'all', limit } = request.query;
      const plans = await listPlans(client, { awaitingOnly: filter !== 'all', limit: Number(limit ?? 100) });
      if (filter !== 'mine') return { plans: plans.map(listItem) };
      const mine = new Set((await inboxOf(client, request.device!.keyId)).map((i) => i.workflowId));
      return { plans: plans.filter((p) => mine.has(p.workflowId)).map(listItem) };
    },
  );

  app.get(
    '/api/inbox',
    {
      schema: {
        response: {
          200: Type.Object({ items: Type.Array(DomainObject<InboxItem>('an awaiting gate')) }),
          ...AUTH_ERRORS,
        },
      },
    },
    async (request) => ({ items: await inboxOf(client, request.device!.keyId) }),
  );

  app.post(
    '/api/plans',
    {
      config: { rateLimit: { max: 30, timeWindow: '1 minute' } },
      schema: {
        body: Type.Union([
          Type.Object(
            { plan: Type.Object({}, { additionalProperties: true }) },
            { additionalProperties: false },
          ),
          Type.Object({ yaml: Type.String({ maxLength: 60 * 1024 }) }, { additionalProperties: false }),
        ]),
        response: {
          201: Type.Object({ planId: Type.String(), workflowId: Type.String() }),
          400: ErrorBody,
          422: ErrorBody,
          ...AUTH_ERRORS,
        },
      },
    },
    async (request, reply) => {
      const raw = 'yaml' in request.body ? parsePlanDocument(request.body.yaml).raw : request.body.plan;
      const device = request.device!;
      const submitted = await submitPlan(client, raw, {
        proposer: `device "${device.name}" (${device.keyId.slice(0, 12)})`,
        anchor: app.controlPlane.anchor,
      });
      return reply.status(201).send({ planId: submitted.planId, workflowId: submitted.workflowId });
    },
  );

  app.get(
    '/api/plans/:plan',
    {
      schema: {
        params: PlanParams,
        response: { 200: DomainObject<PlanDetail>('the live plan tree'), ...NOT_FOUND },
      },
    },
    async (request) => app.controlPlane.plans.detail(request.params.plan),
  );

  app.post(
    '/api/plans/:plan/cancel',
    {
      schema: {
        params: PlanParams,
        response: { 202: Type.Object({ cancelling: Type.Boolean() }), ...NOT_FOUND },
      },
    },
    async (request, reply) => {
      await cancelPlan(client, request.params.plan);
      return reply.status(202).send({ cancelling: true });
    },
  );

  app.get(
    '/api/plans/:plan/history',
    {
      schema: {
        params: PlanParams,
        response: {
          200: Type.Object({
            timeline: DomainObject<PlanTimeline>('the plan timeline'),
            temporalUiUrl: Type.Union([Type.String(), Type.Null()]),
          }),
          ...NOT_FOUND,
        },
      },
    },
    async (request) => {
      const root = pinnedRoot() ?? (await app.controlPlane.registry()).view.rootKeyId;
      const timeline = await planTimeline(client, request.params.plan, root ? { pinnedRootKeyId: root } : {});
      const workflowId = toWorkflowId(request.params.plan);
      return {
        timeline,
        temporalUiUrl: temporalUiLink(config.temporalUiUrl, config.namespace, workflowId),
      };
    },
  );

  app.get(
    '/api/plans/:plan/audit',
    {
      schema: {
        params: PlanParams,
        response: { 200: DomainObject<object>('the audit bundle'), ...NOT_FOUND },
      },
    },
    async (request, reply) => {
      const root = pinnedRoot() ?? (await app.controlPlane.registry()).view.rootKeyId;
      const bundle = await exportBundle(client, request.params.plan, { pinnedRootKeyId: root });
      const name = `${toWorkflowId(request.params.plan)}.audit.json`.replace(/[^A-Za-z0-9._-]/g, '_');
      void reply.header('content-disposition', `attachment; filename="${name}"`);
      return bundle;
    },
  );
};

export default plansRoutes;
