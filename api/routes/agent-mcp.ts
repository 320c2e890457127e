/**
 * The agent's front door over streamable HTTP: `POST /mcp` with `Authorization: Bearer <agent
 * token>`. Stateless: each request gets its own server bound to the token's agent, so nothing of
 * one agent is reachable from another's request. No cookie is read here: a browser session
 * cannot be turned into an agent, nor an agent token into a device.
 */
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { FastifyPluginAsync } from 'fastify';
import { catalogReader } from '../../agent/catalog.js';
import { createAgentServer } from '../../agent/server.js';
import { agentSession } from '../../services/agents.js';
import { UserFacingError } from '../../services/errors.js';
import { ApiError } from '../errors.js';

const agentMcpRoutes: FastifyPluginAsync = async (app) => {
  const { client, config } = app.controlPlane;
  const readCatalog = catalogReader(config.home);

  app.post(
    '/mcp',
    { config: { rateLimit: { max: 300, timeWindow: '1 minute' } } },
    async (request, reply) => {
      const header = request.headers.authorization ?? '';
      const token = /^Bearer (.+)$/.exec(header)?.[1];
      if (!token)
        throw new ApiError(
          401,
          'agent_token_missing',
          'send the agent token as Authorization: Bearer <token>',
        );
      const { view } = await app.controlPlane.registry();
      let session;
      try {
        session = agentSession(view, token);
      } catch (error) {
        if (error instanceof UserFacingError) throw new ApiError(401, error.code, error.message);
        throw error;
      }
      const server = createAgentServer({ client, ...session, readCatalog, anchor: app.controlPlane.anchor });
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
      reply.hijack();
      reply.raw.on('close', () => {
        void transport.close();
        void server.close();
      });
      await server.connect(transport);
      await transport.handleRequest(request.raw, reply.raw, request.body);
    },
  );

  for (const method of ['GET', 'DELETE'] as const)
    app.route({
      method,
      url: '/mcp',
      handler: async (_request, reply) =>
        reply
          .status(405)
          .header('allow', 'POST')
          .send({
            error: { code: 'method_not_allowed', message: 'this MCP endpoint is stateless: POST only' },
          }),
    });
};

export default agentMcpRoutes;
