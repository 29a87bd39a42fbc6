import type { Middleware } from 'koa';
import type { Clock } from '../../clock.js';
import type { Logger } from '../../log.js';
import type { Random } from '../../random.js';

const REQUEST_ID = /^[\w.:-]{1,128}$/;

/**
 * Gives every request an id (the caller's `x-request-id` when it is sane, else a UUID),
 * echoes it, and writes one log line when the response is done. The query string is
 * never logged: it may carry tokens.
 */
export function requestLog({ logger, clock, random }: { logger: Logger; clock: Clock; random: Random }): Middleware {
  return async function logRequest(ctx, next) {
    const started = clock.now();
    const incoming = ctx.get('x-request-id');
    const requestId = REQUEST_ID.test(incoming) ? incoming : random.uuid();
    ctx.state.requestId = requestId;
    try {
      await next();
    } finally {
      // Set on the way out, not in: a handler that writes its response itself (the public
      // documents) puts the id in its own header list, and writeHead is cheapest when no
      // header was set before it.
      if (!ctx.headerSent) ctx.set('X-Request-Id', requestId);
      // One flat object, no child logger per request: this runs on every request.
      logger.info(
        {
          reqId: requestId,
          method: ctx.method,
          // A matched route logs its template (`/auth/sessions/:id`), never the values in it;
          // any other path may hold what a client should not have put there (a token).
          ...(ctx._matchedRoute !== undefined ? { route: ctx._matchedRoute } : { route: '(no route)', path: safePath(ctx.path) }),
          status: ctx.status,
          latencyMs: clock.now() - started,
        },
        'request',
      );
    }
  };
}

/** Segments that could be a secret (16+ characters, or any with a dot or `=`) redacted, the whole cut to 200. */
function safePath(path: string): string {
  return path
    .slice(0, 200)
    .split('/')
    .map((segment) => (segment.length >= 16 || /[.=%]/.test(segment) ? '[redacted]' : segment))
    .join('/');
}

declare module 'koa' {
  interface DefaultState {
    requestId: string;
  }
  interface ExtendableContext {
    _matchedRoute?: string | RegExp;
  }
}
