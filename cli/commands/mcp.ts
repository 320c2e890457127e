/** `countersign mcp catalog` and `countersign mcp pin SERVER`. */
import { existsSync } from 'node:fs';
import type { McpCatalog } from '../../core/mcp/catalog.js';
import { pinCatalogServer } from '../../services/mcp.js';
import { ensureCatalog, readCatalog, writeCatalog } from '../../sandbox/mcp/catalog-store.js';
import { PROJECT_ROOT } from '../../workers/config.js';
import { chooseExecutorSandbox, createSandbox, MCP_CATALOG_TEMPLATE } from '../../workers/sandbox-choice.js';
import { clean } from '../../services/history/render.js';
import type { CliContext } from '../context.js';
import { bold, cyan, dim, green, red, terminalJson, yellow } from '../format.js';

/** A tool's own words (a server wrote them): first line, cleaned of terminal escapes. */
const firstLine = (text: string, max = 100) => {
  const line = clean(text.split('\n')[0]!).trim();
  return line.length > max ? `${line.slice(0, max)}…` : line;
};

export async function catalogCommand(ctx: CliContext, options: { json?: boolean }): Promise<void> {
  const installed = existsSync(ctx.paths.mcpCatalog);
  const catalog = await readCatalog(installed ? ctx.paths.mcpCatalog : MCP_CATALOG_TEMPLATE);
  if (options.json) {
    console.log(terminalJson(catalog));
    return;
  }
  console.log(
    dim(
      installed
        ? `catalog ${ctx.paths.mcpCatalog}`
        : `catalog ${MCP_CATALOG_TEMPLATE} (the executor pins this machine's images on its first start)`,
    ),
  );
  for (const server of catalog.servers) {
    const image = server.imageId
      ? `${server.image} @ ${server.imageId.slice(7, 19)}`
      : `${server.image} (not pinned)`;
    console.log(`\n${bold(server.id)}  ${clean(server.description)}`);
    console.log(
      dim(
        `  image ${image}; workspace ${server.workspace}; network ${server.network}; ` +
          `${server.limits.memoryMiB} MiB, ${server.limits.cpus} CPU, ${server.limits.pids} processes, calls up to ${server.limits.callTimeout}`,
      ),
    );
    for (const [name, tool] of Object.entries(server.tools))
      console.log(
        `  ${cyan(name.padEnd(28))} ${firstLine(tool.description)} ${dim(tool.sha256.slice(0, 12))}`,
      );
  }
}

export async function pinCommand(
  ctx: CliContext,
  serverId: string,
  options: { allow?: string; dryRun?: boolean; template?: boolean },
): Promise<void> {
  const choice = await chooseExecutorSandbox(ctx.config);
  const sandbox = await createSandbox(choice.name, ctx.config);
  const target = options.template ? MCP_CATALOG_TEMPLATE : ctx.paths.mcpCatalog;
  const catalog: McpCatalog = options.template
    ? await readCatalog(MCP_CATALOG_TEMPLATE)
    : await ensureCatalog({
        path: ctx.paths.mcpCatalog,
        template: MCP_CATALOG_TEMPLATE,
        projectRoot: PROJECT_ROOT,
        imageIdOf: sandbox.imageIdOf,
      });
  const report = await pinCatalogServer({
    catalog,
    serverId,
    allow: options.allow
      ?.split(',')
      .map((t) => t.trim())
      .filter(Boolean),
    launcher: sandbox.mcp,
    backend: sandbox.backend,
    imageIdOf: sandbox.imageIdOf,
    projectRoot: PROJECT_ROOT,
  });
  console.log(`${bold(serverId)} ${dim(`(started in ${choice.name} to read its tools)`)}`);
  const { before, after } = report.image;
  if (!options.template)
    console.log(
      before === after
        ? dim(`  image unchanged ${after ?? ''}`)
        : yellow(`  image ${before ?? '(none)'} → ${after ?? '(none)'}`),
    );
  let changed = before !== after && !options.template;
  for (const change of report.changes) {
    if (change.change === 'unchanged') {
      console.log(dim(`  = ${change.tool}`));
      continue;
    }
    changed = true;
    if (change.change === 'added')
      console.log(green(`  + ${change.tool}: ${firstLine(change.after!.description)}`));
    else if (change.change === 'removed')
      console.log(red(`  - ${change.tool}: the server no longer offers it (dropped)`));
    else if (change.change === 'read-only')
      console.log(
        yellow(
          `  ~ ${change.tool}: ${change.after!.readOnly ? 'now annotated read-only' : 'no longer annotated read-only (grants for it need allowWrites)'}`,
        ),
      );
    else {
      console.log(
        yellow(
          `  ~ ${change.tool}: ${change.change === 'description' ? 'description changed' : 'input schema changed'}`,
        ),
      );
      if (change.change === 'description') {
        console.log(red(`      was: ${clean(change.before!.description)}`));
        console.log(green(`      now: ${clean(change.after!.description)}`));
      } else {
        console.log(red(`      was: ${clean(JSON.stringify(change.before!.inputSchema))}`));
        console.log(green(`      now: ${clean(JSON.stringify(change.after!.inputSchema))}`));
      }
    }
  }
  if (options.dryRun) {
    console.log(dim(changed ? '  dry run: nothing written' : '  nothing to change'));
    return;
  }
  if (!changed) {
    console.log(dim('  already pinned as it is; nothing written'));
    return;
  }
  const written = options.template
    ? {
        ...report.catalog,
        servers: report.catalog.servers.map(({ imageId: _i, sourceLock: _l, ...rest }) => rest),
      }
    : report.catalog;
  await writeCatalog(target, written as McpCatalog);
  console.log(green(`  pinned; written to ${target}`));
}
