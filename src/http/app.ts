/**
 * The Koa application, built from services that already exist: no globals, no config
 * reads, nothing started. `src/server.ts` builds the dependencies and owns the process.
 */
import Router from '@koa/router';
import Koa from 'koa';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import { MethodNotAllowedError, NotFoundError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Random } from '../random.js';
import { parseBody } from './middleware/body.js';
import { errorResponses } from './middleware/errors.js';
import { requestLog } from './middleware/request-log.js';
import { liveness, readiness, type ReadinessCheck } from './routes/health.js';

export interface AppDeps {
  readonly config: Pick<Config, 'bodyLimit'>;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly random: Random;
  readonly readiness: readonly ReadinessCheck[];
}

export function createApp(deps: AppDeps): Koa {
  const app = new Koa({ proxy: false });
  app.silent = true;

  const router = new Router();
  router.get('/healthz', liveness());
  router.get('/readyz', readiness(deps.readiness));

  app.use(requestLog(deps));
  app.use(errorResponses());
  app.use(parseBody({ limit: deps.config.bodyLimit }));
  app.use(routeMisses);
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}

/** Turns the router's bare 404/405/501 into errors in the one JSON format. */
async function routeMisses(ctx: Koa.Context, next: Koa.Next): Promise<void> {
  await next();
  if (ctx.body !== undefined && ctx.body !== null && ctx.body !== '') return;
  if (ctx.status === 405 || ctx.status === 501) {
    throw new MethodNotAllowedError('method not allowed on this endpoint', { headers: { Allow: ctx.response.get('Allow') } });
  }
  if (ctx.status === 404) throw new NotFoundError('no such endpoint');
}
