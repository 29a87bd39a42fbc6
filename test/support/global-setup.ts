/**
 * Runs once per `vitest run`, in the main process: picks the MongoDB backend every test
 * file shares (each file uses its own database name), prints which one, and stops it.
 */
import type {} from 'vitest';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    mongoUri: string;
    mongoBackend: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // TEMPORARY while test/support/mongo.ts is being written: the lead replaces this with a static import.
  const modulePath = './mongo.js';
  const mongo = (await import(modulePath).catch(() => undefined)) as
    | { startMongoBackend(): Promise<{ uri: string; kind: string; description: string; stop(): Promise<void> }> }
    | undefined;
  if (!mongo) return async () => undefined;
  const backend = await mongo.startMongoBackend();
  console.log(`MongoDB backend: ${backend.description}`);
  project.provide('mongoUri', backend.uri);
  project.provide('mongoBackend', backend.kind);
  return () => backend.stop();
}
