/**
 * The one error handler: stable codes in, safe messages out. Validation, size and rate errors say
 * what was wrong; Temporal refusals and plan errors map to 404/409/422 here; anything unexpected
 * is logged in full and answered with a 500 that carries no internals.
 */
import type { FastifyError } from 'fastify';
import fp from 'fastify-plugin';
import { PlanValidationError } from '../../core/plan/validate.js';
import { UserFacingError } from '../../services/errors.js';
import { ApiError, statusForCode } from '../errors.js';

export interface ErrorBody {
  error: { code: string; message: string; issues?: { path: string; message: string }[] };
}

type ValidationIssue = NonNullable<FastifyError['validation']>[number];

/**
 * The issue that says most about what was wrong: an unknown field first, else the deepest path.
 * A body that may take one of several shapes fails every branch; the first branch's complaint
 * ("must have property plan") would mislead someone who sent the other shape.
 */
function mostSpecific(issues: ValidationIssue[]): ValidationIssue | undefined {
  const useful = issues.filter((i) => i.keyword !== 'anyOf' && i.keyword !== 'oneOf');
  return (
    useful.find((i) => (i.params as { additionalProperty?: string }).additionalProperty) ??
    [...useful].sort((a, b) => b.instancePath.length - a.instancePath.length)[0] ??
    issues[0]
  );
}

function fastifyCode(error: FastifyError): { status: number; code: string; message: string } | undefined {
  if (error.validation) {
    const first = mostSpecific(error.validation);
    const where = `${error.validationContext ?? 'body'}${first?.instancePath ?? ''}`;
    const extra = (first?.params as { additionalProperty?: string } | undefined)?.additionalProperty;
    return {
      status: 400,
      code: 'invalid_request',
      message: `${where} ${first?.message ?? 'is invalid'}${extra ? `: "${extra}"` : ''}`,
    };
  }
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, code: 'body_too_large', message: 'request body is larger than 64 KiB' };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return {
        status: 415,
        code: 'unsupported_media_type',
        message: 'send JSON (content-type: application/json)',
      };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { status: 400, code: 'invalid_json', message: 'request body is not valid JSON' };
  }
  if (error.statusCode === 429) return { status: 429, code: 'rate_limited', message: error.message };
  if (error instanceof SyntaxError && error.statusCode === 400)
    return { status: 400, code: 'invalid_json', message: 'request body is not valid JSON' };
  return undefined;
}

export default fp(
  async (app) => {
    app.setErrorHandler((error: FastifyError, request, reply) => {
      let body: ErrorBody;
      let status: number;
      if (error instanceof ApiError) {
        status = error.statusCode;
        body = { error: { code: error.code, message: error.message } };
      } else if (error instanceof PlanValidationError) {
        status = 422;
        body = { error: { code: 'invalid_plan', message: error.message, issues: error.issues.slice(0, 50) } };
      } else if (error instanceof UserFacingError) {
        status = statusForCode(error.code);
        body = { error: { code: error.code, message: error.message } };
      } else {
        const known = fastifyCode(error);
        if (known) {
          status = known.status;
          body = { error: { code: known.code, message: known.message } };
        } else {
          status = 500;
          request.log.error({ err: error }, 'unexpected error');
          body = {
            error: {
              code: 'internal',
              message: `the server could not complete this request; the API log has the details under request ${request.id}`,
            },
          };
        }
      }
      return reply.status(status).send(body);
    });
    app.setNotFoundHandler((request, reply) =>
      reply.status(404).send({
        error: { code: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` },
      }),
    );
  },
  { name: 'errors' },
);
