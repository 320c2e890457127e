/**
 * Long-running processes (supervisor, workers, step runners) run as plain JavaScript bundles:
 * a TypeScript loader costs ~40 MiB and ~0.3 s per process. Bundles are rebuilt when any
 * source changes and kept under node_modules/.cache so their package imports resolve.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, rename } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { build } from 'esbuild';
import { PROJECT_ROOT } from './project-root.js';

const ALL_SOURCE_DIRS = ['core', 'workflows', 'activities', 'workers', 'sandbox', 'services', 'cli', 'api'];
const hashes = new Map<string, Promise<string>>();

/** A short hash of the TypeScript sources under `dirs` and the lock file: a cache key for builds. */
export function hashSources(dirs: readonly string[] = ALL_SOURCE_DIRS): Promise<string> {
  const key = dirs.join(',');
  let pending = hashes.get(key);
  if (pending) return pending;
  pending = (async () => {
    const hash = createHash('sha256');
    for (const dir of dirs) {
      const files = (await readdir(resolve(PROJECT_ROOT, dir), { recursive: true }))
        .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
        .sort();
      for (const file of files)
        hash.update(`${dir}/${file}\n`).update(await readFile(resolve(PROJECT_ROOT, dir, file)));
    }
    hash.update(await readFile(resolve(PROJECT_ROOT, 'package-lock.json')));
    return hash.digest('hex').slice(0, 12);
  })();
  hashes.set(key, pending);
  return pending;
}

/** Path of an up-to-date JavaScript bundle of `entry` (relative to the project folder). */
export async function compiledEntry(entry: string): Promise<string> {
  const outfile = join(
    PROJECT_ROOT,
    'node_modules',
    '.cache',
    'countersign',
    `${basename(entry, '.ts')}-${await hashSources()}.mjs`,
  );
  if (existsSync(outfile)) return outfile;
  const temp = `${outfile}.${process.pid}.tmp.mjs`;
  await build({
    entryPoints: [resolve(PROJECT_ROOT, entry)],
    outfile: temp,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'error',
    // ESM bundles have no require(); some dependencies still call it.
    banner: {
      js: "import { createRequire as __countersignRequire } from 'node:module'; const require = __countersignRequire(import.meta.url);",
    },
  });
  await rename(temp, outfile);
  return outfile;
}
