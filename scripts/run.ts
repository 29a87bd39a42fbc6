/**
 * How every admin script ends: its exit code, or one line on stderr naming the script and
 * the problem (never a stack trace) with the code `describe` assigns to the error.
 */
export function runScript(name: string, main: () => Promise<number>, describe: (err: unknown) => { message: string; code: number }): void {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      const { message, code } = describe(err);
      console.error(`${name}: ${message}`);
      process.exitCode = code;
    },
  );
}

/** `--help` / `-h` anywhere: the usage on stdout and exit 0, before anything else is read. */
export function answerHelp(usage: string): boolean {
  if (!process.argv.slice(2).some((arg) => arg === '--help' || arg === '-h')) return false;
  process.stdout.write(`${usage.trim()}\n`);
  return true;
}
