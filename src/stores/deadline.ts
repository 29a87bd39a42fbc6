import { StoreUnavailableError } from '../errors.js';

/**
 * `promise`, or a StoreUnavailableError of `store` (503 `temporarily_unavailable`) once `ms`
 * pass without it settling; undefined = no limit. The work itself goes on: only reads,
 * whose late answer changes nothing, are bounded this way.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number | undefined, store: string): Promise<T> {
  if (ms === undefined) return promise;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StoreUnavailableError(store, { cause: new Error(`no answer within ${ms} ms`) })), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
