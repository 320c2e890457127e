/**
 * How a jailed process is started: a small shell wrapper, run by the runner (steps) or the MCP
 * launcher (servers), that
 *
 *   1. makes the process's own cgroups and writes its memory and process limits,
 *   2. starts, in a private mount namespace (root only), a setup shell that binds the host
 *      folders the jail needs under a world-traversable tmpfs (the jail's user cannot walk into
 *      the executor's 0700 state folder), joins the cgroups, opens the seccomp program on fd 9
 *      and becomes the jail's unprivileged user (setpriv) and then bwrap,
 *   3. passes stop signals on to bwrap, and when it has ended, notes what the limits stopped,
 *      kills whatever is left in the cgroups, waits until they are empty and removes them.
 *
 * So the jail is never host root, and a process is reported ended only once nothing of it runs.
 * Everything variable travels as arguments and environment, never inside the script text.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SandboxRefused } from '../backend.js';
import { findCgroupHost, type CgroupHost, type JailLimits } from './cgroups.js';
import { seccompArchOf, seccompProgram } from './seccomp.js';

/** The unprivileged host user jailed processes run as when the executor is root (scripts/setup makes it). */
export const JAIL_USER = 'countersign-jail';
/** A folder only root writes, where each jail's private mount namespace binds its host folders. */
const STAGE_DIR = '/run/countersign-jail';
/** The descriptor bwrap reads its seccomp program from. */
export const SECCOMP_FD = '9';
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Like Docker's defaults (sandbox/docker/container-policy.ts): 512 MiB, 256 processes, a 64 MiB /tmp. */
export const DEFAULT_JAIL_LIMITS: JailLimits = {
  memoryBytes: 512 * 1024 ** 2,
  pids: 256,
  tmpBytes: 64 * 1024 ** 2,
};

const WRAPPER = `
set -f
nl='
'
IFS=$nl
fail() { printf 'countersign: the jail could not start: %s\\n' "$*" >&2; exit 125; }
made=
cleanup() {
  for dir in $made; do
    if [ -e "$dir/cgroup.kill" ]; then echo 1 > "$dir/cgroup.kill" 2>/dev/null; fi
    tries=0
    while pids=$(cat "$dir/cgroup.procs" 2>/dev/null) && [ -n "$pids" ]; do
      if [ "$tries" -ge 200 ]; then printf 'countersign: processes of the jail would not die: %s\\n' "$pids" >&2; break; fi
      kill -KILL $pids 2>/dev/null
      tries=$((tries + 1))
      sleep 0.05
    done
    rmdir "$dir" 2>/dev/null
  done
}
report() {
  if [ -z "\${CS_REPORT:-}" ]; then return 0; fi
  lines=
  for event in \${CS_EVENTS:-}; do
    name=\${event%%=*}; rest=\${event#*=}; file=\${rest%:*}; key=\${rest##*:}
    value=$(sed -n "s/^$key //p" "$file" 2>/dev/null)
    lines="$lines$name=\${value:-0}$nl"
  done
  printf '%s' "$lines" > "$CS_REPORT.tmp" 2>/dev/null && mv -f "$CS_REPORT.tmp" "$CS_REPORT"
}
for dir in \${CS_CGROUPS:-}; do
  if ! mkdir "$dir" 2>/dev/null; then cleanup; fail "could not make the cgroup $dir"; fi
  made="$made$dir$nl"
done
for limit in \${CS_LIMITS:-}; do
  optional=
  case $limit in '?'*) optional=1; limit=\${limit#?} ;; esac
  file=\${limit%=*}; value=\${limit##*=}
  if ! printf '%s' "$value" > "$file" 2>/dev/null && [ -z "$optional" ]; then
    cleanup; fail "could not set the limit $file to $value"
  fi
done
exec 3<&0
"$@" 0<&3 3<&- &
child=$!
exec 3<&-
trap 'kill -TERM "$child" 2>/dev/null' TERM INT HUP
status=0
while kill -0 "$child" 2>/dev/null; do wait "$child"; status=$?; done
report
cleanup
exit "$status"
`;

