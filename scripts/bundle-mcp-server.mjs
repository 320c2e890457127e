// Bundles an MCP server package into one file beside its entry point (same folder, so files it
// reads relative to itself are still found): a server starts in about half the time, which is
// most of the cost of a fresh server per tool call. Usage: node scripts/bundle-mcp-server.mjs DIR
// where DIR/package.json names the entry as "countersign": { "entry": "node_modules/…/index.js" }.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import process from 'node:process';
import { build } from 'esbuild';

const dir = process.argv[2];
const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
const entry = manifest.countersign?.entry;
if (!entry) process.exit(0);
await build({
  entryPoints: [join(dir, entry)],
  outfile: join(dir, dirname(entry), 'countersign-bundle.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: true,
  logLevel: 'warning',
  // Bundled CommonJS dependencies still call require() for Node's own modules.
  banner: {
    js: "import { createRequire as __countersignRequire } from 'node:module'; const require = __countersignRequire(import.meta.url);",
  },
});
