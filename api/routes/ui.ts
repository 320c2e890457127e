/**
 * The web app, built by `npm run build:ui` into ui/dist. Hashed assets are cached for a year;
 * the page, the manifest and the service worker are revalidated on every load, so an update
 * reaches phones on their next visit.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';

const uiRoutes: FastifyPluginAsync<{ dir: string }> = async (app, { dir }) => {
  if (!existsSync(join(dir, 'index.html'))) {
    app.log.warn(`the web app is not built (${dir}/index.html is missing): run npm run build:ui`);
    app.get('/', async (_request, reply) =>
      reply
        .status(503)
        .type('text/plain; charset=utf-8')
        .send(
          'The Countersign web app is not built on this server. Run: npm run build:ui (./scripts/setup does it).',
        ),
    );
    return;
  }
  await app.register(fastifyStatic, {
    root: dir,
    prefix: '/',
    wildcard: false,
    index: ['index.html'],
    setHeaders(res, path) {
      const immutable = path.includes(`${join(dir, 'assets')}/`);
      res.header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
    },
  });
};

export default uiRoutes;
