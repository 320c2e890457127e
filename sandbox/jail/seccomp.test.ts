/**
 * The jail's seccomp program, run through a classic-BPF interpreter written from the kernel's
 * definition (net/core/filter.c's checks for seccomp: loads of seccomp_data, jumps, returns), and
 * its syscall numbers checked against this machine's kernel headers.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  AUDIT_ARCH,
  checkedSyscalls,
  CLONE_NAMESPACE_FLAGS,
  deniedSyscalls,
  ENOSYS,
  EPERM,
  SECCOMP_RET,
  seccompProgram,
  X32_SYSCALL_BIT,
  type SeccompArch,
} from './seccomp.js';

/** Evaluates `program` on one syscall; returns the filter's verdict. */
function evaluate(program: Buffer, data: { nr: number; arch: number; args?: number[] }): number {
  expect(program.length % 8).toBe(0);
  const seccompData = Buffer.alloc(64);
  seccompData.writeInt32LE(data.nr, 0);
  seccompData.writeUInt32LE(data.arch, 4);
  (data.args ?? []).forEach((arg, index) => seccompData.writeUInt32LE(arg >>> 0, 16 + 8 * index));
  let accumulator = 0;
  for (let pc = 0; pc < program.length / 8;) {
    const code = program.readUInt16LE(pc * 8);
    const jt = program.readUInt8(pc * 8 + 2);
    const jf = program.readUInt8(pc * 8 + 3);
    const k = program.readUInt32LE(pc * 8 + 4);
    pc += 1;
    switch (code) {
      case 0x20: // BPF_LD | BPF_W | BPF_ABS
        expect(k % 4).toBe(0);
        expect(k).toBeLessThan(64);
        accumulator = seccompData.readUInt32LE(k);
        break;
      case 0x15: // BPF_JMP | BPF_JEQ | BPF_K
        pc += accumulator === k ? jt : jf;
        break;
      case 0x45: // BPF_JMP | BPF_JSET | BPF_K
        pc += (accumulator & k) >>> 0 !== 0 ? jt : jf;
        break;
      case 0x06: // BPF_RET | BPF_K
        return k;
      default:
        throw new Error(`unexpected opcode ${code.toString(16)}`);
    }
  }
  throw new Error('the program fell off its end');
}

const ARCHES: SeccompArch[] = ['x86_64', 'aarch64'];
const errno = (code: number) => SECCOMP_RET.errno | code;

describe.each(ARCHES)('the seccomp program for %s', (arch) => {
  const program = seccompProgram(arch);
  const run = (nr: number, args?: number[]) => evaluate(program, { nr, arch: AUDIT_ARCH[arch], args });
  const checked = checkedSyscalls(arch);

  it('kills a process that calls in with another architecture', () => {
    const other = arch === 'x86_64' ? 'aarch64' : 'x86_64';
    expect(evaluate(program, { nr: 0, arch: AUDIT_ARCH[other] })).toBe(SECCOMP_RET.killProcess);
    expect(evaluate(program, { nr: 0, arch: 0x40000003 /* i386 */ })).toBe(SECCOMP_RET.killProcess);
  });

  it('returns EPERM for every denied syscall and allows the rest', () => {
    const denied = deniedSyscalls(arch);
    for (const name of ['unshare', 'mount', 'ptrace', 'keyctl', 'bpf', 'setns', 'open_tree', 'fsopen'])
      expect(denied.has(name), name).toBe(true);
    for (const [name, nr] of denied) expect(run(nr), name).toBe(errno(EPERM));
    const deniedNumbers = new Set([...denied.values(), ...Object.values(checked)]);
    for (let nr = 0; nr < 470; nr++)
      if (!deniedNumbers.has(nr)) expect(run(nr), `nr ${nr}`).toBe(SECCOMP_RET.allow);
  });

  it('answers clone3 with ENOSYS, and clone with namespace flags with EPERM', () => {
    expect(run(checked.clone3)).toBe(errno(ENOSYS));
    const SIGCHLD = 17;
    const CLONE_THREAD_FLAGS = 0x003d0f00; // what glibc's pthread_create passes
    expect(run(checked.clone, [SIGCHLD])).toBe(SECCOMP_RET.allow);
    expect(run(checked.clone, [CLONE_THREAD_FLAGS])).toBe(SECCOMP_RET.allow);
    for (let bit = 0; bit < 32; bit++) {
      const flag = (1 << bit) >>> 0;
      if (CLONE_NAMESPACE_FLAGS & flag) expect(run(checked.clone, [flag | SIGCHLD])).toBe(errno(EPERM));
    }
    expect(run(checked.clone, [0x10000000 /* CLONE_NEWUSER */])).toBe(errno(EPERM));
  });

  it('refuses TIOCSTI and TIOCLINUX, allows other ioctls', () => {
    expect(run(checked.ioctl, [0, 0x5412])).toBe(errno(EPERM));
    expect(run(checked.ioctl, [0, 0x541c])).toBe(errno(EPERM));
    expect(run(checked.ioctl, [0, 0x5401 /* TCGETS */])).toBe(SECCOMP_RET.allow);
  });

  it('allows only the harmless personalities', () => {
    expect(run(checked.personality, [0])).toBe(SECCOMP_RET.allow);
    expect(run(checked.personality, [0xffffffff])).toBe(SECCOMP_RET.allow);
    expect(run(checked.personality, [0x0040000 /* ADDR_NO_RANDOMIZE */])).toBe(errno(EPERM));
    expect(run(checked.personality, [0x0400000 /* READ_IMPLIES_EXEC */])).toBe(errno(EPERM));
  });
});

describe('the x86_64 program', () => {
  it('refuses the x32 ABI', () => {
    const program = seccompProgram('x86_64');
    const arch = AUDIT_ARCH.x86_64;
    expect(evaluate(program, { nr: X32_SYSCALL_BIT | 0, arch })).toBe(errno(EPERM));
    // x32's own unshare (its number with the x32 bit) must not slip past the number checks.
    expect(evaluate(program, { nr: X32_SYSCALL_BIT | 272, arch })).toBe(errno(EPERM));
  });
});

/** `#define __NR_name number` lines of a header. */
function headerNumbers(path: string): Map<string, number> {
  const numbers = new Map<string, number>();
  for (const match of readFileSync(path, 'utf8').matchAll(/^#define __NR_(\w+)\s+(\d+)\s*$/gm))
    numbers.set(match[1]!, Number(match[2]));
  return numbers;
}

const HEADERS: Record<SeccompArch, string> = {
  x86_64: '/usr/include/x86_64-linux-gnu/asm/unistd_64.h',
  aarch64: '/usr/include/asm-generic/unistd.h',
};

describe.each(ARCHES)('syscall numbers for %s', (arch) => {
  it.skipIf(!existsSync(HEADERS[arch]))("match this machine's kernel headers", () => {
    const header = headerNumbers(HEADERS[arch]);
    const ours = new Map([...deniedSyscalls(arch), ...Object.entries(checkedSyscalls(arch))]);
    let compared = 0;
    for (const [name, nr] of ours) {
      // Syscalls newer than the installed headers cannot be checked here.
      if (!header.has(name)) continue;
      expect(nr, name).toBe(header.get(name));
      compared++;
    }
    expect(compared).toBeGreaterThan(50);
  });
});
