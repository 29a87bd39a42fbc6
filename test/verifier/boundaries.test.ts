/**
 * The kit ships to resource servers on its own, as the package @token-authority/verifier
 * (packages/verifier, issue 22 item 8): it may import only `jose`, Node built-ins and its own
 * files, never the authority's modules, Koa, Express or a database driver, and it depends on
 * `jose` alone.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const PACKAGE = join(import.meta.dirname, '..', '..', 'packages', 'verifier');
const DIR = join(PACKAGE, 'src');

describe('packages/verifier', () => {
  it('imports nothing but jose, node: built-ins and its own files', () => {
    const files = readdirSync(DIR).filter((name) => name.endsWith('.ts'));
    expect(files).toContain('index.ts');
    const outside: string[] = [];
    for (const file of files) {
      const source = readFileSync(join(DIR, file), 'utf8');
      for (const [, specifier] of source.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]/g)) {
        const ok = specifier === 'jose' || specifier!.startsWith('node:') || /^\.\/[\w-]+\.js$/.test(specifier!);
        if (!ok) outside.push(`${file}: ${specifier}`);
      }
      if (/\bimport\s*\(/.test(source) || /\brequire\s*\(/.test(source)) outside.push(`${file}: dynamic import`);
    }
    expect(outside).toEqual([]);
  });

  it('depends on jose alone', () => {
    const manifest = JSON.parse(readFileSync(join(PACKAGE, 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(Object.keys(manifest.dependencies as object)).toEqual(['jose']);
    expect(manifest.peerDependencies).toBeUndefined();
    expect(manifest.optionalDependencies).toBeUndefined();
    // The authority's own jose satisfies the kit's range: one copy in the workspace.
    const root = JSON.parse(readFileSync(join(PACKAGE, '..', '..', 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect((manifest.dependencies as Record<string, string>).jose).toBe(root.dependencies.jose);
  });
});
