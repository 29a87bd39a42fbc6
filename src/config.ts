/**
 * Configuration: parsed once at start-up from the environment, every problem reported
 * together, then frozen and passed down. This is the only module that interprets
 * environment variables; `src/server.ts` is the only caller that hands it `process.env`.
 */
import { isIP, isIPv4 } from 'node:net';
import { availableParallelism } from 'node:os';
import { z } from 'zod';

export type Env = Readonly<Record<string, string | undefined>>;

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** `900`, `900s`, `15m`, `1h`, `7d` → seconds. Returns undefined when the text is not a duration. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d{1,9})([smhd]?)$/.exec(text.trim());
  if (!match) return undefined;
  return Number(match[1]) * (UNIT_SECONDS[match[2] || 's'] ?? 1);
}

/** A budget such as `5/15m`: `points` events per `durationSec`. */
export interface RateBudget {
  readonly points: number;
  readonly durationSec: number;
}

/** Timeouts become timers, and Node's setTimeout fires at once past 24.8 days: cap them at a day. */
const TIMER_MAX = 86_400;

/** Ten years: far beyond any lifetime of ours, well short of dates that break date arithmetic (keys:list). */
const DURATION_MAX = 3650 * 86_400;

const duration = (fallback: string, { min = 0, max = DURATION_MAX }: { min?: number; max?: number } = {}) =>
  z
    .string()
    .default(fallback)
    .transform((text, ctx) => {
      const seconds = parseDuration(text);
      if (seconds === undefined) {
        ctx.addIssue({ code: 'custom', message: `"${text}" is not a duration (use 900, 900s, 15m, 1h or 7d)` });
        return z.NEVER;
      }
      if (seconds < min) {
        ctx.addIssue({ code: 'custom', message: `must be at least ${min}s` });
        return z.NEVER;
      }
      if (seconds > max) {
        ctx.addIssue({ code: 'custom', message: `must be at most ${max}s` });
        return z.NEVER;
      }
      return seconds;
    });

const budget = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((text, ctx): RateBudget => {
      const [count, window] = text.split('/');
      const points = Number(count);
      const durationSec = window === undefined ? undefined : parseDuration(window);
      if (!Number.isInteger(points) || points < 1 || durationSec === undefined || durationSec < 1) {
        ctx.addIssue({ code: 'custom', message: `"${text}" is not a budget (use <count>/<duration>, e.g. 5/15m)` });
        return z.NEVER;
      }
      return { points, durationSec };
    });

const integer = (fallback: number, min: number, max: number) =>
  z
    .string()
    .default(String(fallback))
    .transform((text, ctx) => {
      const value = Number(text);
      if (!/^\d+$/.test(text.trim()) || value < min || value > max) {
        ctx.addIssue({ code: 'custom', message: `"${text}" must be an integer from ${min} to ${max}` });
        return z.NEVER;
      }
      return value;
    });

const url = (protocols: string[]) =>
  z.string().refine(
    (text) => {
      try {
        return protocols.includes(new URL(text).protocol);
      } catch {
        return false;
      }
    },
    { message: `must be a URL (${protocols.join(' or ')})` },
  );

const list = z
  .string()
  .default('')
  .transform((text) => text.split(',').map((item) => item.trim()).filter(Boolean));

const hostPort = z.string().transform((text, ctx) => {
  const nodes = text.split(',').map((item) => item.trim()).filter(Boolean).map((item) => {
    const match = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(item);
    const port = Number(match?.[2]);
    return match && port > 0 && port < 65536 ? { host: match[1]!.replace(/^\[|\]$/g, ''), port } : undefined;
  });
  if (nodes.length === 0 || nodes.some((node) => node === undefined)) {
    ctx.addIssue({ code: 'custom', message: 'must be a comma-separated list of host:port' });
    return z.NEVER;
  }
  return nodes as { host: string; port: number }[];
});

