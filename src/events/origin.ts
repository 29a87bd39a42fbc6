/**
 * The request an event comes from. The HTTP layer runs each request inside `run` (one
 * middleware, `http/middleware/request-scope.ts`), and code deep in a service that emits an
 * event reads `current()`: the request id, address and user agent need not be threaded
 * through every call. One instance per service, made in compose.ts (no module-level state).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { RequestOrigin } from './types.js';

export interface RequestScope {
  run<T>(origin: RequestOrigin, work: () => T): T;
  current(): RequestOrigin | undefined;
}

export function createRequestScope(): RequestScope {
  const storage = new AsyncLocalStorage<RequestOrigin>();
  return {
    run: (origin, work) => storage.run(origin, work),
    current: () => storage.getStore(),
  };
}
