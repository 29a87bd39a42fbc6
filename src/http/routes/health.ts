import type { Middleware } from 'koa';

/** One part of readiness: a store ping, or "a signing key is loaded". */
export interface ReadinessCheck {
  readonly name: string;
  /** Resolves when the part is ready; rejects (or resolves false) when it is not. */
  check(): Promise<unknown> | unknown;
}

const CHECK_TIMEOUT_MS = 2000;

/** GET /healthz: the process is alive and serving; depends on nothing. */
export function liveness(): Middleware {
  return function healthz(ctx) {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok' };
  };
}

/** GET /readyz: every check passes within a deadline, else 503 naming the failing parts. */
export function readiness(checks: readonly ReadinessCheck[]): Middleware {
  return async function readyz(ctx) {
    const results = await Promise.all(checks.map(async ({ name, check }) => [name, await runCheck(check)] as const));
    const failing = results.filter(([, ok]) => !ok).map(([name]) => name);
    ctx.set('Cache-Control', 'no-store');
    const status = Object.fromEntries(results.map(([name, ok]) => [name, ok ? 'ok' : 'failing']));
    if (failing.length > 0) {
      ctx.status = 503;
      ctx.body = { error: 'temporarily_unavailable', error_description: `not ready: ${failing.join(', ')}`, checks: status };
      return;
    }
    ctx.body = { status: 'ready', checks: status };
  };
}

async function runCheck(check: ReadinessCheck['check']): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), CHECK_TIMEOUT_MS);
    });
    const result = await Promise.race([Promise.resolve().then(check), timeout]);
    return result !== false;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
