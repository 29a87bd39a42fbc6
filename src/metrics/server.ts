/**
 * `GET /metrics` on a listener of its own (METRICS_HOST:METRICS_PORT), never the public
 * one: the public app has no such route, and this one serves nothing else.
 */
import { createServer } from 'node:http';
import type { MetricsConfig } from '../config.js';
import type { Logger } from '../log.js';

export type Exposition = () => Promise<{ contentType: string; body: string }>;

export interface MetricsListener {
  readonly url: string;
  close(): Promise<void>;
}

/** The exposition of one registry. */
export const registryExposition =
  (registry: { contentType: string; metrics(): Promise<string> }): Exposition =>
  async () => ({ contentType: registry.contentType, body: await registry.metrics() });

export async function listenMetrics(expose: Exposition, config: Pick<MetricsConfig, 'host' | 'port'>, logger: Logger): Promise<MetricsListener> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"error":"not_found","error_description":"only GET /metrics is served here"}');
      return;
    }
    expose().then(
      ({ contentType, body }) => {
        res.writeHead(200, { 'Content-Type': contentType, 'Cache-Control': 'no-store' }).end(req.method === 'HEAD' ? undefined : body);
      },
      (err: unknown) => {
        logger.error({ err }, 'metrics: collecting failed');
        res.writeHead(500, { 'Content-Type': 'application/json' }).end('{"error":"server_error","error_description":"collecting the metrics failed"}');
      },
    );
  });
  // Scrapes are short and regular: idle keep-alive sockets are not kept long.
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(`METRICS_HOST/METRICS_PORT: cannot listen on ${config.host}:${config.port} (${err.code ?? err.message})`, { cause: err })),
    );
    server.listen(config.port, config.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}/metrics`;
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
