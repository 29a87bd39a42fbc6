/**
 * The composition root of the process, and with `start.cts` (which only sizes the thread
 * pool and calls `main`) the only module that reads `process.env` or exits the process:
 * it parses the config, builds the service (`compose.ts`), listens (`http-server.ts`) or
 * supervises workers (`cluster.ts`), and owns shutdown.
 */
import { writeAdminCredentials } from './dev/admin-credentials.js';
import { DEV_ADMIN_CLIENT_ID } from './dev/seed.js';
import cluster from 'node:cluster';
import { pathToFileURL } from 'node:url';
import { runPrimary } from './cluster.js';
import type { Clock } from './clock.js';
import { createService, type Service } from './compose.js';
import { ConfigError, misspelledVariables, parseConfig, type Config } from './config.js';
import { printDevHints } from './dev/hints.js';
import { listen } from './http-server.js';
import { startMetricsListener, type MetricsListener } from './metrics/start.js';
import { createLogger, type Logger } from './log.js';
import type { Random } from './random.js';

export interface RunningServer {
  readonly server: import('node:http').Server;
  readonly url: string;
  /** `GET /metrics` on its own listener, when METRICS_PORT is on (and this is not a cluster worker). */
  readonly metrics: MetricsListener | undefined;
  /** What it serves (its stores and services), for tests. */
  readonly service: Service;
  /** Stops accepting, lets in-flight requests finish (at most `shutdownTimeout`), closes the stores. */
  stop(): Promise<void>;
}

/** Starts the whole service for `config` and listens; used by `main` and by tests that need a real server. */
export async function startServer(config: Config, deps: { logger: Logger; clock?: Clock; random?: Random }): Promise<RunningServer> {
  const { logger } = deps;
  const service = await createService(config, deps);
  let listening;
  let metrics: MetricsListener | undefined;
  try {
    listening = await listen(service.app.callback(), config, logger);
    metrics = await startMetricsListener(config.metrics, service.metrics?.registry, logger).catch(async (err: unknown) => {
      await listening!.close();
      throw err;
    });
  } catch (err) {
    await service.close();
    throw err;
  }
  logger.info(
    {
      url: listening.url,
      issuer: config.issuer,
      production: config.production,
      // What libuv was given (start.cts sizes it); 4 is libuv's own default.
      threadPool: Number(process.env.UV_THREADPOOL_SIZE ?? 4),
      ...(cluster.isWorker && { worker: cluster.worker?.id }),
    },
    'listening',
  );
  const { embedded } = service.stores;
  if (service.seeded && embedded.length > 0) {
    logger.warn({ embedded }, `dev mode: ${embedded.join(', ')} are in memory; nothing is persisted and everything is lost on exit`);
  }
  const adminSecret = service.seeded?.adminClientSecret;
  if (adminSecret !== undefined) {
    // The CLI's credentials for the admin API (issue 22): KEYS_DIR is ours and git-ignored.
    await writeAdminCredentials(config.keysDir, { client_id: DEV_ADMIN_CLIENT_ID, client_secret: adminSecret, url: listening.url }).then(
      (file) => logger.info({ file }, 'dev mode: admin client credentials written for the CLI'),
      (err: unknown) =>
        logger.warn(
          { reason: (err as Error).message },
          'dev mode: could not write the admin client credentials; the CLI needs ADMIN_CLIENT_ID and ADMIN_CLIENT_SECRET',
        ),
    );
  }
  // Lines are buffered (src/log.ts): start-up's, the dev-mode warning among them, go out now,
  // before the dev hints.
  await new Promise<void>((resolve) => logger.flush(() => resolve()));
  if (service.seeded) printDevHints(config, service.seeded, (text) => process.stdout.write(text));

  let stopped: Promise<void> | undefined;
  return {
    server: listening.server,
    url: listening.url,
    metrics,
    service,
    stop() {
      stopped ??= (async () => {
        await Promise.all([listening.close(), metrics?.close()]);
        await service.close();
        logger.info('stopped');
      })();
      return stopped;
    },
  };
}

/** What src/telemetry/tracing.cts started. */
export interface Tracing {
  /** Exports the spans still in the batch. */
  shutdown(): Promise<void>;
}

export interface MainOptions {
  /** OpenTelemetry tracing, started by start.cts when OTEL_EXPORTER_OTLP_ENDPOINT is set: log lines get trace ids, and spans are exported before exit. */
  readonly tracing?: Tracing;
}

export async function main({ tracing }: MainOptions = {}): Promise<void> {
  let config: Config;
  try {
    config = parseConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const logger = createLogger({ level: config.logLevel, traceIds: tracing !== undefined });
  for (const { name, meant } of misspelledVariables(process.env)) {
    logger.warn({ variable: name, meant }, `${name} is not a variable this service reads (it is ignored); did you mean ${meant}?`);
  }
  if (config.workers > 1 && cluster.isPrimary) {
    await startMetricsListener(config.metrics, 'cluster', logger).catch((err: unknown) => {
      process.stderr.write(`start-up failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    });
    return runPrimary(config, logger, (code) => process.exit(code));
  }
  let running: RunningServer;
  try {
    running = await startServer(config, { logger });
  } catch (err) {
    logger.fatal({ err }, 'start-up failed');
    process.stderr.write(`start-up failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      logger.info({ signal }, 'shutting down');
      running
        .stop()
        .then(() => tracing?.shutdown())
        .then(
          () => process.exit(0),
          (err: unknown) => {
            logger.error({ err }, 'shutdown failed');
            process.exit(1);
          },
        );
    });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
