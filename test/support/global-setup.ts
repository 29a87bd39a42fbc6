/**
 * Runs once per `vitest run`, in the main process: picks the MongoDB backend every test
 * file shares (each file uses its own database name), prints which one, and stops it; and
 * makes the self-signed certificate test servers behind TLS use (`tls.ts`), before the
 * test processes start, so that they trust it.
 */
import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { startMongoBackend } from './mongo.js';
import { makeTestCertificate } from './tls.js';

declare module 'vitest' {
  export interface ProvidedContext {
    mongoUri: string;
    mongoBackend: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const removeCertificate = makeTestCertificate();
  const backend = await startMongoBackend();
  console.log(`MongoDB backend: ${backend.description}`);
  project.provide('mongoUri', backend.uri);
  project.provide('mongoBackend', backend.kind);
  return async () => {
    await backend.stop();
    removeCertificate();
  };
}