const SETUP = `
set -f
nl='
'
IFS=$nl
fail() { printf 'countersign: the jail could not start: %s\\n' "$*" >&2; exit 125; }
if [ -n "\${CS_STAGE:-}" ]; then
  mount -t tmpfs -o mode=0755,size=64k,nosuid,nodev,noexec countersign-stage "$CS_STAGE_DIR" || fail "could not mount its staging folder"
  n=0
  for source in $CS_STAGE; do
    mkdir "$CS_STAGE_DIR/$n" && mount --bind "$source" "$CS_STAGE_DIR/$n" || fail "could not bind $source"
    n=$((n + 1))
  done
fi
for dir in \${CS_CGROUPS:-}; do
  echo $$ > "$dir/cgroup.procs" 2>/dev/null || fail "could not join the cgroup $dir"
done
ulimit -c 0
[ -r "$CS_SECCOMP" ] || fail "cannot read the seccomp program $CS_SECCOMP"
if [ -n "\${CS_USER:-}" ]; then
  exec setpriv --reuid="\${CS_USER%:*}" --regid="\${CS_USER#*:}" --clear-groups --inh-caps=-all --bounding-set=-all -- "$@" 9< "$CS_SECCOMP"
fi
exec "$@" 9< "$CS_SECCOMP"
`;

export interface JailHost {
  /** The host uid/gid of the jail's user; undefined when the executor is not root (it runs as itself). */
  user?: { uid: number; gid: number };
  cgroups: CgroupHost;
  seccompFile: string;
  /** Where host folders are bound for the jail's user (root only). */
  stageDir?: string;
  /** Per-run notes of what the limits stopped. */
  reportsDir: string;
}

/** Looks the jail's user up in /etc/passwd. */
export async function jailUser(): Promise<{ uid: number; gid: number } | undefined> {
  const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '');
  for (const line of passwd.split('\n')) {
    const [name, , uid, gid] = line.split(':');
    if (name === JAIL_USER && uid && gid) return { uid: Number(uid), gid: Number(gid) };
  }
  return undefined;
}

const onPath = (tool: string) => PATH.split(':').some((dir) => existsSync(join(dir, tool)));

async function prepareHost(stateDir: string, env: NodeJS.ProcessEnv): Promise<JailHost> {
  const arch = seccompArchOf();
  if (!arch)
    throw new SandboxRefused(
      `the jail has a seccomp filter for x86_64 and aarch64 only, and this machine is ${process.arch}: use the Docker sandbox`,
    );
  const isRoot = process.getuid?.() === 0;
  let user: JailHost['user'];
  if (isRoot) {
    user = await jailUser();
    if (!user)
      throw new SandboxRefused(
        `the jail runs steps as the unprivileged user "${JAIL_USER}", and this host has none: run scripts/setup (it creates it)`,
      );
    if (user.uid === 0 || user.gid === 0)
      throw new SandboxRefused(`the user "${JAIL_USER}" has uid or gid 0: the jail is never host root`);
    for (const tool of ['setpriv', 'unshare', 'mount'])
      if (!onPath(tool))
        throw new SandboxRefused(
          `the jail needs ${tool} (util-linux) to run steps unprivileged, and it is missing`,
        );
  }
  const found = await findCgroupHost(env);
  if ('refused' in found)
    throw new SandboxRefused(
      `the jail cannot limit a step's memory and number of processes (each step needs a cgroup of its own): ${found.refused}`,
    );
  await found.host.sweep();
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  await chmod(stateDir, 0o700);
  const reportsDir = join(stateDir, 'limits');
  await mkdir(reportsDir, { recursive: true, mode: 0o700 });
  const seccompFile = join(stateDir, `seccomp-${arch}.bpf`);
  const temp = `${seccompFile}.${process.pid}.tmp`;
  await writeFile(temp, seccompProgram(arch), { mode: 0o600 });
  await rename(temp, seccompFile);
  if (isRoot) await mkdir(STAGE_DIR, { recursive: true, mode: 0o755 });
  return {
    ...(user ? { user } : {}),
    cgroups: found.host,
    seccompFile,
    ...(isRoot ? { stageDir: STAGE_DIR } : {}),
    reportsDir,
  };
}

