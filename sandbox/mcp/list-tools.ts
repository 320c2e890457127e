/** Asks a freshly started server for its tools (for `countersign mcp pin`). */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { listAllTools, RESULT_LIMITS, type McpServerHandle } from './call.js';
import { StreamTransport } from './stream-transport.js';

export async function listServerTools(server: McpServerHandle, timeoutMs = 30_000): Promise<Tool[]> {
  const transport = new StreamTransport(server.stdout, server.stdin, {
    maxMessageBytes: RESULT_LIMITS.maxMessageBytes,
  });
  const client = new Client({ name: 'countersign-pin', version: '1' }, { capabilities: {} });
  try {
    await client.connect(transport, { timeout: timeoutMs });
    return await listAllTools(client, () => ({ timeout: timeoutMs }));
  } catch (error) {
    const stderr = server.stderrTail().trim();
    throw new Error(
      `${transport.failure ?? (error as Error).message}${stderr ? `; the server's stderr: ${stderr.slice(-300)}` : ''}`,
    );
  } finally {
    await client.close().catch(() => undefined);
  }
}
