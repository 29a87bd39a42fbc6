/**
 * The process entry of `npm start` and the container: sizes libuv's thread pool, then
 * starts `main.js`.
 *
 * RS256 signing and argon2 run on that pool. libuv's default of 4 threads caps a process
 * at 4 cores of crypto on a large machine and, on a small one, has more threads than cores
 * taking turns (measured with `npm run bench` on 2 cores: 2 threads gave the token endpoint
 * 13% more tokens per second than 4). So the pool gets one thread per available core,
 * shared out among WORKERS (`thread-pool.cts`), unless UV_THREADPOOL_SIZE is set.
 *
 * libuv reads the variable once, when the pool is first used, and an ES module entry uses
 * it to load its own imports. This file is CommonJS, which loads synchronously, so the
 * variable is in place before anything touches the pool. For the same reason it starts
 * OpenTelemetry tracing, when OTEL_EXPORTER_OTLP_ENDPOINT asks for it, before the modules
 * it instruments are loaded.
 */
import os = require('node:os');
import nodeModule = require('node:module');
import pool = require('./thread-pool.cjs');

if (!process.env.UV_THREADPOOL_SIZE) {
  // Cluster workers inherit it from the primary, which runs this first.
  process.env.UV_THREADPOOL_SIZE = String(pool.threadPoolSize(os.availableParallelism(), process.env.WORKERS));
}

// Tracing (src/telemetry/tracing.cts) hooks the packages it instruments, so it starts before
// main.js loads them; without an endpoint neither it nor the OpenTelemetry SDK is loaded.
const tracing = process.env.OTEL_EXPORTER_OTLP_ENDPOINT
  ? (nodeModule.createRequire(__filename)('./telemetry/tracing.cjs') as typeof import('./telemetry/tracing.cjs')).startTracing(process.env)
  : undefined;

import('./main.js').then(
  (server) => server.main({ tracing }),
  (err: unknown) => {
    process.stderr.write(`start-up failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
