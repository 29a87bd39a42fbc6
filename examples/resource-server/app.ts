/**
 * A tiny API protected by the authority's access tokens, verified offline with the kit:
 * one public route, one for any valid token, one for tokens carrying the role `admin`.
 * Browser apps on `corsOrigins` may call it (Bearer tokens, never cookies: no credentials).
 */
import cors from '@koa/cors';
import Router from '@koa/router';
import Koa from 'koa';
import { koa, type Verifier } from '../../packages/verifier/src/index.js';

export function createResourceServer({
  verifier,
  corsOrigins = [],
}: {
  verifier: Pick<Verifier, 'verify'>;
  corsOrigins?: readonly string[];
}): Koa<koa.TokenState> {
  const app = new Koa<koa.TokenState>();
  if (corsOrigins.length > 0)
    app.use(cors({ origin: (ctx) => (corsOrigins.includes(ctx.get('Origin')) ? ctx.get('Origin') : ''), allowHeaders: ['Authorization'] }));
  const router = new Router<koa.TokenState>();

  router.get('/public', (ctx) => {
    ctx.body = { message: 'anyone may read this' };
  });

  router.get('/me', koa.requireToken(verifier), (ctx) => {
    const { sub, client_id, scope, roles, email, exp } = ctx.state.token;
    ctx.body = { sub, client_id, scope: [...scope], roles, email, exp };
  });

  router.get('/admin', koa.requireToken(verifier), koa.requireRole('admin'), (ctx) => {
    ctx.body = { message: `welcome, admin ${ctx.state.token.sub}` };
  });

  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
