/**
 * Issue 22 item 3: dist/ is built at install (`prepare`) and rebuilt only when a source is
 * newer than the last build, with one line printed when building. Run on a one-file project
 * with the real scripts/build.mjs and the real TypeScript compiler, so it stays quick.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script without declarations
import { staleReason } from '../../scripts/build.mjs';

const REPO = join(import.meta.dirname, '..', '..');
const root = mkdtempSync(join(tmpdir(), 'build-test-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function fixture(): void {
  mkdirSync(join(root, 'scripts'));
  mkdirSync(join(root, 'src', 'pages', 'templates'), { recursive: true });
  copyFileSync(join(REPO, 'scripts', 'build.mjs'), join(root, 'scripts', 'build.mjs'));
  symlinkSync(join(REPO, 'node_modules'), join(root, 'node_modules'));
  writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'fixture', private: true, type: 'module' }));
  writeFileSync(
    join(root, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { target: 'es2022', module: 'nodenext', outDir: 'dist', rootDir: '.', strict: true, types: [], skipLibCheck: true } }),
  );
  writeFileSync(join(root, 'tsconfig.build.json'), JSON.stringify({ extends: './tsconfig.json', include: ['src'] }));
  writeFileSync(join(root, 'src', 'main.ts'), 'export const answer: number = 42;\n');
  writeFileSync(join(root, 'src', 'pages', 'templates', 'page.eta'), '<p>hi</p>\n');
}

/** `npm start`'s first step: the build script, as package.json runs it. */
function runBuild(...args: string[]) {
  const result = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs'), ...args], { cwd: root, encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

const buildLines = (output: string) => output.split('\n').filter((line) => line.startsWith('build: '));

describe('the build (issue 22 item 3)', () => {
  it('package.json builds at install and before every start or script, through the one script', () => {
    const { scripts } = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(scripts.prepare).toBe('node scripts/build.mjs');
    expect(scripts.build).toBe('node scripts/build.mjs --always');
    for (const name of ['start', 'keys:rotate', 'keys:list', 'client:create', 'user:create']) {
      expect(scripts[name]).toMatch(/^node scripts\/build\.mjs && node dist\//);
    }
  });

  it('builds when dist/ is missing, printing one line, then not again until a source is newer', () => {
    fixture();
    const first = runBuild();
    expect(first.status).toBe(0);
    expect(buildLines(first.output)).toEqual([expect.stringMatching(/^build: compiling TypeScript into dist\/ \(no build yet\)/)]);
    expect(readFileSync(join(root, 'dist', 'src', 'main.js'), 'utf8')).toMatch(/42/);
    expect(existsSync(join(root, 'dist', 'src', 'pages', 'templates', 'page.eta'))).toBe(true);

    const again = runBuild();
    expect(again).toEqual({ status: 0, output: '' });

    // A source saved after the build: rebuilt, with the reason.
    writeFileSync(join(root, 'src', 'main.ts'), 'export const answer: number = 43;\n');
    const changed = runBuild();
    expect(buildLines(changed.output)).toEqual([expect.stringMatching(/\(sources changed since the last build\)/)]);
    expect(readFileSync(join(root, 'dist', 'src', 'main.js'), 'utf8')).toMatch(/43/);
    expect(runBuild()).toEqual({ status: 0, output: '' });

    // A source removed counts too (its folder's date changes).
    rmSync(join(root, 'src', 'pages', 'templates', 'page.eta'));
    expect(staleReason(root)).toBe('sources changed since the last build');
    // Two compilations: seconds on an idle machine, far more on a loaded one.
  }, 90_000);

  it('builds the verifier package into its own dist/ (ESM and declarations), and again once that is removed', () => {
    const repo = mkdtempSync(join(tmpdir(), 'build-workspace-'));
    try {
      const kit = join(repo, 'packages', 'verifier');
      mkdirSync(join(repo, 'scripts'));
      mkdirSync(join(repo, 'src'));
      mkdirSync(join(kit, 'src'), { recursive: true });
      copyFileSync(join(REPO, 'scripts', 'build.mjs'), join(repo, 'scripts', 'build.mjs'));
      symlinkSync(join(REPO, 'node_modules'), join(repo, 'node_modules'));
      writeFileSync(join(repo, 'package.json'), JSON.stringify({ name: 'fixture', private: true, type: 'module', workspaces: ['packages/*'] }));
      const compilerOptions = { target: 'es2022', module: 'nodenext', strict: true, types: [], skipLibCheck: true };
      writeFileSync(join(repo, 'tsconfig.json'), JSON.stringify({ compilerOptions: { ...compilerOptions, outDir: 'dist', rootDir: '.' } }));
      writeFileSync(join(repo, 'tsconfig.build.json'), JSON.stringify({ extends: './tsconfig.json', include: ['src'] }));
      writeFileSync(join(repo, 'src', 'main.ts'), 'export const answer: number = 42;\n');
      writeFileSync(join(kit, 'package.json'), JSON.stringify({ name: '@fixture/verifier', type: 'module' }));
      writeFileSync(
        join(kit, 'tsconfig.json'),
        JSON.stringify({ compilerOptions: { ...compilerOptions, rootDir: 'src', outDir: 'dist', declaration: true }, include: ['src'] }),
      );
      writeFileSync(join(kit, 'src', 'index.ts'), 'export function verify(token: string): boolean {\n  return token.length > 0;\n}\n');
      // A leftover of a removed source: the package is built from scratch, so it is not packed.
      mkdirSync(join(kit, 'dist'));
      writeFileSync(join(kit, 'dist', 'removed.js'), '');

      const build = () => spawnSync(process.execPath, [join(repo, 'scripts', 'build.mjs')], { cwd: repo, encoding: 'utf8' });
      expect(build().status).toBe(0);
      expect(readFileSync(join(kit, 'dist', 'index.js'), 'utf8')).toMatch(/export function verify/);
      expect(readFileSync(join(kit, 'dist', 'index.d.ts'), 'utf8')).toMatch(/export declare function verify\(token: string\): boolean/);
      expect(existsSync(join(kit, 'dist', 'removed.js'))).toBe(false);
      expect(existsSync(join(repo, 'dist', 'src', 'main.js'))).toBe(true);
      expect(staleReason(repo)).toBeUndefined();

      rmSync(join(kit, 'dist'), { recursive: true });
      expect(staleReason(repo)).toBe('no build of packages/verifier yet');
      expect(build().status).toBe(0);
      expect(existsSync(join(kit, 'dist', 'index.js'))).toBe(true);
    } finally {
      rmSync(repo, { recursive: true, force: true });
    }
  }, 120_000);

  it('does nothing where there are no sources yet (the Dockerfile runs npm ci before copying them)', () => {
    const empty = mkdtempSync(join(tmpdir(), 'build-empty-'));
    try {
      mkdirSync(join(empty, 'scripts'));
      copyFileSync(join(REPO, 'scripts', 'build.mjs'), join(empty, 'scripts', 'build.mjs'));
      const result = spawnSync(process.execPath, [join(empty, 'scripts', 'build.mjs')], { cwd: empty, encoding: 'utf8' });
      expect({ status: result.status, output: `${result.stdout}${result.stderr}` }).toEqual({ status: 0, output: '' });
      expect(existsSync(join(empty, 'dist'))).toBe(false);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
