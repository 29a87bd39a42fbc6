#!/usr/bin/env node
// `npm test`: typecheck and lint, then the whole vitest suite, then exactly one closing line
// `N passed, N failed[, N skipped]`. A typecheck failure or a vitest crash counts as a failure.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const bin = (name) => join(import.meta.dirname, '..', 'node_modules', '.bin', name);
const args = process.argv.slice(2);
let failed = 0;

const typecheck = spawnSync(bin('tsc'), ['-p', 'tsconfig.json', '--noEmit'], { stdio: 'inherit' });
if (typecheck.status !== 0) {
  console.error('typecheck failed');
  failed += 1;
}

// The lint rules (eslint.config.js: typescript-eslint's recommended set and the layering of
// STYLE.md as import restrictions) and the formatter (.prettierrc.json), each one failure.
const lint = spawnSync(bin('eslint'), ['.'], { stdio: 'inherit' });
if (lint.status !== 0) {
  console.error('lint failed (npm run lint)');
  failed += 1;
}
const format = spawnSync(bin('prettier'), ['--check', '--log-level', 'warn', '.'], { stdio: 'inherit' });
if (format.status !== 0) {
  console.error('formatting differs (npm run format writes it)');
  failed += 1;
}

const dir = mkdtempSync(join(tmpdir(), 'vitest-summary-'));
const summaryFile = join(dir, 'results.json');
const run = spawnSync(bin('vitest'), ['run', ...args], {
  stdio: 'inherit',
  env: { ...process.env, VITEST_SUMMARY_FILE: summaryFile },
});

let passed = 0;
let skipped = 0;
try {
  const results = JSON.parse(readFileSync(summaryFile, 'utf8'));
  passed = results.numPassedTests;
  failed += results.numFailedTests;
  skipped = results.numPendingTests + results.numTodoTests;
  // Named again just above the closing line, so that its last lines tell which tests failed.
  for (const file of results.testResults ?? []) {
    for (const test of file.assertionResults ?? []) {
      if (test.status === 'failed') console.error(`failed: ${relative(process.cwd(), file.name)} > ${test.fullName}`);
    }
  }
  if (run.status !== 0 && results.numFailedTests === 0) {
    console.error(`vitest exited with status ${run.status} (unhandled errors or a failed suite): counted as one failure`);
    failed += 1;
  }
} catch {
  console.error(`vitest produced no results (exit status ${run.status}, signal ${run.signal}): counted as one failure`);
  failed += 1;
}
rmSync(dir, { recursive: true, force: true });

console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 ? 1 : 0);
