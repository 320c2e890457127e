/**
 * The project folder, found by walking up to Countersign's package.json, so the same code works
 * from its TypeScript source and from a compiled bundle under node_modules/.cache.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findProjectRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (
      existsSync(manifest) &&
      (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'countersign'
    )
      return `${dir}/`;
    if (dirname(dir) === dir) throw new Error(`cannot find the countersign project folder above ${from}`);
  }
}

export const PROJECT_ROOT = findProjectRoot(dirname(fileURLToPath(import.meta.url)));
