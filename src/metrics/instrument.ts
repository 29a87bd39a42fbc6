/**
 * Metrics wrapped around what `compose.ts` builds, so the services and stores themselves
 * stay unaware of them: store calls timed by store and operation, refresh rotations and
 * reuse read from the family store's outcome, login outcomes from the user service, which
 * login budget refused an attempt from the rate-limit backend, signing time from the
 * access-token signer; and the gauges sampled at scrape time (keys, store availability).
 */
import { TooManyRequestsError, InvalidGrantError } from '../errors.js';
import type { KeyRingSource } from '../keys/source.js';
import { promotableAt, type RotationTimings } from '../keys/rotation.js';
import type { FamilyStore, RateLimitBackend, RotateResult } from '../stores/types.js';
import type { AccessTokens } from '../tokens/access-token.js';
import type { UserService } from '../users/service.js';
import type { SecurityEvents } from '../events/emitter.js';
import type { LoginLimit, Metrics } from './metrics.js';

const seconds = (startedNs: bigint) => Number(process.hrtime.bigint() - startedNs) / 1e9;

/**
 * Every method of `store` that returns a promise is timed as `store`/`<method>`, and counted
 * as an error when it rejects. Method names come from the code, so the labels are bounded.
 */
export function timeStore<T extends object>(store: T, name: string, metrics: Pick<Metrics, 'storeCall'>): T {
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(store, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function' || typeof property !== 'string') return value;
      let timed = wrapped.get(property);
      if (!timed) {
        timed = function (this: unknown, ...args: unknown[]) {
          const started = process.hrtime.bigint();
          const result: unknown = Reflect.apply(value, target, args);
          if (!(result instanceof Promise)) return result;
          return result.then(
            (resolved: unknown) => {
              metrics.storeCall(name, property, seconds(started), false);
              return resolved;
            },
            (err: unknown) => {
              metrics.storeCall(name, property, seconds(started), true);
              throw err;
            },
          );
        };
        wrapped.set(property, timed);
      }
      return timed;
    },
  });
}

/** The stores `compose.ts` builds, each timed under its name (snake_case, as a label). */
export interface InstrumentedStores {
  readonly users: object;
  readonly clients: object;
  readonly consents: object;
  readonly authorizationCodes: object;
  readonly pushedRequests: object;
  readonly browserSessions: object;
  readonly families: FamilyStore;
  readonly denylist: object;
  readonly rateLimits: RateLimitBackend;
}

/** `stores` with every store timed, rotations counted on the families and login throttles on the rate limits. */
export function instrumentStores<T extends InstrumentedStores>(stores: T, metrics: Metrics): T {
  const timed = (name: string, store: object) => timeStore(store, name, metrics);
  return {
    ...stores,
    users: timed('users', stores.users),
    clients: timed('clients', stores.clients),
    consents: timed('consents', stores.consents),
    authorizationCodes: timed('authorization_codes', stores.authorizationCodes),
    pushedRequests: timed('pushed_requests', stores.pushedRequests),
    browserSessions: timed('browser_sessions', stores.browserSessions),
    families: countRotations(timeStore(stores.families, 'families', metrics), metrics),
    denylist: timed('denylist', stores.denylist),
    rateLimits: instrumentRateLimits(stores.rateLimits, metrics),
  };
}

/** Rotations and detected reuse, as the family store's atomic `rotate` decided them. */
export function countRotations(families: FamilyStore, metrics: Pick<Metrics, 'refreshRotated' | 'refreshReuse'>): FamilyStore {
  return {
    ...bindAll(families),
    async rotate(...args: Parameters<FamilyStore['rotate']>): Promise<RotateResult> {
      const result = await families.rotate(...args);
      if (result.outcome === 'rotated') metrics.refreshRotated();
      else if (result.outcome === 'reused') metrics.refreshReuse();
      return result;
    },
  };
}

/** The login throttle's budget key prefixes (users/login-throttle.ts) → limit names. */
const LOGIN_LIMITS: readonly (readonly [string, LoginLimit])[] = [
  ['login:account-ip:', 'account_ip'],
  ['login:ip:', 'ip'],
  ['login:account:', 'account'],
];

/**
 * Rate-limit calls timed as store `rate_limits`, and which login budget refused an attempt:
 * each budget a refused login reservation found full is counted under its name.
 */
export function instrumentRateLimits(backend: RateLimitBackend, metrics: Pick<Metrics, 'loginThrottled' | 'storeCall'>): RateLimitBackend {
  return {
    ...bindAll(backend),
    limiter: (options) => timeStore(backend.limiter(options), 'rate_limits', metrics),
    attempts() {
      const ledger = timeStore(backend.attempts(), 'rate_limits', metrics);
      return {
        ...bindAll(ledger),
        async reserve(...args: Parameters<typeof ledger.reserve>) {
          const reservation = await ledger.reserve(...args);
          if (!reservation.admitted) {
            for (const key of reservation.full) {
              const limit = LOGIN_LIMITS.find(([prefix]) => key.startsWith(prefix))?.[1];
              if (limit !== undefined) metrics.loginThrottled(limit);
            }
          }
          return reservation;
        },
      };
    },
  };
}

