// The lint rules the code already follows, run by `npm test` (scripts/test.mjs): typescript-eslint's
// recommended set, plus the layering STYLE.md asks for as import restrictions, so a route that
// reaches into a store, or a verifier kit that imports the server, fails the suite.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// A later block replaces an earlier one's no-restricted-imports, so each block lists every
// pattern that applies to its files.
const notTests = { regex: '(^|/)test/|^vitest$', message: 'production code does not import test code' };
const layer = (files, regex, message) => ({
  files,
  rules: { 'no-restricted-imports': ['error', { patterns: [notTests, ...(regex ? [{ regex, message }] : [])] }] },
});

export default tseslint.config(
  { ignores: ['dist/**', 'packages/*/dist/**', 'node_modules/**', 'packages/*/node_modules/**', 'test/artifacts/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        Buffer: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        URL: 'readonly',
        URLSearchParams: 'readonly',
        fetch: 'readonly',
        Request: 'readonly',
        Response: 'readonly',
        Headers: 'readonly',
        AbortController: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        structuredClone: 'readonly',
        queueMicrotask: 'readonly',
        performance: 'readonly',
        crypto: 'readonly',
        document: 'readonly',
        window: 'readonly',
        sessionStorage: 'readonly',
        localStorage: 'readonly',
        location: 'readonly',
        history: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
      eqeqeq: ['error', 'always'],
      'no-console': ['error', { allow: ['error', 'warn', 'log'] }],
    },
  },
  // `import x = require()` is how a CommonJS TypeScript entry imports (start.cts).
  { files: ['**/*.cts'], rules: { '@typescript-eslint/no-require-imports': 'off' } },
  layer(['src/**']),
  layer(['src/http/**'], '(^|/)stores/', 'src/http talks to services, never to a store (STYLE.md)'),
  layer(['packages/verifier/src/**'], '^\\.\\./', 'the verifier package imports nothing from outside its own src/'),
  layer(['src/stores/**'], '(^|/)http/|^koa$|^@koa/', 'stores do not know about HTTP'),
);
