import type { Context, Middleware } from 'koa';
import {
  InvalidRequestError,
  PayloadTooLargeError,
  TemporarilyUnavailableError,
  StoreUnavailableError,
  UnsupportedMediaTypeError,
  toOAuthError,
  type OAuthError,
} from '../../errors.js';
import type { Logger } from '../../log.js';

/**
 * The one place errors become responses: `{"error","error_description"}` with the error's
 * status and headers. Anything that is not an OAuthError becomes 500 `server_error`; its
 * cause is logged, never sent.
 */
export function errorResponses({ logger }: { logger: Logger }): Middleware {
  return async function writeErrors(ctx, next) {
    try {
      await next();
    } catch (thrown) {
      const err = classify(thrown);
      const reqId = ctx.state.requestId;
      if (err.status >= 500) {
        logger.error({ reqId, err: err.cause ?? err, rootCause: rootCause(err), code: err.code, detail: err.detail }, 'request failed');
      } else {
        logger.info({ reqId, code: err.code, detail: err.detail }, 'request rejected');
      }
      ctx.status = err.status;
      ctx.set(err.headers);
      ctx.set('Cache-Control', 'no-store');
      ctx.body = err.toJSON();
      // Only a body something began to read: Node drains one nobody touched by itself.
      if (ctx.req.readableDidRead && !ctx.req.complete) discardRestOfBody(ctx);
    }
  };
}

/**
 * A request whose body was abandoned midway (a decoder failed on its first chunk, a chunked
 * body outgrew the limit) cannot be followed by another on the same connection: Node does
 * not drain a body that was being read, so the rest would sit in the socket and the next
 * request sent on it would be lost. The rest is discarded and the connection closes after
 * this answer, which says so.
 */
function discardRestOfBody(ctx: Context): void {
  ctx.set('Connection', 'close');
  ctx.req.unpipe();
  ctx.req.resume();
}

/**
 * The innermost cause's name, code and message (say ioredis's "Connection is closed." or
 * ECONNREFUSED): what an operator needs to tell a timeout from a refused connection, which
 * the serialised error chain does not show once it loops back on itself.
 */
function rootCause(err: Error): { name: string; code?: string; message: string } | undefined {
  const seen = new Set<unknown>();
  let current: unknown = err;
  while (current instanceof Error && current.cause !== undefined && !seen.has(current)) {
    seen.add(current);
    current = current.cause;
  }
  if (current === err || !(current instanceof Error)) return undefined;
  const code = (current as { code?: unknown }).code;
  return { name: current.name, ...(typeof code === 'string' && { code }), message: current.message.slice(0, 300) };
}

/** Errors raised below us that are not ours: body parser failures, store outages. */
function classify(thrown: unknown): OAuthError {
  if (thrown instanceof StoreUnavailableError) {
    return new TemporarilyUnavailableError(undefined, { cause: thrown, detail: thrown.message });
  }
  const foreign = thrown as { status?: unknown; type?: unknown; expose?: unknown } | null;
  if (foreign && typeof foreign === 'object' && !(thrown instanceof InvalidRequestError)) {
    switch (foreign.type) {
      case 'entity.parse.failed':
        return new InvalidRequestError('the request body is not valid JSON');
      case 'entity.too.large':
        return new PayloadTooLargeError('the request body is too large');
      case 'charset.unsupported':
      case 'encoding.unsupported':
        return new UnsupportedMediaTypeError('unsupported body charset or encoding');
      case 'request.aborted':
      case 'request.size.invalid':
        return new InvalidRequestError('the request body is incomplete');
      default:
        // inflation (under koa-bodyparser) refuses an encoding it does not know with a
        // bare Error carrying status 415 and no type.
        if (foreign.status === 415 && thrown instanceof Error && thrown.message.startsWith('Unsupported Content-Encoding')) {
          return new UnsupportedMediaTypeError('unsupported Content-Encoding (send identity, gzip, deflate or br)');
        }
        // A body that does not decode under its Content-Encoding: zlib (gzip, deflate)
        // and brotli errors carry only their code.
        if (typeof (foreign as { code?: unknown }).code === 'string' && /^(Z_|ERR__ERROR)/.test((foreign as { code: string }).code)) {
          return new InvalidRequestError('the request body does not decode as its Content-Encoding says');
        }
        // co-body marks a JSON syntax error with status 400 and no type; its parser
        // (bourne) also refuses `__proto__` keys outright, as prototype poisoning.
        if (thrown instanceof SyntaxError && foreign.status === 400) {
          return new InvalidRequestError(
            /prototype/i.test(thrown.message) ? 'the JSON body contains a forbidden key (__proto__)' : 'the request body is not valid JSON',
          );
        }
        break;
    }
  }
  return toOAuthError(thrown);
}
