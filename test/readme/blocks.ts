/**
 * The README's runnable examples: every fenced block whose info string is `sh readme-run`,
 * in the order they appear, joined into one bash script that stops at the first broken example.
 */

/** The fence info string that marks a block the test suite runs (README, "Endpoints"). */
export const RUN_MARKER = 'sh readme-run';

/** The marked blocks' bodies, in order. Other fences (`sh`, `ts`, …) are left alone. */
export function runnableBlocks(markdown: string): string[] {
  const fence = /^```sh readme-run[ \t]*\n([\s\S]*?)^```[ \t]*$/gm;
  return [...markdown.matchAll(fence)].map((match) => match[1]!);
}

/** The shell variables the blocks assign at the start of a line (`AT=$(…)`, `BASE=${BASE:-…}`), each once. */
export function assignedVariables(script: string): string[] {
  return [...new Set([...script.matchAll(/^[ \t]*([A-Z][A-Z0-9_]*)=/gm)].map((match) => match[1]!))];
}

/**
 * One script for `bash -euo pipefail`: the blocks as they stand, between a prelude that makes curl
 * fail on any HTTP status of 400 or more (printing the body; a redirect is not an error) and names
 * the command that stopped the script, and an
 * epilogue that prints each variable the blocks assigned as `readme-run NAME=value` (an unset one
 * stops the script: -u).
 */
export function scriptOf(blocks: readonly string[]): string {
  const body = blocks.join('\n');
  const names = assignedVariables(body);
  return [
    '# Added by test/readme: a failed request fails the example that made it.',
    // An alias rather than a function, so that the ERR trap names the README's own command.
    'shopt -s expand_aliases',
    "alias curl='curl --fail-with-body --max-time 20'",
    `trap 'echo "readme-run: exit $? at: $BASH_COMMAND" >&2' ERR`,
    body,
    'trap - ERR',
    ...names.map((name) => `printf 'readme-run %s=%s\\n' ${name} "\${${name}}"`),
    '',
  ].join('\n');
}

/** The `readme-run NAME=value` lines of the script's output. */
export function capturedVariables(stdout: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const match of stdout.matchAll(/^readme-run ([A-Z][A-Z0-9_]*)=(.*)$/gm)) found.set(match[1]!, match[2]!);
  return found;
}
