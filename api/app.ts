/**
 * The Countersign API as a Fastify plugin tree: external plugins first (helmet, cookies, rate
 * limits), then ours (control plane, error handler, sessions), then one routes file per
 * resource. Tests build it and call `inject`; server.ts is the only place that listens.
 */
import cookie from '@fastify/cookie';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import authPlugin, { SESSION_COOKIE } from './plugins/auth.js';
import controlPlanePlugin, { type ControlPlane } from './plugins/control-plane.js';
import errorsPlugin from './plugins/errors.js';
import agentMcpRoutes from './routes/agent-mcp.js';
import approvalsRoutes from './routes/approvals.js';
import devicesRoutes from './routes/devices.js';
import notifyRoutes from './routes/notify.js';
import eventsRoutes from './routes/events.js';
import pairingRoutes from './routes/pairing.js';
import plansRoutes from './routes/plans.js';
import { loginRoutes, sessionRoutes } from './routes/session.js';
import uiRoutes from './routes/ui.js';

export const BODY_LIMIT_BYTES = 64 * 1024;

export interface AppOptions {
  controlPlane: ControlPlane;
  logger?: FastifyServerOptions['logger'];
}

export async function buildApp({ controlPlane, logger = false }: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger,
    bodyLimit: BODY_LIMIT_BYTES,
    // Believe X-Forwarded-For only through the configured number of proxy hops.
    trustProxy: (_address: string, hop: number) => hop < controlPlane.config.trustProxyHops,
    // Wrong types are refused, not coerced; unknown fields are refused, not silently dropped.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();
  // JSON only: text/plain is what a cross-site form can send without a preflight.
  app.removeContentTypeParser('text/plain');

  await app.register(helmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        workerSrc: ["'self'"],
        manifestSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    // Served over plain HTTP on loopback by default; a TLS proxy in front sets HSTS itself.
    strictTransportSecurity: false,
  });
  await app.register(cookie);
  await app.register(controlPlanePlugin, { controlPlane });
  await app.register(errorsPlugin);
  await app.register(authPlugin);
  await app.register(rateLimit, {
    max: 600,
    timeWindow: '1 minute',
    // A signed-in device has its own bucket (many phones may share one address); anyone else is
    // counted by address, so inventing cookies buys nothing.
    keyGenerator: (request) => {
      const session = app.sessions.find(request.cookies[SESSION_COOKIE]);
      return typeof session === 'object' ? `device:${session.keyId}` : `ip:${request.ip}`;
    },
  });

  app.get('/api/health', async () => ({ ok: true }));
  await app.register(pairingRoutes);
  await app.register(loginRoutes);
  await app.register(agentMcpRoutes);
  await app.register(async (authenticated) => {
    authenticated.addHook('onRequest', authenticated.authenticate);
    await authenticated.register(sessionRoutes);
    await authenticated.register(devicesRoutes);
    await authenticated.register(plansRoutes);
    await authenticated.register(approvalsRoutes);
    await authenticated.register(eventsRoutes);
    await authenticated.register(notifyRoutes);
  });
  await app.register(uiRoutes, { dir: controlPlane.config.uiDir });
  return app;
}
