/**
 * OpenTelemetry traces (issue 19), started by `start.cts` before anything else loads, and
 * only when OTEL_EXPORTER_OTLP_ENDPOINT is set: without it this module and the SDK are
 * never loaded.
 *
 * Spans: one SERVER span per HTTP request (instrumentation-http; the route comes from the
 * Koa router, instrumentation-koa), a CLIENT span per Redis command (instrumentation-ioredis)
 * and per MongoDB command (instrumentation-mongodb) made inside a request, and `sign access
 * token` around each JWT signature (src/tokens/access-token.ts, with @opentelemetry/api
 * alone). Exported over OTLP (OTEL_EXPORTER_OTLP_PROTOCOL, http/protobuf by default) in
 * batches; OTEL_SERVICE_NAME overrides the service name `token-authority`. Everything
 * else the standard OTEL_* variables say (sampler, batch delay, headers) applies.
 *
 * Nothing secret reaches a span: Redis statements are the command name only (its arguments
 * are keys derived from token hashes and values such as hashes and ids), MongoDB statements
 * have their values replaced by `?` (the instrumentation's default without
 * enhancedDatabaseReporting), the query string of a request keeps its parameter names with
 * every value replaced (verification links and redirects carry codes and tokens there),
 * and no header is recorded (the instrumentation records none unless configured to).
 */
import sdkNode = require('@opentelemetry/sdk-node');
import http = require('@opentelemetry/instrumentation-http');
import ioredis = require('@opentelemetry/instrumentation-ioredis');
import koa = require('@opentelemetry/instrumentation-koa');
import mongodb = require('@opentelemetry/instrumentation-mongodb');
import type { IncomingMessage } from 'node:http';
import nodeModule = require('node:module');

const SERVICE_NAME = 'token-authority';
const REDACTED = '[redacted]';
/** Probes and scrapes: a span each every few seconds would drown the requests worth seeing. */
const UNTRACED_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

/** `a=1&b=2` → `a=[redacted]&b=[redacted]`: which parameters came, never their values. */
function redactQuery(search: string): string {
  return [...new URLSearchParams(search).keys()].map((name) => `${encodeURIComponent(name)}=${REDACTED}`).join('&');
}

function pathOf(request: IncomingMessage): string {
  const url = request.url ?? '/';
  const mark = url.indexOf('?');
  return mark === -1 ? url : url.slice(0, mark);
}

function instrumentations() {
  return [
    new http.HttpInstrumentation({
      ignoreIncomingRequestHook: (request) => UNTRACED_PATHS.has(pathOf(request)),
      // The service calls out with fetch (webhooks, back-channel logout, HIBP), which this
      // instrumentation does not see; what is left is the exporter's own requests.
      disableOutgoingRequestInstrumentation: true,
      // Applied after the instrumentation's own attributes, so it replaces `url.query`.
      startIncomingSpanHook: (request) => {
        const url = request.url ?? '';
        const mark = url.indexOf('?');
        return mark === -1 ? {} : { 'url.query': redactQuery(url.slice(mark + 1)) };
      },
    }),
    // Router layers only: a span for each of the ~15 middlewares of every request would cost
    // more than it tells; the router layer names the route (`http.route` on the server span).
    new koa.KoaInstrumentation({ ignoreLayersType: [koa.KoaLayerType.MIDDLEWARE] }),
    new ioredis.IORedisInstrumentation({ dbStatementSerializer: (command) => command }),
    new mongodb.MongoDBInstrumentation({ enhancedDatabaseReporting: false }),
  ];
}

/** Starts the SDK; `shutdown` exports the spans still in the batch (main.ts calls it before exiting). */
function startTracing(env: NodeJS.ProcessEnv): { shutdown(): Promise<void> } {
  const sdk = new sdkNode.NodeSDK({
    serviceName: env.OTEL_SERVICE_NAME || SERVICE_NAME,
    instrumentations: instrumentations(),
    // Traces only: the service's metrics are Prometheus's (src/metrics/), its logs pino's.
    metricReaders: [],
    logRecordProcessors: [],
  });
  sdk.start();
  // The instrumentations hook require(). The service is ES modules, whose imports of these
  // CommonJS packages do not pass through require(): loading them here, now, patches them,
  // and the service's imports later get these same module instances from the cache.
  const load = nodeModule.createRequire(__filename);
  load('ioredis');
  load('koa');
  load('mongoose');
  return { shutdown: () => sdk.shutdown() };
}

export = { startTracing };
