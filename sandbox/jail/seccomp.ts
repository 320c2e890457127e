/**
 * The jail's seccomp filter: a classic-BPF program bwrap loads (`--seccomp FD`) just before it
 * runs the step. Everything is allowed except what lets a process leave or reshape its box (new
 * namespaces, mounts), look into other processes (ptrace and friends), reach the kernel's wider
 * surface (keyrings, bpf, perf, io_uring, modules, kexec) or change the machine (clock, swap,
 * reboot). Those return EPERM; clone3 returns ENOSYS so libc falls back to clone, whose flags
 * the filter can read. A syscall of another architecture (or x86_64's x32 ABI) never passes.
 *
 * Layout (linux/filter.h, linux/seccomp.h): each instruction is { u16 code; u8 jt; u8 jf; u32 k }
 * in the machine's byte order; seccomp_data is { int nr; u32 arch; u64 ip; u64 args[6] }.
 */

export type SeccompArch = 'x86_64' | 'aarch64';

/** AUDIT_ARCH_* (linux/audit.h). */
export const AUDIT_ARCH: Record<SeccompArch, number> = { x86_64: 0xc000003e, aarch64: 0xc00000b7 };
/** x86_64 syscalls with this bit set are the x32 ABI. */
export const X32_SYSCALL_BIT = 0x40000000;

// Syscall numbers: arch/x86/entry/syscalls/syscall_64.tbl and include/uapi/asm-generic/unistd.h
// (aarch64). seccomp.test.ts checks them against the installed headers.
const DENIED: Record<string, Partial<Record<SeccompArch, number>>> = {
  // Namespaces and mounts: the box keeps its shape.
  unshare: { x86_64: 272, aarch64: 97 },
  setns: { x86_64: 308, aarch64: 268 },
  mount: { x86_64: 165, aarch64: 40 },
  umount2: { x86_64: 166, aarch64: 39 },
  pivot_root: { x86_64: 155, aarch64: 41 },
  chroot: { x86_64: 161, aarch64: 51 },
  open_tree: { x86_64: 428, aarch64: 428 },
  move_mount: { x86_64: 429, aarch64: 429 },
  fsopen: { x86_64: 430, aarch64: 430 },
  fsconfig: { x86_64: 431, aarch64: 431 },
  fsmount: { x86_64: 432, aarch64: 432 },
  fspick: { x86_64: 433, aarch64: 433 },
  mount_setattr: { x86_64: 442, aarch64: 442 },
  open_tree_attr: { x86_64: 467, aarch64: 467 },
  // Other processes' memory and files.
  ptrace: { x86_64: 101, aarch64: 117 },
  process_vm_readv: { x86_64: 310, aarch64: 270 },
  process_vm_writev: { x86_64: 311, aarch64: 271 },
  pidfd_getfd: { x86_64: 438, aarch64: 438 },
  kcmp: { x86_64: 312, aarch64: 272 },
  // Files by handle bypass the mount tree.
  open_by_handle_at: { x86_64: 304, aarch64: 265 },
  name_to_handle_at: { x86_64: 303, aarch64: 264 },
  // Kernel attack surface a shell step has no use for.
  keyctl: { x86_64: 250, aarch64: 219 },
  add_key: { x86_64: 248, aarch64: 217 },
  request_key: { x86_64: 249, aarch64: 218 },
  bpf: { x86_64: 321, aarch64: 280 },
  perf_event_open: { x86_64: 298, aarch64: 241 },
  userfaultfd: { x86_64: 323, aarch64: 282 },
  io_uring_setup: { x86_64: 425, aarch64: 425 },
  io_uring_enter: { x86_64: 426, aarch64: 426 },
  io_uring_register: { x86_64: 427, aarch64: 427 },
  fanotify_init: { x86_64: 300, aarch64: 262 },
  lookup_dcookie: { x86_64: 212, aarch64: 18 },
  syslog: { x86_64: 103, aarch64: 116 },
  modify_ldt: { x86_64: 154 },
  iopl: { x86_64: 172 },
  ioperm: { x86_64: 173 },
  uselib: { x86_64: 134 },
  _sysctl: { x86_64: 156 },
  mbind: { x86_64: 237, aarch64: 235 },
  migrate_pages: { x86_64: 256, aarch64: 238 },
  move_pages: { x86_64: 279, aarch64: 239 },
  set_mempolicy: { x86_64: 238, aarch64: 237 },
  set_mempolicy_home_node: { x86_64: 450, aarch64: 450 },
  // The machine itself.
  kexec_load: { x86_64: 246, aarch64: 104 },
  kexec_file_load: { x86_64: 320, aarch64: 294 },
  init_module: { x86_64: 175, aarch64: 105 },
  finit_module: { x86_64: 313, aarch64: 273 },
  delete_module: { x86_64: 176, aarch64: 106 },
  create_module: { x86_64: 174 },
  get_kernel_syms: { x86_64: 177 },
  query_module: { x86_64: 178 },
  swapon: { x86_64: 167, aarch64: 224 },
  swapoff: { x86_64: 168, aarch64: 225 },
  reboot: { x86_64: 169, aarch64: 142 },
  acct: { x86_64: 163, aarch64: 89 },
  settimeofday: { x86_64: 164, aarch64: 170 },
  clock_settime: { x86_64: 227, aarch64: 112 },
  clock_adjtime: { x86_64: 305, aarch64: 266 },
  adjtimex: { x86_64: 159, aarch64: 171 },
  quotactl: { x86_64: 179, aarch64: 60 },
  quotactl_fd: { x86_64: 443, aarch64: 443 },
  nfsservctl: { x86_64: 180, aarch64: 42 },
  vhangup: { x86_64: 153, aarch64: 58 },
  sethostname: { x86_64: 170, aarch64: 161 },
  setdomainname: { x86_64: 171, aarch64: 162 },
};

