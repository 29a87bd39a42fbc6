/**
 * The kit ships to resource servers on its own: it may import only `jose`, `lru-cache` (its
 * cache of verified tokens), Node built-ins and its own files, never the authority's
 * modules, Koa, Express or a database driver.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const DIR = join(import.meta.dirname, '..', '..', 'src', 'verifier');

describe('src/verifier', () => {
  it('imports nothing but jose, lru-cache, node: built-ins and its own files', () => {
    const files = readdirSync(DIR).filter((name) => name.endsWith('.ts'));
    expect(files).toContain('index.ts');
    const outside: string[] = [];
    for (const file of files) {
      const source = readFileSync(join(DIR, file), 'utf8');
      for (const [, specifier] of source.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]/g)) {
        const ok = specifier === 'jose' || specifier === 'lru-cache' || specifier!.startsWith('node:') || /^\.\/[\w-]+\.js$/.test(specifier!);
        if (!ok) outside.push(`${file}: ${specifier}`);
      }
      if (/\bimport\s*\(/.test(source) || /\brequire\s*\(/.test(source)) outside.push(`${file}: dynamic import`);
    }
    expect(outside).toEqual([]);
  });
});
