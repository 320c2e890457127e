/**
 * The workflow bundle, built once per source change and cached in the state folder, so a
 * restarted worker is polling within a second instead of re-running webpack.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { PROJECT_ROOT } from './config.js';

export const WORKFLOWS_ENTRY = resolve(PROJECT_ROOT, 'workflows', 'index.ts');

async function sourceHash(): Promise<string> {
  const hash = createHash('sha256');
  for (const dir of ['workflows', 'core']) {
    const files = (await readdir(resolve(PROJECT_ROOT, dir), { recursive: true }))
      .filter((f) => f.endsWith('.ts'))
      .sort();
    for (const file of files) hash.update(file).update(await readFile(resolve(PROJECT_ROOT, dir, file)));
  }
  hash.update(await readFile(resolve(PROJECT_ROOT, 'package-lock.json')));
  return hash.digest('hex').slice(0, 16);
}

/** Path of an up-to-date bundle; builds it when the sources changed. */
export async function workflowBundlePath(buildDir: string): Promise<string> {
  const path = join(buildDir, `workflows-${await sourceHash()}.js`);
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
