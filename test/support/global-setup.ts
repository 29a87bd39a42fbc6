/**
 * Runs once per `vitest run`, in the main process: picks the MongoDB backend every test
 * file shares (each file uses its own database name), prints which one, and stops it.
 */
import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { startMongoBackend } from './mongo.js';

declare module 'vitest' {
  export interface ProvidedContext {
    mongoUri: string;
    mongoBackend: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const backend = await startMongoBackend();
  console.log(`MongoDB backend: ${backend.description}`);
  project.provide('mongoUri', backend.uri);
  project.provide('mongoBackend', backend.kind);
  return () => backend.stop();
}
