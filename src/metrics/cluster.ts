/**
 * Metrics with WORKERS > 1: each worker keeps its own registry and answers the primary's
 * requests for it over the cluster IPC channel; the primary serves their aggregate (sums
 * for counters and histograms, the aggregator each gauge names otherwise). prom-client's
 * cluster support does both halves.
 */
import { AggregatorRegistry, type Registry } from 'prom-client';

/** In a worker: the registry the primary will ask for. */
export function shareWithPrimary(registry: Registry): void {
  AggregatorRegistry.setRegistries(registry);
  // Constructing one installs the worker's IPC listener (prom-client does it nowhere else).
  new AggregatorRegistry();
}

/** In the primary: the exposition of every connected worker's registry, aggregated. */
export function clusterExposition(): () => Promise<{ contentType: string; body: string }> {
  const aggregator = new AggregatorRegistry();
  return async () => ({ contentType: aggregator.contentType, body: await aggregator.clusterMetrics() });
}
