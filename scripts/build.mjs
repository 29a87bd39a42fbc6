#!/usr/bin/env node
// Builds dist/ (tsc, then the hosted pages' templates and assets beside their module), but
// only when a source is newer than the last build: `npm install` builds once (`prepare`),
// and `npm start` and every admin script start at once afterwards (issue 22 item 3).
// Prints one line when it builds, nothing when dist/ is current. `--always` builds anyway
// (`npm run build`). Plain JavaScript: it runs before anything is compiled.
// It also builds the workspace package packages/verifier (the resource-server kit, published
// as @token-authority/verifier) into its own dist/: ESM with type declarations (issue 22 item 8).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** What the build reads: the folders tsconfig.build.json includes and the configs. */
const SOURCES = ['src', 'scripts', 'tsconfig.json', 'tsconfig.build.json', 'packages/verifier/src', 'packages/verifier/tsconfig.json'];
/** The verifier package, built on its own (its package.json's `build` does the same). */
export const VERIFIER = join('packages', 'verifier');
/** Written after a successful build; its mtime is the build's time. */
export const STAMP = join('dist', '.build-stamp');

/** The newest mtime (ms) among the sources, directories included: removing a file changes its folder's. */
export function newestSource(root) {
  let newest = 0;
  const visit = (path) => {
    let info;
    try {
      info = statSync(path);
    } catch {
      return;
    }
    newest = Math.max(newest, info.mtimeMs);
    if (info.isDirectory()) for (const name of readdirSync(path)) visit(join(path, name));
  };
  for (const source of SOURCES) visit(join(root, source));
  return newest;
}

/** Why `root` needs a build, or undefined when dist/ is current. */
export function staleReason(root) {
  const stamp = join(root, STAMP);
  if (!existsSync(stamp)) return 'no build yet';
  if (existsSync(join(root, VERIFIER, 'src')) && !existsSync(join(root, VERIFIER, 'dist', 'index.js'))) return 'no build of packages/verifier yet';
  return newestSource(root) > statSync(stamp).mtimeMs ? 'sources changed since the last build' : undefined;
}

export function build(root, { always = false, log = (line) => process.stderr.write(`${line}\n`) } = {}) {
  // `npm ci` in the Dockerfile runs `prepare` before the sources are copied in: nothing to build yet.
  if (!existsSync(join(root, 'src'))) return 0;
  const reason = always ? 'npm run build' : staleReason(root);
  if (reason === undefined) return 0;
  let tsc;
  try {
    tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
  } catch {
    log('build: the TypeScript compiler is not installed (npm install installs it); cannot build dist/');
    return 1;
  }
  log(`build: compiling TypeScript into dist/ (${reason}); this takes a while once, later starts skip it`);
  // The stamp gets the time the build began: a source saved while it ran is newer, so rebuilt next time.
  const began = new Date();
  // The package first, from scratch, so that a removed source leaves nothing behind in its tarball.
  if (existsSync(join(root, VERIFIER, 'src'))) {
    rmSync(join(root, VERIFIER, 'dist'), { recursive: true, force: true });
    const kit = spawnSync(process.execPath, [tsc, '-p', join(root, VERIFIER, 'tsconfig.json')], { cwd: root, stdio: 'inherit' });
    if (kit.status !== 0) return kit.status ?? 1;
  }
  const compiled = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' });
  if (compiled.status !== 0) return compiled.status ?? 1;
  // tsc emits only JavaScript: the pages' templates and stylesheet go beside their compiled
  // module (dist/src/pages/), where render.ts looks for them, as in src/pages/ under tsx;
  // the mail templates (src/mail/templates/) travel the same way.
  for (const folder of ['pages/templates', 'pages/assets', 'mail/templates']) {
    const from = join(root, 'src', folder);
    if (!existsSync(from)) continue;
    const target = join(root, 'dist', 'src', folder);
    rmSync(target, { recursive: true, force: true });
    cpSync(from, target, { recursive: true });
  }
  mkdirSync(join(root, 'dist'), { recursive: true });
  writeFileSync(join(root, STAMP), `${began.toISOString()}\n`);
  utimesSync(join(root, STAMP), began, began);
  return 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.exitCode = build(join(import.meta.dirname, '..'), { always: process.argv.includes('--always') });
}
