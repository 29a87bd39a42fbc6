/**
 * Spans the service makes itself, through @opentelemetry/api alone: without the SDK
 * (OTEL_EXPORTER_OTLP_ENDPOINT unset, src/telemetry/tracing.cts) the API's tracer is a
 * no-op and these cost a call each.
 */
import { SpanStatusCode, trace } from '@opentelemetry/api';

const tracer = trace.getTracer('token-authority');

/**
 * Runs `sign` inside a span `name`, a child of the request's span. `attributes` name the key
 * (kid, alg), never anything signed: the payload holds claims about the user.
 */
export async function traceSigning<T>(name: string, attributes: { kid: string; alg: string }, sign: () => Promise<T> | T): Promise<T> {
  const span = tracer.startSpan(name, { attributes: { 'jwt.kid': attributes.kid, 'jwt.alg': attributes.alg } });
  try {
    return await sign();
  } catch (err) {
    span.setStatus({ code: SpanStatusCode.ERROR });
    throw err;
  } finally {
    span.end();
  }
}
