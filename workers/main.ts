/** Shared entry-point plumbing for worker processes: fail fast with a readable message. */
import { pathToFileURL } from 'node:url';

export function isMain(moduleUrl: string): boolean {
  return process.argv[1] !== undefined && pathToFileURL(process.argv[1]).href === moduleUrl;
}

export function runMain(name: string, main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    console.error(`${name}: ${(error as Error).message ?? error}`);
    process.exit(1);
  });
}
