/**
 * Device sessions. `authenticate` runs before every protected route: the cookie must name a live
 * session of a device that is still active in the registry (checked on every request, so a
 * revocation ends its sessions at once), and writes must carry the session's CSRF token.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Device } from '../../core/devices/registry.js';
import { ApiError } from '../errors.js';
import type { ControlPlane } from './control-plane.js';
import { InvitationStore } from '../auth/invitations.js';
import { ChallengeStore, sameToken, SessionStore, type Session } from '../auth/sessions.js';

export const SESSION_COOKIE = 'cs_session';
export const CSRF_HEADER = 'x-countersign-csrf';

declare module 'fastify' {
  interface FastifyInstance {
    sessions: SessionStore;
    challenges: ChallengeStore;
    invitations: InvitationStore;
    authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
    openSession: (reply: FastifyReply, device: Device) => Session;
  }
  interface FastifyRequest {
    session?: Session;
    device?: Device;
    /** The registry as the authentication read it: routes reuse it instead of reading it again. */
    registry?: Awaited<ReturnType<ControlPlane['registry']>>;
  }
}

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export default fp(
  async (app) => {
    const { config } = app.controlPlane;
    app.decorate('sessions', new SessionStore(config.sessionTtlMs));
    app.decorate('challenges', new ChallengeStore());
    app.decorate('invitations', new InvitationStore());
    app.decorateRequest('session', undefined);
    app.decorateRequest('device', undefined);
    app.decorateRequest('registry', undefined);

    app.decorate('openSession', (reply: FastifyReply, device: Device) => {
      const session = app.sessions.open(device.keyId);
      void reply.setCookie(SESSION_COOKIE, session.id, {
        httpOnly: true,
        sameSite: 'strict',
        secure: config.publicUrl.startsWith('https:'),
        path: '/',
        maxAge: Math.floor(config.sessionTtlMs / 1000),
      });
      return session;
    });

    app.decorate('authenticate', async (request: FastifyRequest) => {
      const found = app.sessions.find(request.cookies[SESSION_COOKIE]);
      if (found === 'not_logged_in')
        throw new ApiError(401, 'not_logged_in', 'sign in with a paired device first');
      if (found === 'session_expired')
        throw new ApiError(401, 'session_expired', 'the session expired: sign the login challenge again');
      const current = await app.controlPlane.registry();
      const device = current.registry.get(found.keyId);
      if (!device || device.revoked) {
        // The session stays, refused on every request, so the device keeps hearing why.
        throw new ApiError(
          401,
          'device_revoked',
          device?.revoked
            ? `this device was revoked at ${device.revoked.at} (${device.revoked.reason}); its session is refused`
            : 'this device is no longer in the registry; its session is refused',
        );
      }
      if (WRITE_METHODS.has(request.method)) {
        const given = request.headers[CSRF_HEADER];
        if (typeof given !== 'string' || !given)
          throw new ApiError(
            403,
            'csrf_token_missing',
            `writes need the session's token in the ${CSRF_HEADER} header`,
          );
        if (!sameToken(given, found.csrfToken))
          throw new ApiError(
            403,
            'csrf_token_wrong',
            `the ${CSRF_HEADER} header does not match this session`,
          );
      }
      request.session = found;
      request.device = device;
      request.registry = current;
    });
  },
  { name: 'auth', dependencies: ['control-plane'] },
);

/** The device of an authenticated request (the `authenticate` hook ran). */
export function deviceOf(request: FastifyRequest): Device {
  if (!request.device) throw new ApiError(401, 'not_logged_in', 'sign in with a paired device first');
  return request.device;
}
