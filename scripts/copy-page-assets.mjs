#!/usr/bin/env node
// Part of `npm run build`: tsc emits only JavaScript, so the hosted pages' templates and
// stylesheet are copied beside their compiled module (dist/src/pages/), where render.ts
// looks for them, as it does in src/pages/ under tsx and vitest.
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
// The mail templates (src/mail/templates/) travel the same way.
for (const folder of ['pages/templates', 'pages/assets', 'mail/templates']) {
  const target = join(root, 'dist', 'src', folder);
  rmSync(target, { recursive: true, force: true });
  cpSync(join(root, 'src', folder), target, { recursive: true });
}
