/**
 * The workflow bundle, built once per source change and cached in the state folder, so a
 * restarted worker is polling within a second instead of re-running webpack.
 */
import { existsSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { hashSources } from './compile.js';
import { PROJECT_ROOT } from './project-root.js';

export const WORKFLOWS_ENTRY = resolve(PROJECT_ROOT, 'workflows', 'index.ts');

/** Path of an up-to-date bundle; builds it when the sources changed. */
export async function workflowBundlePath(buildDir: string): Promise<string> {
  // Only what the workflow bundle is built from decides whether it is rebuilt.
  const path = join(buildDir, `workflows-${await hashSources(['workflows', 'core'])}.js`);
  if (existsSync(path)) return path;
  const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_ENTRY, logger: quietLogger });
  await mkdir(buildDir, { recursive: true });
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, code);
  await rename(temp, path);
  return path;
}

const noop = () => undefined;
const quietLogger = {
  trace: noop,
  debug: noop,
  info: noop,
  warn: noop,
  error: (m: string, meta?: unknown) => console.error(m, meta),
  log: noop,
};