/** Syscalls allowed only with some arguments. */
const CHECKED = {
  clone: { x86_64: 56, aarch64: 220 },
  clone3: { x86_64: 435, aarch64: 435 },
  ioctl: { x86_64: 16, aarch64: 29 },
  personality: { x86_64: 135, aarch64: 92 },
} as const;

/** CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET (linux/sched.h). */
export const CLONE_NAMESPACE_FLAGS =
  0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000;
/** Pushing input into a terminal (TIOCSTI) or poking the console (TIOCLINUX). */
export const DENIED_IOCTLS = [0x5412, 0x541c];
/** PER_LINUX, PER_LINUX32, UNAME26 and their mix, and 0xffffffff (query): what Docker allows. */
export const ALLOWED_PERSONALITIES = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

export const SECCOMP_RET = {
  killProcess: 0x80000000,
  errno: 0x00050000,
  allow: 0x7fff0000,
} as const;
export const EPERM = 1;
export const ENOSYS = 38;

// BPF opcodes (linux/bpf_common.h).
const LD_W_ABS = 0x00 | 0x00 | 0x20;
const JMP_JEQ_K = 0x05 | 0x10;
const JMP_JSET_K = 0x05 | 0x40;
const RET_K = 0x06;

/** seccomp_data offsets: the syscall number, the arch, and the low 32 bits of an argument (little endian). */
const NR = 0;
const ARCH = 4;
const argLow = (index: number) => 16 + 8 * index;

interface Instruction {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

const ld = (offset: number): Instruction => ({ code: LD_W_ABS, jt: 0, jf: 0, k: offset });
const jeq = (k: number, jt: number, jf: number): Instruction => ({ code: JMP_JEQ_K, jt, jf, k });
const jset = (k: number, jt: number, jf: number): Instruction => ({ code: JMP_JSET_K, jt, jf, k });
const ret = (k: number): Instruction => ({ code: RET_K, jt: 0, jf: 0, k });
const errno = (code: number) => SECCOMP_RET.errno | code;

/** The architecture the jail's filter is built for on this machine, or undefined when it knows none. */
export function seccompArchOf(nodeArch: string = process.arch): SeccompArch | undefined {
  return nodeArch === 'x64' ? 'x86_64' : nodeArch === 'arm64' ? 'aarch64' : undefined;
}

/** The names of the syscalls that return EPERM on `arch` (clone with namespace flags aside). */
export function deniedSyscalls(arch: SeccompArch): Map<string, number> {
  const denied = new Map<string, number>();
  for (const [name, numbers] of Object.entries(DENIED)) {
    const nr = numbers[arch];
    if (nr !== undefined) denied.set(name, nr);
  }
  return denied;
}

export function checkedSyscalls(arch: SeccompArch): Record<keyof typeof CHECKED, number> {
  return {
    clone: CHECKED.clone[arch],
    clone3: CHECKED.clone3[arch],
    ioctl: CHECKED.ioctl[arch],
    personality: CHECKED.personality[arch],
  };
}

function instructions(arch: SeccompArch): Instruction[] {
  const checked = checkedSyscalls(arch);
  const program: Instruction[] = [
    ld(ARCH),
    jeq(AUDIT_ARCH[arch], 1, 0),
    ret(SECCOMP_RET.killProcess),
    ld(NR),
  ];
  if (arch === 'x86_64') program.push(jset(X32_SYSCALL_BIT, 0, 1), ret(errno(EPERM)));
  for (const nr of deniedSyscalls(arch).values()) program.push(jeq(nr, 0, 1), ret(errno(EPERM)));
  program.push(jeq(checked.clone3, 0, 1), ret(errno(ENOSYS)));
  // clone(flags, ...): flags is the first argument on both architectures.
  program.push(
    jeq(checked.clone, 0, 4),
    ld(argLow(0)),
    jset(CLONE_NAMESPACE_FLAGS, 0, 1),
    ret(errno(EPERM)),
    ret(SECCOMP_RET.allow),
  );
  // ioctl(fd, request, ...): the kernel reads request as 32 bits.
  program.push(jeq(checked.ioctl, 0, 2 + 2 * DENIED_IOCTLS.length), ld(argLow(1)));
  for (const request of DENIED_IOCTLS) program.push(jeq(request, 0, 1), ret(errno(EPERM)));
  program.push(ret(SECCOMP_RET.allow));
  // personality(persona): only the harmless ones (no ADDR_NO_RANDOMIZE, no READ_IMPLIES_EXEC).
  program.push(jeq(checked.personality, 0, 3 + ALLOWED_PERSONALITIES.length), ld(argLow(0)));
  for (const [index, persona] of ALLOWED_PERSONALITIES.entries())
    program.push(jeq(persona, ALLOWED_PERSONALITIES.length - index, 0));
  program.push(ret(errno(EPERM)), ret(SECCOMP_RET.allow));
  program.push(ret(SECCOMP_RET.allow)); // everything else
  return program;
}

/** The filter as bwrap reads it from its `--seccomp` descriptor: struct sock_filter[], little endian. */
export function seccompProgram(arch: SeccompArch): Buffer {
  const program = instructions(arch);
  const bytes = Buffer.alloc(program.length * 8);
  program.forEach(({ code, jt, jf, k }, index) => {
    bytes.writeUInt16LE(code, index * 8);
    bytes.writeUInt8(jt, index * 8 + 2);
    bytes.writeUInt8(jf, index * 8 + 3);
    bytes.writeUInt32LE(k >>> 0, index * 8 + 4);
  });
  return bytes;
}
