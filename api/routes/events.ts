/**
 * Server-sent events for the open app: `plans` and `inbox` for the overview, `plan` for the plan
 * the app is looking at, `ping` every 20 s so proxies keep the stream open. A device revoked,
 * or whose session ended, while its stream is open loses the stream at the next ping.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { OverviewFeed } from '../live/overview-feed.js';
import { PlanWatch } from '../live/plan-watch.js';
import { AUTH_ERRORS } from '../schemas/common.js';

const PING_MS = 20_000;

const eventsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { client } = app.controlPlane;
  const overview = new OverviewFeed(client, (error) => app.log.warn({ err: error }, 'overview feed failed'));
  app.addHook('onClose', async () => overview.close());

  app.get(
    '/api/events',
    {
      schema: {
        querystring: Type.Object(
          { plan: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9._-]{1,200}$' })) },
          { additionalProperties: false },
        ),
        response: { ...AUTH_ERRORS },
      },
    },
    async (request, reply) => {
      const device = request.device!;
      const aborter = new AbortController();
      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
        connection: 'keep-alive',
      });
      const send = (event: string, data: unknown) => {
        if (!raw.writableEnded) raw.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      };
      raw.write('retry: 2000\n\n');
      const stop = overview.add({
        keyId: device.keyId,
        plans: (plans) => send('plans', { plans }),
        inbox: (items) => send('inbox', { items }),
      });
      const ping = setInterval(() => {
        void app.controlPlane.registry().then(
          ({ registry }) => {
            const now = registry.get(device.keyId);
            const session = app.sessions.find(request.session!.id);
            if (!now || now.revoked || typeof session !== 'object') aborter.abort();
            else send('ping', { at: new Date().toISOString() });
          },
          () => send('ping', { at: new Date().toISOString() }),
        );
      }, PING_MS);
      const end = () => {
        clearInterval(ping);
        stop();
        if (!aborter.signal.aborted) aborter.abort();
        if (!raw.writableEnded) raw.end();
      };
      aborter.signal.addEventListener('abort', end, { once: true });
      request.raw.once('close', end);
      if (request.query.plan) {
        const watch = new PlanWatch(
          app.controlPlane.plans,
          request.query.plan,
          (detail) => send('plan', detail),
          aborter.signal,
          (error) => {
            request.log.warn({ err: error }, 'plan watch failed');
            send('error', {
              code: 'plan_unavailable',
              message: 'live updates for this plan stopped; reload to retry',
            });
          },
        );
        void watch.run();
      }
    },
  );
};

export default eventsRoutes;
