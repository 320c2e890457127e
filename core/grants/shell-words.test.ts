import { describe, expect, it } from 'vitest';
import { plainWords } from './shell-words.js';

describe('plainWords', () => {
  it.each([
    ['git status', ['git', 'status']],
    ['  git   status\t--short ', ['git', 'status', '--short']],
    ["git commit -m 'fix: the $HOME; bug'", ['git', 'commit', '-m', 'fix: the $HOME; bug']],
    ['git commit -m "plain words, no expansion"', ['git', 'commit', '-m', 'plain words, no expansion']],
    ["a'b'c", ['abc']],
    ["echo ''", ['echo', '']],
    ['npm run test -- --grep=auth', ['npm', 'run', 'test', '--', '--grep=auth']],
    ['ls src/core/a.ts user@host:path 50% +x', ['ls', 'src/core/a.ts', 'user@host:path', '50%', '+x']],
    ['make CFLAGS=-O2', ['make', 'CFLAGS=-O2']],
  ])('reads %j as plain words', (command, words) => {
    expect(plainWords(command)).toEqual({ ok: true, words });
  });

  it.each([
    ['git status; id', 'a command separator (;)'],
    ['git status && id', 'a background job or a chain (&, &&)'],
    ['git status & id', 'a background job or a chain (&, &&)'],
    ['git status || id', 'a pipe or a chain (|, ||)'],
    ['git status | sh', 'a pipe or a chain (|, ||)'],
    ['git status > /workspace/x', 'a redirection (>)'],
    ['git status < /etc/passwd', 'a redirection (<)'],
    ['git status $(id)', 'a variable or a substitution ($)'],
    ['git status $HOME', 'a variable or a substitution ($)'],
    ['git status `id`', 'a command substitution (`…`)'],
    ['git status\nid', 'a second line'],
    ['git status\r', 'it holds a control or invisible character'],
    ['git status *', 'a glob (*)'],
    ['git status ?', 'a glob (?)'],
    ['git status [ab]', 'a glob or a test ([)'],
    ['git status {a,b}', 'a brace expansion or a group ({)'],
    ['(git status)', 'a subshell or a function (()'],
    ['git status ~', 'a home-folder expansion (~)'],
    ['git status # comment', 'a comment (#)'],
    ['git status \\; id', 'an escape (\\)'],
    ['! git status', 'a negation or a history expansion (!)'],
    ['git status ^ id', 'a legacy pipe (^)'],
    ['git status "$(id)"', 'a variable or a substitution ($) inside double quotes'],
    ['git status "`id`"', 'a command substitution (`…`) inside double quotes'],
    ['git status "a\\"b"', 'an escape (\\) inside double quotes'],
    ["git status 'unclosed", 'a single quote is not closed'],
    ['git status "unclosed', 'a double quote is not closed'],
    ["git status 'two\nlines'", 'a second line'],
    ['GIT_DIR=/tmp git status', 'it sets an environment variable before the command (NAME=…)'],
    ['git status <<EOF', 'a redirection (<)'],
    ['git status \u202e', 'it holds a control or invisible character'],
    ['git\u200bstatus', 'it holds a control or invisible character'],
    ['git statüs', 'the character "ü" (U+00FC)'],
    ['', 'it is empty'],
    ['   ', 'it is empty'],
  ])('refuses %j: %s', (command, reason) => {
    expect(plainWords(command)).toEqual({ ok: false, reason });
  });
});
