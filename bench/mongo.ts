/**
 * The test harness's MongoDB (`startMongoBackend`: MONGODB_TEST_URI, else
 * mongodb-memory-server, else the in-process wire-protocol emulator) in a process of its
 * own, so that its CPU is neither the load generator's nor the authority's and can be
 * measured apart. Started by `bench/run.ts`; sends `{ type: 'ready', uri, kind,
 * description }` over IPC and stops the backend on SIGTERM, SIGINT or when the parent goes.
 */
import { startMongoBackend } from '../test/support/mongo.js';

const backend = await startMongoBackend();
let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  backend.stop().finally(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
process.once('disconnect', stop);
process.send?.({ type: 'ready', uri: backend.uri, kind: backend.kind, description: backend.description });
