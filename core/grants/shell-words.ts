/**
 * A command line read as plain words, the way a standing approval matches it, or the reason it is
 * more than plain words. Anything a shell would treat specially — separators, pipes, redirections,
 * substitutions, variables, globs, escapes, comments, assignments, newlines — makes the line
 * "not plain", and a step whose command is not plain never matches a prefix grant: it goes to a
 * person. This errs on the side of refusing (`a=b` after the command is fine, `"$HOME"` is not).
 */

export type ShellWords = { ok: true; words: string[] } | { ok: false; reason: string };

/** Characters a word may hold without quotes. */
const PLAIN = /[A-Za-z0-9_\-./,:@%+=]/;

const SPECIAL: Record<string, string> = {
  ';': 'a command separator (;)',
  '&': 'a background job or a chain (&, &&)',
  '|': 'a pipe or a chain (|, ||)',
  '<': 'a redirection (<)',
  '>': 'a redirection (>)',
  $: 'a variable or a substitution ($)',
  '`': 'a command substitution (`…`)',
  '*': 'a glob (*)',
  '?': 'a glob (?)',
  '[': 'a glob or a test ([)',
  ']': 'a glob or a test (])',
  '{': 'a brace expansion or a group ({)',
  '}': 'a brace expansion or a group (})',
  '(': 'a subshell or a function (()',
  ')': 'a subshell or a function ())',
  '~': 'a home-folder expansion (~)',
  '#': 'a comment (#)',
  '\\': 'an escape (\\)',
  '!': 'a negation or a history expansion (!)',
  '^': 'a legacy pipe (^)',
  '\n': 'a second line',
  '\r': 'a carriage return',
};

const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/;

/** Control and format characters (bidi overrides, zero-width joiners) hide what a line says. */
const HIDDEN = new RegExp(
  // eslint-disable-next-line no-control-regex -- finding control characters is the point
  '[\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f\\u00ad\\u061c\\u180e\\u200b-\\u200f\\u202a-\\u202e\\u2060-\\u2064\\u2066-\\u206f\\ufeff]',
  'u',
);

/** True when `text` holds a control or invisible character (tabs and newlines included). */
export function hasHiddenCharacters(text: string): boolean {
  return /[\t\n]/.test(text) || HIDDEN.test(text);
}

function describe(char: string): string {
  return (
    SPECIAL[char] ??
    `the character ${JSON.stringify(char)} (U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')})`
  );
}

/**
 * Splits `command` into words. Single quotes hold anything printable; double quotes hold anything
 * but `$`, backticks, `\` and `!` (which a shell would still expand there); bare words hold only
 * letters, digits and `_-./,:@%+=`. The first word may not be an assignment (`NAME=value cmd`).
 */
export function plainWords(command: string): ShellWords {
  if (HIDDEN.test(command)) return { ok: false, reason: 'it holds a control or invisible character' };
  const words: string[] = [];
  let word: string | undefined;
  let i = 0;
  while (i < command.length) {
    const char = command[i]!;
    if (char === ' ' || char === '\t') {
      if (word !== undefined) words.push(word);
      word = undefined;
      i++;
      continue;
    }
    if (char === "'" || char === '"') {
      const end = command.indexOf(char, i + 1);
      if (end < 0)
        return { ok: false, reason: `a ${char === "'" ? 'single' : 'double'} quote is not closed` };
      const quoted = command.slice(i + 1, end);
      if (quoted.includes('\n')) return { ok: false, reason: describe('\n') };
      if (char === '"') {
        const expanding = [...quoted].find((c) => c === '$' || c === '`' || c === '\\' || c === '!');
        if (expanding) return { ok: false, reason: `${describe(expanding)} inside double quotes` };
      }
      word = (word ?? '') + quoted;
      i = end + 1;
      continue;
    }
    if (!PLAIN.test(char)) return { ok: false, reason: describe(char) };
    word = (word ?? '') + char;
    i++;
  }
  if (word !== undefined) words.push(word);
  if (words.length === 0) return { ok: false, reason: 'it is empty' };
  const first = command.trimStart();
  // An assignment is only an assignment unquoted: `'A=b'` is a command named A=b (and harmless to refuse too).
  if (ASSIGNMENT.test(first))
    return { ok: false, reason: 'it sets an environment variable before the command (NAME=…)' };
  return { ok: true, words };
}

