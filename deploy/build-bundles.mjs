// Image build step (deploy/Dockerfile): the JavaScript bundles every long-running process runs,
// built once so containers never load a TypeScript loader or webpack. Run with `node --import tsx`.
import { copyFile, mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import process from 'node:process';
import { workflowBundlePath } from '../workers/bundle.ts';
import { compiledEntry } from '../workers/compile.ts';
import { loadConfig, PROJECT_ROOT, statePaths } from '../workers/config.ts';

const ENTRIES = {
  control: 'workers/control.ts',
  executor: 'workers/executor.ts',
  gate: 'sandbox/gate/main.ts',
  door: 'services/temporal/door-main.ts',
  'tls-init': 'services/temporal/tls-init.ts',
  api: 'api/server.ts',
  // Found again at run time by RunnerPool through compiledEntry's content hash.
  runner: 'sandbox/runner/runner.ts',
};

const dist = resolve(PROJECT_ROOT, 'dist');
await mkdir(dist, { recursive: true });
for (const [name, entry] of Object.entries(ENTRIES)) {
  await copyFile(await compiledEntry(entry), resolve(dist, `${name}.mjs`));
  process.stderr.write(`bundled ${entry} → dist/${name}.mjs\n`);
}
const workflows = await workflowBundlePath(statePaths(loadConfig().home).build);
process.stderr.write(`bundled the workflows → ${workflows}\n`);
