#!/usr/bin/env node
// Part of `npm run build`: tsc emits only JavaScript, so the hosted pages' templates and
// stylesheet are copied beside their compiled module (dist/src/pages/), where render.ts
// looks for them, as it does in src/pages/ under tsx and vitest.
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
for (const folder of ['templates', 'assets']) {
  const target = join(root, 'dist', 'src', 'pages', folder);
  rmSync(target, { recursive: true, force: true });
  cpSync(join(root, 'src', 'pages', folder), target, { recursive: true });
}
