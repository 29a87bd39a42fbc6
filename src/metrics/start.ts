import cluster from 'node:cluster';
import type { Registry } from 'prom-client';
import type { MetricsConfig } from '../config.js';
import type { Logger } from '../log.js';
import { clusterExposition, shareWithPrimary } from './cluster.js';
import { listenMetrics, registryExposition, type MetricsListener } from './server.js';

export type { MetricsListener };

/**
 * The metrics listener of this process: the service's own registry in a single process,
 * the aggregate of the workers' in a cluster primary (`'cluster'`), none in a worker (it
 * hands its registry to the primary). A METRICS_PORT that was set and cannot be listened on
 * stops start-up; the dev-mode default port only warns (another dev server may hold it).
 */
export async function startMetricsListener(
  config: MetricsConfig,
  source: Registry | 'cluster' | undefined,
  logger: Logger,
): Promise<MetricsListener | undefined> {
  if (config.port === undefined || source === undefined) return undefined;
  if (source !== 'cluster' && cluster.isWorker) {
    shareWithPrimary(source);
    return undefined;
  }
  const expose = source === 'cluster' ? clusterExposition() : registryExposition(source);
  try {
    const listener = await listenMetrics(expose, config, logger);
    logger.info({ url: listener.url }, 'metrics listening');
    return listener;
  } catch (err) {
    if (config.explicit) throw err;
    logger.warn({ reason: err instanceof Error ? err.message : String(err) }, 'metrics: the default dev port is taken; no /metrics (set METRICS_PORT)');
    return undefined;
  }
}
