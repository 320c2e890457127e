/** Login by signed challenge, and the session it opens. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { verifyLogin } from '../auth/login.js';
import { SESSION_COOKIE } from '../plugins/auth.js';
import { AUTH_ERRORS, DeviceInfo, Envelope, ErrorBody, KeyId } from '../schemas/common.js';
import { deviceInfo } from './devices.js';

export const SessionBody = Type.Object({
  device: DeviceInfo,
  csrfToken: Type.String(),
  expiresAt: Type.String(),
  /** The root of the device chain the server judges by: a device pins the one it paired under. */
  rootKeyId: Type.String(),
});

const LOGIN_LIMIT = { max: 20, timeWindow: '1 minute' };

/** Routes that open a session: no cookie needed. */
export const loginRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/api/session/challenge',
    {
      config: { rateLimit: LOGIN_LIMIT },
      schema: {
        body: Type.Object({ keyId: KeyId }, { additionalProperties: false }),
        response: {
          200: Type.Object({ challenge: Type.String(), expiresAt: Type.String() }),
          400: ErrorBody,
          429: ErrorBody,
        },
      },
    },
    async (request) => {
      const { challenge, expiresAt } = app.challenges.issue(request.body.keyId);
      return { challenge, expiresAt: new Date(expiresAt).toISOString() };
    },
  );

  app.post(
    '/api/session',
    {
      config: { rateLimit: LOGIN_LIMIT },
      schema: {
        body: Type.Object({ envelope: Envelope }, { additionalProperties: false }),
        response: {
          200: SessionBody,
          400: ErrorBody,
          401: ErrorBody,
          429: ErrorBody,
          500: ErrorBody,
          503: ErrorBody,
        },
      },
    },
    async (request, reply) => {
      const { registry, view } = await app.controlPlane.registry();
      const device = verifyLogin(request.body.envelope, {
        challenges: app.challenges,
        registry,
        allowedOrigins: app.controlPlane.config.allowedOrigins,
      });
      const session = app.openSession(reply, device);
      return {
        device: deviceInfo(device),
        csrfToken: session.csrfToken,
        expiresAt: new Date(session.expiresAt).toISOString(),
        rootKeyId: view.rootKeyId ?? '',
      };
    },
  );
};

/** The session itself: needs the cookie. */
export const sessionRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/api/session',
    { schema: { response: { 200: SessionBody, ...AUTH_ERRORS } } },
    async (request) => ({
      device: deviceInfo(request.device!),
      csrfToken: request.session!.csrfToken,
      expiresAt: new Date(request.session!.expiresAt).toISOString(),
      rootKeyId: (await app.controlPlane.registry()).view.rootKeyId ?? '',
    }),
  );

  app.delete(
    '/api/session',
    { schema: { response: { 204: Type.Null(), ...AUTH_ERRORS } } },
    async (request, reply) => {
      app.sessions.close(request.session!.id);
      void reply.clearCookie(SESSION_COOKIE, { path: '/' });
      return reply.status(204).send(null);
    },
  );
};