/** Programs that run other commands given in their arguments: a prefix starting with one allows anything. */
export const COMMAND_RUNNERS: ReadonlySet<string> = new Set([
  'sh',
  'bash',
  'dash',
  'zsh',
  'ksh',
  'fish',
  'env',
  'eval',
  'exec',
  'command',
  'builtin',
  'xargs',
  'sudo',
  'su',
  'doas',
  'nohup',
  'setsid',
  'timeout',
  'nice',
  'ionice',
  'time',
  'watch',
  'script',
  'chroot',
  'unshare',
  'nsenter',
  'busybox',
  'stdbuf',
  'flock',
  'npx',
  'bunx',
  'uvx',
  'pnpx',
  'taskset',
  'setpriv',
  'chrt',
  'numactl',
  'runuser',
  'sg',
  'strace',
  'ltrace',
  'gdb',
  'valgrind',
  'fakeroot',
  'proot',
  'firejail',
  'parallel',
  'entr',
  'expect',
]);

/** Tools whose subcommands run any program or package (`npm exec`, `git bisect run`, `uv run`). */
const TOOL_RUNNERS: ReadonlySet<string> = new Set([
  'npm',
  'pnpm',
  'yarn',
  'bun',
  'git',
  'uv',
  'poetry',
  'pipenv',
  'bundle',
  'conda',
  'nix',
  'mise',
  'asdf',
]);
const RUNNING_SUBCOMMANDS: ReadonlySet<string> = new Set([
  'npm exec',
  'npm x',
  'npm explore',
  'pnpm exec',
  'pnpm dlx',
  'yarn exec',
  'yarn dlx',
  'bun x',
  'bun exec',
  'git bisect',
  'uv run',
  'uv tool',
  'poetry run',
  'pipenv run',
  'bundle exec',
  'conda run',
  'nix run',
  'nix shell',
  'nix develop',
  'mise exec',
  'asdf exec',
]);

/** Programs that run code given in their arguments (`python3 -c …`, `node -e …`). */
export const INTERPRETERS: ReadonlySet<string> = new Set([
  'python',
  'python2',
  'python3',
  'node',
  'nodejs',
  'deno',
  'bun',
  'perl',
  'ruby',
  'php',
  'lua',
  'R',
  'Rscript',
  'awk',
  'gawk',
  'mawk',
  'osascript',
  'pwsh',
]);

const INLINE_CODE_FLAGS = ['-c', '-e', '-E', '-r', '-p', '-x', '--eval', '--print', '--exec', 'eval'];
const isInlineCodeFlag = (word: string) =>
  INLINE_CODE_FLAGS.some((flag) => word === flag || word.startsWith(`${flag}=`));

/**
 * Why a prefix of these words (with these options allowed after it) would allow any command, or
 * undefined. A prefix may not start with a program that runs other commands (`sh`, `env`,
 * `sudo`, `/bin/sh`, `npx`, …), be a tool whose subcommands run any program (`npm`, `git`,
 * `npm exec`, `uv run`), nor be an interpreter alone or with an inline-code flag (`python3`,
 * `node -e`): grant the exact command instead.
 */
export function prefixProblem(words: readonly string[], options: readonly string[] = []): string | undefined {
  const program = words[0]?.split('/').pop() ?? '';
  const exact = 'grant the exact command instead';
  if (COMMAND_RUNNERS.has(program) || program.startsWith('ld-linux'))
    return `"${words[0]}" runs whatever its arguments say: a prefix starting with it would allow any command; ${exact}`;
  if (TOOL_RUNNERS.has(program) && words.length === 1)
    return `"${words[0]}" has subcommands that run any program (such as exec or run): a prefix of it alone would allow any command; name the subcommand, or ${exact}`;
  if (RUNNING_SUBCOMMANDS.has(`${program} ${words[1] ?? ''}`))
    return `"${words.slice(0, 2).join(' ')}" runs whatever its arguments say: a prefix starting with it would allow any command; ${exact}`;
  if (INTERPRETERS.has(program) && (words.length === 1 || [...words, ...options].some(isInlineCodeFlag)))
    return `"${words.join(' ')}" runs code given in its arguments: a prefix of it would allow any program; ${exact}`;
  return undefined;
}
