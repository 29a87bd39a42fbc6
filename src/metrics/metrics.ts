/**
 * The Prometheus metrics of one service, in a registry of its own (not prom-client's
 * global one), so that several services can live in one process (tests) and a cluster
 * worker hands exactly its own to the primary for aggregation.
 *
 * Labels are bounded by construction: route templates (never paths), grant types from the
 * registry, OAuth error codes, store and operation names from the code, and client ids only
 * of clients that were issued a token (registered ones), at most `maxClientLabels` of them,
 * the rest counted as `other`. Never a user id, email, token, secret or IP.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { FamilyRevocationReason } from '../events/types.js';
import { GRANT_TYPES } from '../oauth/grants/index.js';

export const METRIC_PREFIX = 'authority_';

/** Why a refresh family ended (`authority_refresh_families_revoked_total{reason}`): the security events' own reasons. */
export type RevokeReason = FamilyRevocationReason;

/** Which login budget refused an attempt (src/users/login-throttle.ts). */
export type LoginLimit = 'account_ip' | 'ip' | 'account';

/**
 * What the services report. Each call is cheap (a counter increment); the services take it
 * as an optional dependency from `compose.ts`, so code built without metrics runs unchanged.
 */
export interface SecurityMetrics {
  familiesRevoked(reason: RevokeReason, count?: number): void;
}

export interface MetricsOptions {
  /** Distinct client ids given their own label value; further ones are `other`. Default 100. */
  readonly maxClientLabels?: number;
  /** prom-client's process and event-loop metrics (default true). */
  readonly defaultMetrics?: boolean;
}

const OTHER = 'other';

type Sampler = () => Promise<void> | void;
const grantTypes: ReadonlySet<string> = new Set(GRANT_TYPES);

/** Seconds: from 1 ms to 5 s, where a token endpoint's latencies live. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** Store calls and signatures are faster. */
const FAST_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

