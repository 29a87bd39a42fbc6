import cluster from 'node:cluster';
import type { Config } from './config.js';
import type { Logger } from './log.js';

/**
 * Cluster mode (`WORKERS` > 1): this process only supervises. Each worker runs the whole
 * service on the shared port; the stores are shared (Redis, MongoDB) and every worker
 * watches the key folder itself. A worker that dies is replaced, unless workers keep dying
 * (a crash loop), which ends the service with exit 1, as one process that cannot start
 * would: 2 × WORKERS workers in a row that exit before they listen (a store that is
 * unreachable fails each start only after its connect timeout), or more than that many
 * exits within 10 s. Replacements after failed starts wait a little longer each time.
 * SIGTERM/SIGINT are passed on; each worker drains its own requests, and the primary exits
 * 0 once all have exited.
 */
export function runPrimary(config: Pick<Config, 'workers' | 'shutdownTimeout'>, logger: Logger, exit: (code: number) => never): void {
  let stopping = false;
  let alive = 0;
  const quickDeaths: number[] = [];
  const listened = new Set<number>();
  let failedStarts = 0;
  const fork = () => {
    alive += 1;
    cluster.fork();
  };
  cluster.on('listening', (worker) => {
    listened.add(worker.id);
    failedStarts = 0;
  });
  cluster.on('exit', (worker, code, signal) => {
    alive -= 1;
    if (stopping) {
      if (alive === 0) {
        logger.info('all workers stopped');
        exit(0);
      }
      return;
    }
    const now = Date.now();
    quickDeaths.push(now);
    while (quickDeaths.length > 0 && quickDeaths[0]! < now - 10_000) quickDeaths.shift();
    const started = listened.delete(worker.id);
    if (!started) failedStarts += 1;
    if (failedStarts >= config.workers * 2 || quickDeaths.length > config.workers * 2) {
      logger.fatal({ code, signal, failedStarts }, started ? 'workers keep exiting right after start; giving up' : 'workers keep failing to start; giving up');
      exit(1);
    }
    const delayMs = started ? 0 : Math.min(250 * 2 ** failedStarts, 5000);
    logger.error({ worker: worker.id, code, signal, delayMs }, 'worker exited; starting a new one');
    setTimeout(() => {
      if (!stopping) fork();
    }, delayMs);
  });
  for (let index = 0; index < config.workers; index += 1) fork();
  logger.info({ workers: config.workers }, 'cluster primary started');
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      stopping = true;
      logger.info({ signal }, 'shutting down workers');
      if (alive === 0) exit(0); // only replacements waiting to be forked
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
      setTimeout(
        () => {
          logger.error('workers did not stop in time');
          exit(1);
        },
        (config.shutdownTimeout + 5) * 1000,
      ).unref();
    });
  }
}
