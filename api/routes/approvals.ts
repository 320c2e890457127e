/**
 * Approvals signed on a device, relayed to the plan. The workflow decides: it verifies the
 * envelope against the step's digest and the device registry, and the reply says either that the
 * decision was applied or exactly why not (the refusal code and sentence of core/approval).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { openEnvelope, PAYLOAD_TYPES } from '../../core/approval/dsse.js';
import { utf8Decode } from '../../core/bytes.js';
import { explain, refusalOf } from '../../services/errors.js';
import { toWorkflowId } from '../../services/plans.js';
import { approveUpdate } from '../../workflows/messages.js';
import { ApiError, statusForCode } from '../errors.js';
import { AUTH_ERRORS, Envelope, ErrorBody, PlanParams } from '../schemas/common.js';

const Applied = Type.Object({
  stepPath: Type.String(),
  decision: Type.Union([Type.Literal('approve'), Type.Literal('deny')]),
  device: Type.String(),
  stepStatus: Type.String(),
});

const approvalsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { client } = app.controlPlane;

  app.post(
    '/api/plans/:plan/approvals',
    {
      config: { rateLimit: { max: app.controlPlane.config.approvalsPerMinute, timeWindow: '1 minute' } },
      schema: {
        params: PlanParams,
        body: Type.Object({ envelope: Envelope }, { additionalProperties: false }),
        response: {
          200: Type.Object({ applied: Applied }),
          400: ErrorBody,
          404: ErrorBody,
          409: ErrorBody,
          422: ErrorBody,
          ...AUTH_ERRORS,
        },
      },
    },
    async (request) => {
      const { envelope } = request.body;
      const opened = openEnvelope(envelope, PAYLOAD_TYPES.approval);
      if (typeof opened === 'string') throw new ApiError(422, 'malformed_envelope', opened);
      if (opened.keyId !== request.device!.keyId)
        throw new ApiError(
          403,
          'not_your_signature',
          'this approval is signed by another device: sign it on this device',
        );
      const workflowId = toWorkflowId(request.params.plan);
      let named: unknown;
      try {
        named = (JSON.parse(utf8Decode(opened.payloadBytes)) as { workflowId?: unknown }).workflowId;
      } catch {
        throw new ApiError(422, 'malformed_payload', 'approval payload is not UTF-8 JSON');
      }
      if (named !== workflowId)
        throw new ApiError(422, 'wrong_workflow', `approval is for plan ${String(named)}, not ${workflowId}`);
      const { view } = request.registry ?? (await app.controlPlane.registry());
      const handle = client.workflow.getHandle(workflowId);
      const applied = await handle
        .executeUpdate(approveUpdate, { args: [{ envelope, deviceRecords: view.records }] })
        .catch(async (error: unknown) => {
          // A finished plan answers updates with "not found": say what actually happened.
          const status = await handle.describe().then(
            (d) => d.status.name,
            () => undefined,
          );
          if (status && status !== 'RUNNING')
            throw new ApiError(
              409,
              'plan_finished',
              `plan ${workflowId} has ended (${status.toLowerCase()}); no decision can change it now`,
            );
          // The workflow's own sentence, without the CLI's "approval: refused [code]:" prefix.
          const refusal = refusalOf(error);
          if (refusal) throw new ApiError(statusForCode(refusal.code), refusal.code, refusal.message);
          return explain(error, 'approval');
        });
      return { applied };
    },
  );
};

export default approvalsRoutes;