export function createMetrics(options: MetricsOptions = {}) {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const maxClients = options.maxClientLabels ?? 100;
  const knownClients = new Set<string>();
  const registers = [registry];
  const p = METRIC_PREFIX;

  const httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP requests by route template, method and status class',
    labelNames: ['route', 'method', 'status_class'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const tokensIssued = new Counter({
    name: `${p}tokens_issued_total`,
    help: 'Token responses by grant type and client',
    labelNames: ['grant', 'client'] as const,
    registers,
  });
  const tokensRefused = new Counter({
    name: `${p}token_requests_refused_total`,
    help: 'Refused token requests by grant type and OAuth error code',
    labelNames: ['grant', 'error'] as const,
    registers,
  });
  const rotations = new Counter({ name: `${p}refresh_rotations_total`, help: 'Refresh tokens rotated', registers });
  const reuse = new Counter({
    name: `${p}refresh_reuse_detected_total`,
    help: 'Refresh tokens presented again after rotation (the family is revoked): a stolen token, or a broken client',
    registers,
  });
  const familiesRevoked = new Counter({
    name: `${p}refresh_families_revoked_total`,
    help: 'Refresh families (sessions) ended, by reason',
    labelNames: ['reason'] as const,
    registers,
  });
  const logins = new Counter({
    name: `${p}logins_total`,
    help: 'Password checks (login, password grant, hosted login page) by outcome: success, wrong_credentials, throttled, error',
    labelNames: ['outcome'] as const,
    registers,
  });
  const loginThrottled = new Counter({
    name: `${p}login_throttled_total`,
    help: 'Login attempts refused by a rate limit, by which limit (account_ip, ip, account)',
    labelNames: ['limit'] as const,
    registers,
  });
  const registrations = new Counter({ name: `${p}registrations_total`, help: 'Accounts registered', registers });
  const passwordChanges = new Counter({ name: `${p}password_changes_total`, help: 'Passwords changed', registers });
  const signing = new Histogram({
    name: `${p}signing_duration_seconds`,
    help: 'Time to sign an access token, by algorithm',
    labelNames: ['alg'] as const,
    buckets: FAST_BUCKETS,
    registers,
  });
  // Gauges sampled at scrape time, never on a request's path: each runs its own samplers
  // when collected (a registry collects its metrics concurrently, so one gauge cannot fill another).
  const samplers = {
    keys: [] as Sampler[],
    promotableIn: [] as Sampler[],
    storeUp: [] as Sampler[],
    keyDirectory: [] as Sampler[],
    liveFamilies: [] as Sampler[],
  };
  const sampled = (name: keyof typeof samplers) => ({
    async collect() {
      await Promise.all(samplers[name].map((sample) => sample()));
    },
  });
  const keys = new Gauge({
    name: `${p}keys`,
    help: 'Signing keys in the key ring by state (next, active, retired)',
    labelNames: ['state'] as const,
    registers,
    // Across cluster workers (src/metrics/cluster.ts): every worker reads the same folder.
    aggregator: 'max',
    ...sampled('keys'),
  });
  const promotableIn = new Gauge({
    name: `${p}next_key_promotable_in_seconds`,
    help: 'Seconds until the oldest next key may be promoted (0: it may now; -1: no next key is published)',
    registers,
    aggregator: 'min',
    ...sampled('promotableIn'),
  });
  const keyDirectory = new Gauge({
    name: `${p}key_directory_ok`,
    help: 'Whether this instance follows KEYS_DIR (1) or its reloads keep failing (0: it signs and publishes only what it could still read)',
    registers,
    // One worker that cannot read the folder is not following rotations.
    aggregator: 'min',
    ...sampled('keyDirectory'),
  });
  const liveFamilies = new Gauge({
    name: `${p}refresh_families_live`,
    help: 'Live refresh-token families (sessions) in the family store, sampled at most every 30 s: exact up to 10,000 keys per Redis master, else estimated from a sample of that many',
    registers,
    // Every instance counts the same shared store.
    aggregator: 'max',
    ...sampled('liveFamilies'),
  });
  const jwks = new Counter({ name: `${p}jwks_requests_total`, help: 'JWKS responses by status (200, 304)', labelNames: ['status'] as const, registers });
  const storeDuration = new Histogram({
    name: `${p}store_operation_duration_seconds`,
    help: 'Store calls by store and operation',
    labelNames: ['store', 'operation'] as const,
    buckets: FAST_BUCKETS,
    registers,
  });
  const storeErrors = new Counter({
    name: `${p}store_errors_total`,
    help: 'Store calls that failed, by store and operation',
    labelNames: ['store', 'operation'] as const,
    registers,
  });
  const storeUp = new Gauge({
    name: `${p}store_up`,
    help: 'Whether a store answered its readiness check at scrape time (1) or not (0)',
    labelNames: ['store'] as const,
    registers,
    // One worker that cannot reach a store is an outage for the requests it serves.
    aggregator: 'min',
    ...sampled('storeUp'),
  });

  /** A grant_type parameter as a label: one of ours, else `other`. */
  const grantLabel = (grant: string | undefined) => (grant !== undefined && grantTypes.has(grant) ? grant : OTHER);
  const clientLabel = (clientId: string) => {
    if (knownClients.has(clientId)) return clientId;
    if (knownClients.size >= maxClients) return OTHER;
    knownClients.add(clientId);
    return clientId;
  };

  return {
    registry,
    /** Gauges sampled at scrape time by the functions given to `sampleOnScrape` (see `sample.ts`). */
    gauges: { keys, promotableIn, storeUp, keyDirectory, liveFamilies },
    /** `sample` runs each time `gauge` is collected, and sets it. */
    sampleOnScrape(gauge: keyof typeof samplers, sample: Sampler): void {
      samplers[gauge].push(sample);
    },
    httpRequest(route: string, method: string, status: number, seconds: number): void {
      httpDuration.observe({ route, method, status_class: `${Math.floor(status / 100)}xx` }, seconds);
      if (route === '/.well-known/jwks.json' && (status === 200 || status === 304)) jwks.inc({ status: String(status) });
    },
    /** A token response; `clientId` is an authenticated (so registered) client. */
    tokenIssued(grant: string | undefined, clientId: string): void {
      tokensIssued.inc({ grant: grantLabel(grant), client: clientLabel(clientId) });
    },
    tokenRefused(grant: string | undefined, error: string): void {
      tokensRefused.inc({ grant: grantLabel(grant), error });
    },
    refreshRotated: () => rotations.inc(),
    refreshReuse(): void {
      reuse.inc();
      familiesRevoked.inc({ reason: 'reuse' });
    },
    familiesRevoked(reason: RevokeReason, count = 1): void {
      if (count > 0) familiesRevoked.inc({ reason }, count);
    },
    login: (outcome: 'success' | 'wrong_credentials' | 'throttled' | 'error') => logins.inc({ outcome }),
    loginThrottled: (limit: LoginLimit) => loginThrottled.inc({ limit }),
    registered: () => registrations.inc(),
    passwordChanged: () => passwordChanges.inc(),
    signed: (alg: string, seconds: number) => signing.observe({ alg }, seconds),
    storeCall(store: string, operation: string, seconds: number, failed: boolean): void {
      storeDuration.observe({ store, operation }, seconds);
      if (failed) storeErrors.inc({ store, operation });
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