/** The jail's host set-up, made once (a refusal is not kept: the next step asks again). */
export function jailHostOf(stateDir: string, env: NodeJS.ProcessEnv = process.env): () => Promise<JailHost> {
  let ready: Promise<JailHost> | undefined;
  return () => {
    ready ??= prepareHost(stateDir, env).catch((error: unknown) => {
      ready = undefined;
      throw error;
    });
    return ready;
  };
}

/** Where a host folder appears for bwrap: staged (root) or as it is. */
export function stagedPath(host: JailHost, sources: readonly string[], source: string): string {
  return host.stageDir ? join(host.stageDir, String(sources.indexOf(source))) : source;
}

export interface JailProcess {
  host: JailHost;
  /** Names the process's cgroups and its limits report (letters, digits, dashes). */
  name: string;
  limits: JailLimits;
  /** Host folders bwrap binds; its arguments name them through `stagedPath`. */
  sources: string[];
  bwrap: string;
  /** bwrap's arguments (`--seccomp 9` among them). */
  bwrapArgs: string[];
}

export function reportFile(host: JailHost, name: string): string {
  return join(host.reportsDir, `${name}.txt`);
}

/** The argv (and its environment) that starts `bwrap` through the wrapper. */
export function jailArgv(run: JailProcess): { file: string; args: string[]; env: Record<string, string> } {
  const { host } = run;
  if (!/^[A-Za-z0-9-]{1,100}$/.test(run.name)) throw new Error(`invalid jail process name "${run.name}"`);
  for (const source of run.sources)
    if (/[\n=]/.test(source) || !source.startsWith('/'))
      throw new SandboxRefused(
        `the jail cannot bind the folder ${JSON.stringify(source)} (not an absolute path without newlines)`,
      );
  const cgroups = host.cgroups.forStep(run.name, run.limits);
  const env: Record<string, string> = {
    PATH,
    CS_CGROUPS: cgroups.dirs.join('\n'),
    CS_LIMITS: cgroups.limits
      .map(([file, value, optional]) => `${optional ? '?' : ''}${file}=${value}`)
      .join('\n'),
    CS_EVENTS: cgroups.events.map((e) => `${e.name}=${e.file}:${e.key}`).join('\n'),
    CS_REPORT: reportFile(host, run.name),
    CS_SECCOMP: host.seccompFile,
  };
  if (host.user) env.CS_USER = `${host.user.uid}:${host.user.gid}`;
  const setup = ['/bin/sh', '-c', SETUP, 'countersign-jail-setup', run.bwrap, ...run.bwrapArgs];
  if (host.stageDir) {
    env.CS_STAGE_DIR = host.stageDir;
    env.CS_STAGE = run.sources.join('\n');
    setup.unshift('unshare', '--mount', '--propagation', 'private', '--');
  }
  return { file: '/bin/sh', args: ['-c', WRAPPER, 'countersign-jail', ...setup], env };
}

/** What the limits stopped during a run, in words, from the wrapper's note; undefined when nothing. */
export async function limitsHit(
  host: JailHost,
  name: string,
  limits: JailLimits,
): Promise<string | undefined> {
  const note = await readFile(reportFile(host, name), 'utf8').catch(() => '');
  const counts = new Map(
    note
      .split('\n')
      .filter(Boolean)
      .map((line) => [line.split('=')[0]!, Number(line.split('=')[1])] as const),
  );
  const parts: string[] = [];
  const oom = counts.get('oom_kill') ?? 0;
  if (oom > 0)
    parts.push(
      `the out-of-memory killer stopped ${oom} of its processes at its memory limit of ${Math.round(limits.memoryBytes / 1024 ** 2)} MiB (its /tmp counts too)`,
    );
  const forks = counts.get('pids_max') ?? 0;
  if (forks > 0)
    parts.push(
      `it reached its limit of ${limits.pids} processes (${forks} ${forks === 1 ? 'fork was' : 'forks were'} refused)`,
    );
  return parts.length ? parts.join('; ') : undefined;
}
