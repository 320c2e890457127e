// Builds the web app's service worker (ui/src/sw/main.ts) into ui/dist/sw.js, after `vite build`:
// type-checked against the WebWorker library (ui/src/sw/tsconfig.json: a worker has no DOM), then
// bundled by esbuild into one classic script (an IIFE: not every browser still in use registers
// module service workers), served from the root so that its scope is the whole app.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import ts from 'typescript';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsconfig = join(root, 'ui/src/sw/tsconfig.json');
const outfile = join(root, 'ui/dist/sw.js');
/** Run-time imports the worker must never carry: zod (core's validators) and anything Svelte. */
const FORBIDDEN = /(^|\/)node_modules\/(zod|svelte)\//;

if (!existsSync(join(root, 'ui/dist/index.html')))
  fail('ui/dist has no index.html; run `vite build --config ui/vite.config.ts` first.');

const config = ts.getParsedCommandLineOfConfigFile(
  tsconfig,
  {},
  { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (diagnostic) => report([diagnostic]) },
);
if (!config) fail(`${relative(root, tsconfig)} could not be read.`);
const program = ts.createProgram({ rootNames: config.fileNames, options: config.options });
const diagnostics = [...config.errors, ...ts.getPreEmitDiagnostics(program)];
if (diagnostics.length > 0) {
  report(diagnostics);
  fail(
    `the service worker does not type-check (${relative(root, tsconfig)}); ui/dist/sw.js was not written.`,
  );
}

const result = await build({
  absWorkingDir: root,
  entryPoints: ['ui/src/sw/main.ts'],
  outfile,
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  legalComments: 'none',
  metafile: true,
  write: false,
  logLevel: 'warning',
});

const forbidden = Object.keys(result.metafile.inputs).filter((input) => FORBIDDEN.test(input));
if (forbidden.length > 0)
  fail(`the service worker would carry ${forbidden.join(', ')}; ui/dist/sw.js was not written.`);
const [output] = result.outputFiles;
await writeFile(outfile, output.contents);
process.stdout.write(
  `build-sw: ${relative(root, outfile)} ${(output.contents.length / 1024).toFixed(1)} kB\n`,
);

function report(list) {
  const host = {
    getCanonicalFileName: (name) => name,
    getCurrentDirectory: () => root,
    getNewLine: () => '\n',
  };
  process.stderr.write(
    process.stderr.isTTY
      ? ts.formatDiagnosticsWithColorAndContext(list, host)
      : ts.formatDiagnostics(list, host),
  );
}

function fail(message) {
  process.stderr.write(`build-sw: ${message}\n`);
  process.exit(1);
}
