import type { Middleware } from 'koa';

/** Runs the rest of the request inside `scope` (src/events/origin.ts), so that security events know which request caused them. */
export function requestScope(scope: { run<T>(origin: { requestId: string; ip: string; userAgent: string | undefined }, work: () => T): T }): Middleware {
  return function inRequestScope(ctx, next) {
    return scope.run({ requestId: ctx.state.requestId, ip: ctx.ip, userAgent: ctx.get('User-Agent') || undefined }, next);
  };
}
