/**
 * Logging: pino, JSON lines. Every object logged passes through `redact`, which replaces
 * secret-bearing members at any depth, so a secret cannot reach the log by being nested
 * one level deeper than a path list anticipated.
 */
import { trace } from '@opentelemetry/api';
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** Member names whose values are secrets wherever they appear (compared lower-cased, `-` = `_`). */
const SECRET_KEYS = new Set([
  'authorization',
  'proxy_authorization',
  'cookie',
  'set_cookie',
  'password',
  'current_password',
  'new_password',
  'client_secret',
  'refresh_token',
  'access_token',
  'id_token',
  'token',
  'secret',
  'password_hash',
  'passwordhash',
  'secrethash',
  'secret_hash',
  'private_key',
  'privatekey',
  'privatejwk',
  'private_jwk',
]);

/** RFC 7518 §6.3.2 / §6.2.2 / RFC 8037 private members of a JWK. */
const PRIVATE_JWK_MEMBERS = new Set(['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']);

export const REDACTED = '[redacted]';
const PEM_PRIVATE = /-----BEGIN [A-Z ]*PRIVATE KEY-----/;
const MAX_DEPTH = 8;

/** Answers for member names already seen: the same few names are logged on every request. */
const secretKeyMemo = new Map<string, boolean>();
const SECRET_KEY_MEMO_LIMIT = 4096;

export function isSecretKey(key: string): boolean {
  let secret = secretKeyMemo.get(key);
  if (secret === undefined) {
    secret = SECRET_KEYS.has(key.toLowerCase().replace(/-/g, '_'));
    // Bounded: hostile input can make up any number of names.
    if (secretKeyMemo.size < SECRET_KEY_MEMO_LIMIT) secretKeyMemo.set(key, secret);
  }
  return secret;
}

/** A copy of `value` with secrets replaced by `[redacted]`, at any depth. */
export function redact(value: unknown, depth = 0, seen: WeakSet<object> = new WeakSet()): unknown {
  if (typeof value === 'string') return PEM_PRIVATE.test(value) ? REDACTED : value;
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return redactError(value, depth, seen);
  if (seen.has(value)) return '[circular]';
  if (depth >= MAX_DEPTH) return '[truncated]';
  seen.add(value);
  if (Array.isArray(value)) return value.map((item) => redact(item, depth + 1, seen));
  if (value instanceof Date || Buffer.isBuffer(value)) return value;
  const isJwk = typeof (value as { kty?: unknown }).kty === 'string';
  if (isCleanAndFlat(value as Record<string, unknown>, isJwk)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    out[key] = isSecretKey(key) || (isJwk && PRIVATE_JWK_MEMBERS.has(key)) ? REDACTED : redact(inner, depth + 1, seen);
  }
  return out;
}

/**
 * True when nothing in `value` needs replacing and nothing is nested: such an object (most
 * log lines, the per-request one included) is logged as it is, without a copy.
 */
function isCleanAndFlat(value: Record<string, unknown>, isJwk: boolean): boolean {
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    const inner = value[key];
    if (inner !== null && typeof inner === 'object') return false;
    if (isSecretKey(key) || (isJwk && PRIVATE_JWK_MEMBERS.has(key))) return false;
    if (typeof inner === 'string' && PEM_PRIVATE.test(inner)) return false;
  }
  return true;
}

function redactError(err: Error, depth: number, seen: WeakSet<object>): Record<string, unknown> {
  const out: Record<string, unknown> = { type: err.name, message: redact(err.message), stack: err.stack };
  for (const [key, inner] of Object.entries(err)) {
    out[key] = isSecretKey(key) ? REDACTED : redact(inner, depth + 1, seen);
  }
  if (err.cause !== undefined) out.cause = redact(err.cause, depth + 1, seen);
  return out;
}

export interface LoggerOptions {
  level: string;
  /** Where lines go: by default stdout, buffered (see `bufferedStdout`). Tests pass a stream to capture lines. */
  destination?: DestinationStream;
  /** Tracing is on: a line logged while a span is active carries its `trace_id` and `span_id`. */
  traceIds?: boolean;
}

/** The active span's ids, as OpenTelemetry's log correlation names them; none outside a span. */
function traceIdsOfActiveSpan(): Record<string, string> {
  const span = trace.getActiveSpan();
  if (span === undefined) return {};
  const { traceId, spanId } = span.spanContext();
  return { trace_id: traceId, span_id: spanId };
}

export function createLogger({ level, destination, traceIds = false }: LoggerOptions): Logger {
  return pino(
    {
      level,
      base: undefined,
      ...(traceIds && { mixin: traceIdsOfActiveSpan }),
      // Epoch milliseconds (pino's default): formatting an ISO date costs measurably per request.
      formatters: {
        level: (label) => ({ level: label }),
        log: (object) => redact(object) as Record<string, unknown>,
      },
      serializers: { err: (err: Error) => redactError(err, 0, new WeakSet()) },
    },
    destination ?? bufferedStdout(),
  );
}

/** Bytes kept before a write; a timer writes whatever is kept at least every FLUSH_MS. */
const BUFFER_BYTES = 4096;
const FLUSH_MS = 1000;

/**
 * stdout through sonic-boom, asynchronously and in 4 KiB writes: one write(2) (a libuv pool
 * job) per request line was a quarter of the JWKS endpoint's CPU. A line waits at most a
 * second when traffic is low; pino writes out what is kept, synchronously, on process exit.
 */
function bufferedStdout(): DestinationStream {
  const stream = pino.destination({ dest: 1, sync: false, minLength: BUFFER_BYTES });
  const timer = setInterval(() => {
    try {
      stream.flush();
    } catch {
      clearInterval(timer); // destroyed: nothing left to write
    }
  }, FLUSH_MS);
  timer.unref();
  return stream;
}