/** Host names: dot-separated labels of letters, digits, hyphens and (as resolvers accept) underscores; a trailing dot allowed. */
const HOSTNAME = /^(?=.{1,254}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

const DEV_REGISTER_IP_RATE_LIMIT = '1000/1h';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const schema = z.object({
  NODE_ENV: z.enum(['production', 'development', 'test']).default('development'),
  PORT: integer(3000, 0, 65535),
  HOST: z
    .string()
    .refine((text) => isIP(text) !== 0 || HOSTNAME.test(text), { message: 'must be an IP address or a host name' })
    .optional(),
  ISSUER: url(['http:', 'https:'])
    .refine((text) => !/[?#]/.test(text) && !text.endsWith('/'), { message: 'must have no query, fragment or trailing slash (RFC 8414 §2)' })
    .optional(),
  MONGODB_URI: url(['mongodb:', 'mongodb+srv:']).optional(),
  REDIS_URL: url(['redis:', 'rediss:']).optional(),
  REDIS_CLUSTER_NODES: hostPort.optional(),
  KEYS_DIR: z.string().min(1).default('./keys'),
  JWKS_MAX_AGE: duration('5m'),
  KEY_PROMOTION_MARGIN: duration('1m'),
  CLOCK_SKEW: duration('60s'),
  ACCESS_TOKEN_TTL: duration('15m', { min: 1 }),
  REFRESH_TOKEN_TTL: duration('7d', { min: 1 }),
  REFRESH_FAMILY_MAX_TTL: duration('30d', { min: 1 }),
  REFRESH_REUSE_GRACE: duration('0s'),
  REFRESH_FAMILIES_PER_USER: integer(100, 1, 100_000),
  REFRESH_TOKEN_SECRET: z.string().min(32, 'must be at least 32 characters of secret material').optional(),
  AUDIENCE: z.string().min(1).optional(),
  LOGIN_RATE_LIMIT: budget('5/15m'),
  LOGIN_IP_RATE_LIMIT: budget('100/15m'),
  LOGIN_ACCOUNT_RATE_LIMIT: budget('50/1h'),
  CLIENT_AUTH_RATE_LIMIT: budget('20/15m'),
  REGISTER_RATE_LIMIT: budget('10/1h'),
  REGISTER_IP_RATE_LIMIT: budget('20/1h'),
  SCOPES_SUPPORTED: list,
  LOGIN_CLIENT_ID: z.string().min(1).max(128).default('demo-app'),
  CORS_ORIGINS: list.pipe(z.array(z.string().refine(isOrigin, { message: 'each origin must be exactly scheme://host[:port]' }))),
  LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
  WORKERS: z
    .string()
    .default('1')
    .transform((text, ctx) => {
      if (text.trim() === 'auto') return availableParallelism();
      const value = Number(text);
      if (!/^\d+$/.test(text.trim()) || value < 1 || value > 64) {
        ctx.addIssue({ code: 'custom', message: `"${text}" must be auto or an integer from 1 to 64` });
        return z.NEVER;
      }
      return value;
    }),
  TRUST_PROXY_HOPS: integer(0, 0, 10),
  CLIENT_CACHE_TTL: duration('30s'),
  BODY_LIMIT: integer(64 * 1024, 1024, 10 * 1024 * 1024),
  SHUTDOWN_TIMEOUT: duration('10s', { min: 1, max: TIMER_MAX }),
  HTTP_HEADERS_TIMEOUT: duration('10s', { min: 1, max: TIMER_MAX }),
  HTTP_REQUEST_TIMEOUT: duration('30s', { min: 1, max: TIMER_MAX }),
  HTTP_KEEPALIVE_TIMEOUT: duration('5s', { min: 1, max: TIMER_MAX }),
  ARGON2_MEMORY_KIB: integer(19456, 8192, 4 * 1024 * 1024),
  ARGON2_TIME_COST: integer(2, 1, 20),
  ARGON2_PARALLELISM: integer(1, 1, 16),
  DEV_CLIENT_SECRET: z.string().min(16).optional(),
  DEV_USER_PASSWORD: z.string().min(8).max(128).optional(),
});

export interface Config {
  /** `NODE_ENV=production`: real stores required, no seeding, strict file modes. */
  readonly production: boolean;
  readonly port: number;
  readonly host: string;
  /** `iss` of every token and base of the metadata URLs; no trailing slash. */
  readonly issuer: string;
  /** Default `aud` of access tokens. */
  readonly audience: string;
  /** Unset outside production = embedded in-memory user/client store. */
  readonly mongodbUri: string | undefined;
  /** Unset (and no cluster) outside production = embedded in-memory token/rate-limit store. */
  readonly redisUrl: string | undefined;
  readonly redisClusterNodes: readonly { readonly host: string; readonly port: number }[] | undefined;
  readonly keysDir: string;
  /** Seconds. `Cache-Control: max-age` of the JWKS, and the minimum publication time of a `next` key. */
  readonly jwksMaxAge: number;
  /** Seconds added to `jwksMaxAge` before a `next` key may be promoted. */
  readonly keyPromotionMargin: number;
  /** Seconds of clock difference tolerated between us and resource servers. */
  readonly clockSkew: number;
  /** Seconds. */
  readonly accessTokenTtl: number;
  /** Seconds: idle lifetime of a refresh family, extended by each rotation. */
  readonly refreshTokenTtl: number;
  /** Seconds: absolute lifetime of a refresh family, never extended. */
  readonly refreshFamilyMaxTtl: number;
  /** Seconds after a rotation in which the rotated token counts as a retry; 0 = off. */
  readonly refreshReuseGrace: number;
  /** Live refresh families (sessions) one user may hold; one more ends the oldest. */
  readonly refreshFamiliesPerUser: number;
  /** Server-side key for refresh-token MACs; unset = KEYS_DIR/refresh-token.secret (src/keys/refresh-secret.ts). */
  readonly refreshTokenSecret: string | undefined;
  readonly loginRateLimit: RateBudget;
  readonly loginIpRateLimit: RateBudget;
  readonly loginAccountRateLimit: RateBudget;
  /** Failed client authentications per client id + IP on the OAuth endpoints. */
  readonly clientAuthRateLimit: RateBudget;
  /** Registrations of an already-taken email per IP (slows account discovery). */
  readonly registerRateLimit: RateBudget;
  /** Every registration per IP (IPv6: per /64): each one costs an argon2 hash. */
  readonly registerIpRateLimit: RateBudget;
  readonly corsOrigins: readonly string[];
  /** `scopes_supported` of the RFC 8414 metadata; empty = omitted (dev mode lists the seeded scopes). */
  readonly scopesSupported: readonly string[];
  /** The first-party public client `/auth/login` issues for when the body names none. */
  readonly loginClientId: string;
  readonly logLevel: (typeof LOG_LEVELS)[number];
  /**
   * How many reverse proxies in front of us append to X-Forwarded-For. 0 = use the socket
   * address (the header is client-controlled and ignored); rate limits key on this IP.
   */
  readonly trustProxyHops: number;
  /** Processes serving requests (node:cluster); above 1 the stores must be shared (MongoDB, Redis). */
  readonly workers: number;
  /** Seconds a client record is cached in process (0 = off); a changed client is seen within it. */
  readonly clientCacheTtl: number;
  /** Bytes. Larger request bodies get 413. */
  readonly bodyLimit: number;
  /** Seconds the process waits for in-flight requests after SIGTERM. */
  readonly shutdownTimeout: number;
  /** Seconds: slow clients are cut off (slow-loris): all headers within, the whole request within; idle keep-alive. */
  readonly http: { readonly headersTimeout: number; readonly requestTimeout: number; readonly keepAliveTimeout: number };
  readonly argon2: { readonly memoryCost: number; readonly timeCost: number; readonly parallelism: number };
  /** Dev mode only. */
  readonly devClientSecret: string | undefined;
  readonly devUserPassword: string | undefined;
}

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

/** Parses the environment into a frozen Config, or throws one ConfigError naming every bad variable. */
export function parseConfig(env: Env): Config {
  const input: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') input[key] = value;
  }
  // Outside production one developer or test run registers many users from one address;
  // the production default (20/1h) would get in its way. Set explicitly, it applies as set.
  if (input.NODE_ENV !== 'production') input.REGISTER_IP_RATE_LIMIT ??= DEV_REGISTER_IP_RATE_LIMIT;
  // Each variable on its own, so that the checks between variables below still run (and
  // report) when some other variable is bad: every problem is named in one message.
  const problems: string[] = [];
  const v: Partial<z.infer<typeof schema>> = {};
  for (const [key, field] of Object.entries(schema.shape)) {
    const result = (field as z.ZodType).safeParse(input[key]);
    if (result.success) (v as Record<string, unknown>)[key] = result.data;
    else problems.push(...result.error.issues.map((issue) => `${[key, ...issue.path].join('.')}: ${issue.message}`));
  }
  if (input.NODE_ENV === 'production') {
    if (!input.MONGODB_URI) problems.push('MONGODB_URI: required in production');
    if (!input.REDIS_URL && !input.REDIS_CLUSTER_NODES) problems.push('REDIS_URL: required in production (or REDIS_CLUSTER_NODES)');
    if (!input.ISSUER) problems.push('ISSUER: required in production');
    if (v.ISSUER && new URL(v.ISSUER).protocol !== 'https:' && !isLoopback(new URL(v.ISSUER).hostname)) {
      problems.push('ISSUER: must be https in production (http is allowed only for a loopback host)');
    }
  }
  if (v.WORKERS !== undefined && v.WORKERS > 1 && (!input.MONGODB_URI || (!input.REDIS_URL && !input.REDIS_CLUSTER_NODES))) {
    problems.push('WORKERS: more than one worker needs MONGODB_URI and REDIS_URL (the embedded stores live inside one process)');
  }
  if (v.HTTP_HEADERS_TIMEOUT !== undefined && v.HTTP_REQUEST_TIMEOUT !== undefined && v.HTTP_HEADERS_TIMEOUT > v.HTTP_REQUEST_TIMEOUT) {
    problems.push('HTTP_HEADERS_TIMEOUT: must be at most HTTP_REQUEST_TIMEOUT (the headers are part of the request)');
  }
  if (v.REFRESH_FAMILY_MAX_TTL !== undefined && v.REFRESH_TOKEN_TTL !== undefined && v.REFRESH_FAMILY_MAX_TTL < v.REFRESH_TOKEN_TTL) {
    problems.push('REFRESH_FAMILY_MAX_TTL: must be at least REFRESH_TOKEN_TTL');
  }
  if (problems.length > 0) throw new ConfigError(problems);
  // No problems: every variable parsed, so `v` is complete.
  const e = v as z.infer<typeof schema>;
  const production = e.NODE_ENV === 'production';

  const issuer = e.ISSUER ?? `http://localhost:${e.PORT}`;
  return deepFreeze({
    production,
    port: e.PORT,
    host: e.HOST ?? (production ? '0.0.0.0' : '127.0.0.1'),
    issuer,
    audience: e.AUDIENCE ?? issuer,
    mongodbUri: e.MONGODB_URI,
    redisUrl: e.REDIS_URL,
    redisClusterNodes: e.REDIS_CLUSTER_NODES,
    keysDir: e.KEYS_DIR,
    jwksMaxAge: e.JWKS_MAX_AGE,
    keyPromotionMargin: e.KEY_PROMOTION_MARGIN,
    clockSkew: e.CLOCK_SKEW,
    accessTokenTtl: e.ACCESS_TOKEN_TTL,
    refreshTokenTtl: e.REFRESH_TOKEN_TTL,
    refreshFamilyMaxTtl: e.REFRESH_FAMILY_MAX_TTL,
    refreshReuseGrace: e.REFRESH_REUSE_GRACE,
    refreshFamiliesPerUser: e.REFRESH_FAMILIES_PER_USER,
    refreshTokenSecret: e.REFRESH_TOKEN_SECRET,
    loginRateLimit: e.LOGIN_RATE_LIMIT,
    loginIpRateLimit: e.LOGIN_IP_RATE_LIMIT,
    loginAccountRateLimit: e.LOGIN_ACCOUNT_RATE_LIMIT,
    clientAuthRateLimit: e.CLIENT_AUTH_RATE_LIMIT,
    registerRateLimit: e.REGISTER_RATE_LIMIT,
    registerIpRateLimit: e.REGISTER_IP_RATE_LIMIT,
    corsOrigins: e.CORS_ORIGINS,
    loginClientId: e.LOGIN_CLIENT_ID,
    scopesSupported: e.SCOPES_SUPPORTED,
    logLevel: e.LOG_LEVEL,
    trustProxyHops: e.TRUST_PROXY_HOPS,
    workers: e.WORKERS,
    clientCacheTtl: e.CLIENT_CACHE_TTL,
    bodyLimit: e.BODY_LIMIT,
    shutdownTimeout: e.SHUTDOWN_TIMEOUT,
    http: { headersTimeout: e.HTTP_HEADERS_TIMEOUT, requestTimeout: e.HTTP_REQUEST_TIMEOUT, keepAliveTimeout: e.HTTP_KEEPALIVE_TIMEOUT },
    argon2: { memoryCost: e.ARGON2_MEMORY_KIB, timeCost: e.ARGON2_TIME_COST, parallelism: e.ARGON2_PARALLELISM },
    devClientSecret: production ? undefined : e.DEV_CLIENT_SECRET,
    devUserPassword: production ? undefined : e.DEV_USER_PASSWORD,
  });
}

/** The environment variable names the config reads (used by the compose-file test). */
export const CONFIG_VARIABLES: readonly string[] = Object.freeze(Object.keys(schema.shape));

function isOrigin(text: string): boolean {
  try {
    return new URL(text).origin === text;
  } catch {
    return false;
  }
}

/** `localhost`, `[::1]` or an IPv4 address in 127.0.0.0/8 (not a name that merely starts with 127.). */
function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || (isIPv4(hostname) && hostname.startsWith('127.'));
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
