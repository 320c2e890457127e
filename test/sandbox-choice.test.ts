import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chooseSandbox, sandboxFromEnv, workspaceSizeFromEnv } from '../workers/sandbox-choice.js';

let dir: string;
let choiceFile: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'countersign-choice-'));
  choiceFile = join(dir, 'executor', 'sandbox');
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const dockerReady = async () => undefined;
const dockerMissing = async () => 'connect ENOENT /var/run/docker.sock';

describe('choosing the sandbox', () => {
  it('takes Docker when it answers, and remembers that', async () => {
    expect(await chooseSandbox('auto', dockerReady, choiceFile)).toEqual({ name: 'docker' });
    expect((await readFile(choiceFile, 'utf8')).trim()).toBe('docker');
  });

  it('falls back to the jail with a loud warning that says why and what to do', async () => {
    const choice = await chooseSandbox('auto', dockerMissing, choiceFile);
    expect(choice.name).toBe('jail');
    expect(choice.warning).toMatch(/^WARNING: Docker is not available \(connect ENOENT/);
    expect(choice.warning).toContain('scripts/setup');
  });

  it('refuses to slip into the jail on a machine that ran its plans in Docker', async () => {
    await chooseSandbox('auto', dockerReady, choiceFile);
    await expect(chooseSandbox('auto', dockerMissing, choiceFile)).rejects.toThrow(
      /runs its plans in Docker, and Docker does not answer now.*nothing is lost.*COUNTERSIGN_SANDBOX=jail/,
    );
  });

  it('does what COUNTERSIGN_SANDBOX says, without probing', async () => {
    const never = async (): Promise<string | undefined> => {
      throw new Error('probed');
    };
    expect(await chooseSandbox('jail', never, choiceFile)).toEqual({ name: 'jail' });
    expect(await chooseSandbox('docker', never, choiceFile)).toEqual({ name: 'docker' });
    expect(sandboxFromEnv({})).toBe('auto');
    expect(sandboxFromEnv({ COUNTERSIGN_SANDBOX: 'docker' })).toBe('docker');
    expect(() => sandboxFromEnv({ COUNTERSIGN_SANDBOX: 'vm' })).toThrow(
      'COUNTERSIGN_SANDBOX must be docker, jail or auto, got "vm"',
    );
  });
});

describe('COUNTERSIGN_WORKSPACE_SIZE', () => {
  it('is 4GiB unless set, off turns quotas off, and anything else is refused saying what it takes', () => {
    expect(workspaceSizeFromEnv({})).toBe(4 * 1024 ** 3);
    expect(workspaceSizeFromEnv({ COUNTERSIGN_WORKSPACE_SIZE: '512MiB' })).toBe(512 * 1024 ** 2);
    expect(workspaceSizeFromEnv({ COUNTERSIGN_WORKSPACE_SIZE: 'off' })).toBeUndefined();
    for (const bad of ['4GB', '1MiB', '2TiB', 'no'])
      expect(() => workspaceSizeFromEnv({ COUNTERSIGN_WORKSPACE_SIZE: bad })).toThrow(
        `COUNTERSIGN_WORKSPACE_SIZE must be off or a size from 16MiB to 1TiB (such as 4GiB), got "${bad}"`,
      );
  });
});