/** Login outcomes, registrations and password changes, from the user service's results. */
export function countUserActions(users: UserService, metrics: Pick<Metrics, 'login' | 'registered' | 'passwordChanged'>): UserService {
  return {
    ...users,
    async login(input) {
      try {
        const user = await users.login(input);
        metrics.login('success');
        return user;
      } catch (err) {
        metrics.login(err instanceof InvalidGrantError ? 'wrong_credentials' : err instanceof TooManyRequestsError ? 'throttled' : 'error');
        throw err;
      }
    },
    async register(input) {
      const user = await users.register(input);
      metrics.registered();
      return user;
    },
    async changePassword(input) {
      await users.changePassword(input);
      metrics.passwordChanged();
    },
  };
}

/** Time to sign an access token, labelled with the active key's algorithm. */
export function timeSigning(accessTokens: AccessTokens, keys: Pick<KeyRingSource, 'current'>, metrics: Pick<Metrics, 'signed'>): AccessTokens {
  const sign: AccessTokens['sign'] = async (claims) => {
    const started = process.hrtime.bigint();
    const issued = await accessTokens.sign(claims);
    metrics.signed(keys.current().active.alg, seconds(started));
    return issued;
  };
  return {
    ...bindAll(accessTokens),
    sign,
    issue: async (request) => sign(accessTokens.claims(request)),
  };
}

/** Keys by state and the wait before the oldest `next` key may sign, read from the ring at scrape time. */
export function sampleKeys(
  metrics: Pick<Metrics, 'gauges' | 'sampleOnScrape'>,
  keys: Pick<KeyRingSource, 'current' | 'ready' | 'reloadFailure'>,
  timings: RotationTimings,
  now: () => number,
): void {
  const { keys: gauge, promotableIn, keyDirectory } = metrics.gauges;
  metrics.sampleOnScrape('keyDirectory', () => keyDirectory.set(keys.reloadFailure() === undefined ? 1 : 0));
  metrics.sampleOnScrape('keys', () => {
    if (!keys.ready()) return;
    const ring = keys.current().keys;
    for (const state of ['next', 'active', 'retired'] as const) gauge.set({ state }, ring.filter((key) => key.state === state).length);
  });
  metrics.sampleOnScrape('promotableIn', () => {
    if (!keys.ready()) return;
    const waiting = keys
      .current()
      .keys.filter((key) => key.state === 'next')
      .map((key) => promotableAt(key, timings));
    promotableIn.set(waiting.length === 0 ? -1 : Math.max(0, (Math.min(...waiting) - now()) / 1000));
  });
}

/** Store availability: each readiness check run at scrape time, 1 when it answers within `timeoutMs`. */
export function sampleStores(
  metrics: Pick<Metrics, 'gauges' | 'sampleOnScrape'>,
  checks: readonly { name: string; check(): Promise<unknown> }[],
  timeoutMs = 2000,
): void {
  metrics.sampleOnScrape('storeUp', async () => {
    await Promise.all(
      checks.map(async ({ name, check }) => {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), timeoutMs)));
        const up = await Promise.race([check(), timeout]).then(
          () => 1,
          () => 0,
        );
        clearTimeout(timer);
        metrics.gauges.storeUp.set({ store: name }, up);
      }),
    );
  });
}

/**
 * Live families, counted by the store (bounded work: `FamilyStore.countLive`) at most once
 * per `everyMs`; scrapes in between read the last count. A count that fails leaves the last.
 */
export function sampleFamilies(
  metrics: Pick<Metrics, 'gauges' | 'sampleOnScrape'>,
  families: Pick<FamilyStore, 'countLive'>,
  options: { everyMs?: number; now?: () => number } = {},
): void {
  const everyMs = options.everyMs ?? 30_000;
  const now = options.now ?? Date.now;
  let countedAt = -Infinity;
  metrics.sampleOnScrape('liveFamilies', async () => {
    if (now() - countedAt < everyMs) return;
    countedAt = now();
    const { count } = await families.countLive().catch(() => ({ count: undefined }));
    if (count !== undefined) metrics.gauges.liveFamilies.set(count);
  });
}

/** An object's methods bound to it, so a spread copy keeps working when the methods use `this`. */
function bindAll<T extends object>(target: T): T {
  const copy: Record<PropertyKey, unknown> = {};
  for (const key of Object.keys(target)) {
    const value: unknown = (target as Record<string, unknown>)[key];
    copy[key] = typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
  }
  return copy as T;
}

/**
 * Families ended, counted from the `family.revoked` events that report them, so that every
 * place that ends a family (logout, logout-all, a password change or reset, an RP logout, a
 * revoked consent, a replayed code, ...) is counted by reason without a second call beside
 * its event. Reuse is counted where the family store detects it (`refreshReuse`).
 */
export function countFamilyRevocations(events: SecurityEvents, metrics: Pick<Metrics, 'familiesRevoked'>): SecurityEvents {
  return {
    ...events,
    emit(...emitted) {
      for (const event of emitted) {
        if (event.type === 'family.revoked' && event.data.reason !== 'reuse') metrics.familiesRevoked(event.data.reason, event.data.count);
      }
      events.emit(...emitted);
    },
  };
}
