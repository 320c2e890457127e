/** The MCP catalog an agent may call: this installation's pinned copy, else the shipped one. */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseCatalog, type McpCatalog } from '../core/mcp/catalog.js';
import { PROJECT_ROOT, statePaths } from '../workers/config.js';

export function catalogReader(home: string): () => Promise<McpCatalog> {
  return async () => {
    const installed = statePaths(home).mcpCatalog;
    const path = await readFile(installed, 'utf8').then(
      () => installed,
      () => resolve(PROJECT_ROOT, 'sandbox', 'mcp', 'catalog.json'),
    );
    return parseCatalog(JSON.parse(await readFile(path, 'utf8')), path);
  };
}
