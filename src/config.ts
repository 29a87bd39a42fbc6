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

/** `250ms`, `2s`, `5m`, `1h` (a bare number is seconds) → milliseconds; for timings under a second. */
const milliseconds = (fallback: string, { min, max }: { min: number; max: number }) =>
  z
    .string()
    .default(fallback)
    .transform((text, ctx) => {
      const match = /^(\d{1,9})(ms|s|m|h)?$/.exec(text.trim());
      const ms = match ? Number(match[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(match[2] ?? 's') as 'ms' | 's' | 'm' | 'h'] : undefined;
      if (ms === undefined || ms < min || ms > max) {
        ctx.addIssue({ code: 'custom', message: `"${text}" must be a duration from ${min}ms to ${max / 1000}s (e.g. 250ms, 2s, 5m)` });
        return z.NEVER;
      }
      return ms;
    });

/**
 * A Standard Webhooks secret: `whsec_` then base64 of 24 to 64 random bytes (the spec's
 * range), e.g. `whsec_$(openssl rand -base64 32)`.
 */
const webhookSecret = z.string().refine(
  (text) => {
    const match = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(text);
    const bytes = match ? Buffer.from(match[1]!, 'base64').length : 0;
    return bytes >= 24 && bytes <= 64;
  },
  { message: 'must be whsec_ followed by the base64 of 24 to 64 random bytes (e.g. whsec_$(openssl rand -base64 32))' },
);

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
  .transform((text) =>
    text
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean),
  );

const hostPort = z.string().transform((text, ctx) => {
  const nodes = text
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean)
    .map((item) => {
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

/** One environment variable: its name, and its parser with default and checks. */
class Variable<T extends z.ZodType = z.ZodType> {
  constructor(
    readonly name: string,
    readonly schema: T,
  ) {}
}
const variable = <T extends z.ZodType>(name: string, schema: T) => new Variable(name, schema);

/** Config fields, each from one variable or a group of them. */
interface Spec {
  readonly [field: string]: Variable | Spec;
}

type Frozen<T> = T extends readonly (infer U)[] ? readonly Frozen<U>[] : T extends object ? { readonly [K in keyof T]: Frozen<T[K]> } : T;
type Parsed<S> = { readonly [K in keyof S]: S[K] extends Variable<infer T> ? Frozen<z.output<T>> : Parsed<S[K]> };
/** What parsed while some variable did not: the groups, and the fields that parsed. */
type PartlyParsed<S> = { readonly [K in keyof S]: S[K] extends Variable<infer T> ? z.output<T> | undefined : PartlyParsed<S[K]> };

/**
 * Every variable, written once: the Config field it fills (the key), its name, default
 * and checks. Problems are reported in this order.
 */
const variables = {
  /** `NODE_ENV`; Config has `production` instead. */
  nodeEnv: variable('NODE_ENV', z.enum(['production', 'development', 'test']).default('development')),
  port: variable('PORT', integer(3000, 0, 65535)),
  /** Listen address; unset = 127.0.0.1 in dev, 0.0.0.0 in production. */
  host: variable(
    'HOST',
    z
      .string()
      .refine((text) => isIP(text) !== 0 || HOSTNAME.test(text), { message: 'must be an IP address or a host name' })
      .optional(),
  ),
  /** `iss` of every token and base of the metadata URLs; no trailing slash. Unset = `http://localhost:$PORT` (dev only). */
  issuer: variable(
    'ISSUER',
    url(['http:', 'https:'])
      .refine((text) => !/[?#]/.test(text) && !text.endsWith('/'), { message: 'must have no query, fragment or trailing slash (RFC 8414 §2)' })
      .optional(),
  ),
  /** Unset outside production = embedded in-memory user/client store. */
  mongodbUri: variable('MONGODB_URI', url(['mongodb:', 'mongodb+srv:']).optional()),
  /** Unset (and no cluster) outside production = embedded in-memory token/rate-limit store. */
  redisUrl: variable('REDIS_URL', url(['redis:', 'rediss:']).optional()),
  redisClusterNodes: variable('REDIS_CLUSTER_NODES', hostPort.optional()),
  keysDir: variable('KEYS_DIR', z.string().min(1).default('./keys')),
  /**
   * Further RSA algs ID tokens may be signed in (a client's id_token_signed_response_alg):
   * each RSA key is then also published under `<kid>~<alg>` with that alg. Empty = the
   * active key's own alg only.
   */
  idTokenSigningAlgs: variable('ID_TOKEN_SIGNING_ALGS', list.pipe(z.array(z.enum(['RS256', 'PS256'])))),
  /** Seconds. `Cache-Control: max-age` of the JWKS, and the minimum publication time of a `next` key. */
  jwksMaxAge: variable('JWKS_MAX_AGE', duration('5m')),
  /** Seconds added to `jwksMaxAge` before a `next` key may be promoted. */
  keyPromotionMargin: variable('KEY_PROMOTION_MARGIN', duration('1m')),
  /** Seconds of clock difference tolerated between us and resource servers. */
  clockSkew: variable('CLOCK_SKEW', duration('60s')),
  /** Seconds. */
  accessTokenTtl: variable('ACCESS_TOKEN_TTL', duration('15m', { min: 1 })),
  /** Seconds: idle lifetime of a refresh family, extended by each rotation. */
  refreshTokenTtl: variable('REFRESH_TOKEN_TTL', duration('7d', { min: 1 })),
  /** Seconds: absolute lifetime of a refresh family, never extended. */
  refreshFamilyMaxTtl: variable('REFRESH_FAMILY_MAX_TTL', duration('30d', { min: 1 })),
  /** Seconds after a rotation in which the rotated token counts as a retry; 0 = off. */
  refreshReuseGrace: variable('REFRESH_REUSE_GRACE', duration('10s')),
  /** Live refresh families (sessions) one user may hold; one more ends the oldest. */
  refreshFamiliesPerUser: variable('REFRESH_FAMILIES_PER_USER', integer(100, 1, 100_000)),
  /** Server-side key for refresh-token MACs; unset = KEYS_DIR/refresh-token.secret (src/keys/refresh-secret.ts). */
  refreshTokenSecret: variable('REFRESH_TOKEN_SECRET', z.string().min(32, 'must be at least 32 characters of secret material').optional()),
  /** Default `aud` of access tokens; unset = the issuer. */
  audience: variable('AUDIENCE', z.string().min(1).optional()),
  loginRateLimit: variable('LOGIN_RATE_LIMIT', budget('5/15m')),
  loginIpRateLimit: variable('LOGIN_IP_RATE_LIMIT', budget('100/15m')),
  loginAccountRateLimit: variable('LOGIN_ACCOUNT_RATE_LIMIT', budget('50/1h')),
  /** Failed client authentications per client id + IP on the OAuth endpoints. */
  clientAuthRateLimit: variable('CLIENT_AUTH_RATE_LIMIT', budget('20/15m')),
  /** Registrations of an already-taken email per IP (slows account discovery). */
  registerRateLimit: variable('REGISTER_RATE_LIMIT', budget('10/1h')),
  /** Every registration per IP (IPv6: per /64): each one costs an argon2 hash. Unset outside production = 1000/1h. */
  registerIpRateLimit: variable('REGISTER_IP_RATE_LIMIT', budget('20/1h')),
  /** `scopes_supported` of the RFC 8414 metadata; empty = omitted (dev mode lists the seeded scopes). */
  scopesSupported: variable('SCOPES_SUPPORTED', list),
  /** The first-party public client `/auth/login` issues for when the body names none. */
  loginClientId: variable('LOGIN_CLIENT_ID', z.string().min(1).max(128).default('demo-app')),
  corsOrigins: variable('CORS_ORIGINS', list.pipe(z.array(z.string().refine(isOrigin, { message: 'each origin must be exactly scheme://host[:port]' })))),
  logLevel: variable('LOG_LEVEL', z.enum(LOG_LEVELS).default('info')),
  /** Processes serving requests (node:cluster); above 1 the stores must be shared (MongoDB, Redis). */
  workers: variable(
    'WORKERS',
    z
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
  ),
  /**
   * How many reverse proxies in front of us append to X-Forwarded-For. 0 = use the socket
   * address (the header is client-controlled and ignored); rate limits key on this IP.
   */
  trustProxyHops: variable('TRUST_PROXY_HOPS', integer(0, 0, 10)),
  /** Seconds a client record is cached in process (0 = off); a changed client is seen within it. */
  clientCacheTtl: variable('CLIENT_CACHE_TTL', duration('30s')),
  /**
   * Seconds a user record is cached in process for refreshes (0 = off). Changes made
   * through the service reach every instance at once (Redis pub/sub); this bounds how long
   * an edit made directly in the database goes unseen.
   */
  userCacheTtl: variable('USER_CACHE_TTL', duration('60s')),
  /** Bytes. Larger request bodies get 413. */
  bodyLimit: variable('BODY_LIMIT', integer(64 * 1024, 1024, 10 * 1024 * 1024)),
  /** Seconds the process waits for in-flight requests after SIGTERM. */
  shutdownTimeout: variable('SHUTDOWN_TIMEOUT', duration('10s', { min: 1, max: TIMER_MAX })),
  /** Seconds: slow clients are cut off (slow-loris): all headers within, the whole request within; idle keep-alive. */
  http: {
    headersTimeout: variable('HTTP_HEADERS_TIMEOUT', duration('10s', { min: 1, max: TIMER_MAX })),
    requestTimeout: variable('HTTP_REQUEST_TIMEOUT', duration('30s', { min: 1, max: TIMER_MAX })),
    keepAliveTimeout: variable('HTTP_KEEPALIVE_TIMEOUT', duration('5s', { min: 1, max: TIMER_MAX })),
  },
  argon2: {
    /** KiB. */
    memoryCost: variable('ARGON2_MEMORY_KIB', integer(19456, 8192, 4 * 1024 * 1024)),
    timeCost: variable('ARGON2_TIME_COST', integer(2, 1, 20)),
    parallelism: variable('ARGON2_PARALLELISM', integer(1, 1, 16)),
  },
  /** The authorization code flow's browser side: the hosted pages and the sign-in session. */
  signIn: {
    /** Shown on the hosted pages (header, titles). */
    productName: variable('PRODUCT_NAME', z.string().trim().min(1).max(60).default('Token Authority')),
    /** A CSS file served at /assets/pages.css instead of the default one (theming). */
    stylesheetFile: variable('PAGES_STYLESHEET', z.string().min(1).optional()),
    /** An .svg, .png or .webp logo served at /assets/logo and shown in the pages' header. */
    logoFile: variable(
      'PAGES_LOGO',
      z
        .string()
        .regex(/\.(svg|png|webp)$/i, 'must be an .svg, .png or .webp file')
        .optional(),
    ),
    /** Every client must push its authorization requests (RFC 9126 §6); else only clients created with --require-par. */
    requirePar: variable(
      'REQUIRE_PAR',
      z
        .enum(['true', 'false'])
        .default('false')
        .transform((text) => text === 'true'),
    ),
    /** Seconds a browser's sign-in session (SSO) lives without use. */
    sessionTtl: variable('SIGN_IN_SESSION_TTL', duration('1d', { min: 60 })),
    /** Seconds a sign-in session lives at most; after that the password is asked again. */
    sessionMaxTtl: variable('SIGN_IN_SESSION_MAX_TTL', duration('7d', { min: 60 })),
  },
  /** Security events (src/events/): the Redis Stream they are appended to, and the webhooks they are delivered to. */
  events: {
    /**
     * `off` emits none: no stream entries, no 'security event' log lines, no webhooks. For
     * measuring what they cost (with METRICS_PORT=off, the service without issue 19's
     * instrumentation); a deployment keeps them: they are its audit trail.
     */
    enabled: variable(
      'SECURITY_EVENTS',
      z
        .enum(['on', 'off'])
        .default('on')
        .transform((text) => text === 'on'),
    ),
    /** Entries kept in the stream (XADD MAXLEN ~, so about this many); older ones are trimmed. */
    streamMaxLen: variable('EVENTS_STREAM_MAXLEN', integer(100_000, 100, 100_000_000)),
    /** Receivers of every event, POSTed as JSON and signed per Standard Webhooks; empty = no delivery. */
    webhookUrls: variable(
      'WEBHOOK_URLS',
      list.pipe(
        z.array(
          url(['http:', 'https:']).refine((text) => !URL.canParse(text) || (!new URL(text).username && !new URL(text).password), {
            message: 'must not carry user:password@ (fetch refuses it; a receiver authenticates deliveries by their signature)',
          }),
        ),
      ),
    ),
    /** The signing secret (`whsec_…`); required with WEBHOOK_URLS. */
    webhookSecret: variable('WEBHOOK_SECRET', webhookSecret.optional()),
    /** Seconds a receiver has to answer one delivery. */
    webhookTimeout: variable('WEBHOOK_TIMEOUT', duration('10s', { min: 1, max: 300 })),
    /** Milliseconds before the first retry of a failed delivery; each next one waits twice as long, up to WEBHOOK_RETRY_MAX. */
    webhookRetryBaseMs: variable('WEBHOOK_RETRY_BASE', milliseconds('1s', { min: 1, max: 3_600_000 })),
    webhookRetryMaxMs: variable('WEBHOOK_RETRY_MAX', milliseconds('5m', { min: 1, max: 86_400_000 })),
  },
  /** Mail out (account verification and recovery): src/mail/. */
  mail: {
    /** `smtp://user:pass@host:587` (STARTTLS when offered; add `?requireTLS=true` to insist) or `smtps://…:465`. Unset: dev prints mail to the terminal (GET /dev/mail); production sends none. */
    smtpUrl: variable('SMTP_URL', url(['smtp:', 'smtps:']).optional()),
    /** A PEM file of CA certificates to trust for the SMTP server besides the system's. */
    smtpCaFile: variable('SMTP_CA_FILE', z.string().min(1).optional()),
    /** The From header; unset = `"$PRODUCT_NAME" <no-reply@<issuer host>>`. */
    from: variable('MAIL_FROM', z.string().trim().min(3).max(320).optional()),
    /** A folder whose `<kind>.text.eta` / `<kind>.html.eta` / `layout.html.eta` replace the default templates. */
    templatesDir: variable('MAIL_TEMPLATES_DIR', z.string().min(1).optional()),
    /** Seconds before the second attempt at a message; doubled each time up to MAIL_RETRY_MAX. */
    retryBase: variable('MAIL_RETRY_BASE', duration('10s', { min: 1, max: 3600 })),
    retryMax: variable('MAIL_RETRY_MAX', duration('15m', { min: 1, max: 86_400 })),
    /** Attempts before a message is given up (kept in the dead-letter list). */
    maxAttempts: variable('MAIL_MAX_ATTEMPTS', integer(15, 1, 100)),
    /** Mails one address may be sent on request (verification resend, password reset, email change) per window. */
    addressRateLimit: variable('MAIL_RATE_LIMIT', budget('5/1h')),
    /** Such requests per IP (IPv6: per /64). */
    ipRateLimit: variable('MAIL_IP_RATE_LIMIT', budget('30/1h')),
  },
  /** Refuse the password grant and logins to accounts whose email is not verified (after the password is checked). */
  requireVerifiedEmail: variable(
    'REQUIRE_VERIFIED_EMAIL',
    z
      .enum(['true', 'false'])
      .default('false')
      .transform((text) => text === 'true'),
  ),
  /** A Have I Been Pwned range API (`…/range/`): new passwords are checked by k-anonymity; unset = off. */
  hibpRangeUrl: variable('HIBP_RANGE_URL', url(['http:', 'https:']).optional()),
  /** Prometheus `GET /metrics` on a listener of its own, never the public one (src/metrics/server.ts). */
  metrics: {
    /** `off`, or a port (0 = any free one); unset = 9464 when NODE_ENV is development (the default), off otherwise. */
    port: variable(
      'METRICS_PORT',
      z
        .string()
        .optional()
        .transform((text, ctx) => {
          if (text === undefined) return undefined;
          if (text.trim() === 'off') return 'off' as const;
          const value = Number(text);
          if (!/^\d+$/.test(text.trim()) || value > 65535) {
            ctx.addIssue({ code: 'custom', message: `"${text}" must be off or an integer from 0 to 65535` });
            return z.NEVER;
          }
          return value;
        }),
    ),
    /** Listen address of the metrics listener: loopback unless the scraper needs more. */
    host: variable(
      'METRICS_HOST',
      z
        .string()
        .refine((text) => isIP(text) !== 0 || HOSTNAME.test(text), { message: 'must be an IP address or a host name' })
        .default('127.0.0.1'),
    ),
  },
  /** Dev mode only. */
  devClientSecret: variable('DEV_CLIENT_SECRET', z.string().min(16).optional()),
  /** Dev mode only. */
  devUserPassword: variable('DEV_USER_PASSWORD', z.string().min(8).max(128).optional()),
} satisfies Spec;

type Variables = typeof variables;

/** Where `GET /metrics` listens; `port` undefined = no metrics at all. */
export interface MetricsConfig {
  readonly port: number | undefined;
  readonly host: string;
  /** METRICS_PORT was set: failing to listen on it stops start-up (the dev default only warns). */
  readonly explicit: boolean;
}

/** The dev-mode default of METRICS_PORT (the port OpenTelemetry's Prometheus exporter uses too). */
export const DEV_METRICS_PORT = 9464;

export type Config = Omit<Parsed<Variables>, 'nodeEnv' | 'host' | 'issuer' | 'audience' | 'metrics'> & {
  readonly metrics: MetricsConfig;
  /** `NODE_ENV=production`: real stores required, no seeding, strict file modes. */
  readonly production: boolean;
  /** HOST, else 127.0.0.1 in dev and 0.0.0.0 in production. */
  readonly host: string;
  /** ISSUER, else `http://localhost:$PORT` (dev only). */
  readonly issuer: string;
  /** AUDIENCE, else the issuer. */
  readonly audience: string;
};

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

/** Parses the environment into a frozen Config, or throws one ConfigError naming every bad variable. */
export function parseConfig(env: Env): Config {
  const input: Record<string, string> = {};
  for (const name of CONFIG_VARIABLES) {
    const value = env[name];
    if (value !== undefined && value !== '') input[name] = value;
  }
  // Outside production one developer or test run registers many users from one address;
  // the production default (20/1h) would get in its way. Set explicitly, it applies as set.
  if (input.NODE_ENV !== 'production') input.REGISTER_IP_RATE_LIMIT ??= DEV_REGISTER_IP_RATE_LIMIT;
  // Each variable on its own, so that the checks between variables below still run (and
  // report) when some other variable is bad: every problem is named in one message.
  const problems: string[] = [];
  const v = parseSpec(variables, input, problems) as PartlyParsed<Variables>;
  problems.push(...problemsBetween(input, v));
  if (problems.length > 0) throw new ConfigError(problems);
  // No problems: every variable parsed, so `v` is complete.
  const { nodeEnv, ...fields } = v as Parsed<Variables>;
  const production = nodeEnv === 'production';
  const issuer = fields.issuer ?? `http://localhost:${fields.port}`;
  return deepFreeze({
    ...fields,
    production,
    host: fields.host ?? (production ? '0.0.0.0' : '127.0.0.1'),
    issuer,
    audience: fields.audience ?? issuer,
    metrics: {
      port: fields.metrics.port === 'off' ? undefined : (fields.metrics.port ?? (nodeEnv === 'development' ? DEV_METRICS_PORT : undefined)),
      host: fields.metrics.host,
      explicit: fields.metrics.port !== undefined,
    },
    devClientSecret: production ? undefined : fields.devClientSecret,
    devUserPassword: production ? undefined : fields.devUserPassword,
  });
}

/** Parses each variable of `spec` from `input`; what does not parse is left out and named in `problems`. */
function parseSpec(spec: Spec, input: Record<string, string>, problems: string[]): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const [field, entry] of Object.entries(spec)) {
    if (!(entry instanceof Variable)) {
      values[field] = parseSpec(entry, input, problems);
      continue;
    }
    const result = entry.schema.safeParse(input[entry.name]);
    if (result.success) values[field] = result.data;
    else problems.push(...result.error.issues.map((issue) => `${[entry.name, ...issue.path].join('.')}: ${issue.message}`));
  }
  return values;
}

/** Checks between variables; each runs when the variables it reads parsed. */
function problemsBetween(input: Record<string, string>, v: PartlyParsed<Variables>): string[] {
  const problems: string[] = [];
  if (input.NODE_ENV === 'production') {
    if (!input.MONGODB_URI) problems.push('MONGODB_URI: required in production');
    if (!input.REDIS_URL && !input.REDIS_CLUSTER_NODES) problems.push('REDIS_URL: required in production (or REDIS_CLUSTER_NODES)');
    if (!input.ISSUER) problems.push('ISSUER: required in production');
    if (v.issuer && new URL(v.issuer).protocol !== 'https:' && !isLoopback(new URL(v.issuer).hostname)) {
      problems.push('ISSUER: must be https in production (http is allowed only for a loopback host)');
    }
  }
  if (v.workers !== undefined && v.workers > 1 && (!input.MONGODB_URI || (!input.REDIS_URL && !input.REDIS_CLUSTER_NODES))) {
    problems.push('WORKERS: more than one worker needs MONGODB_URI and REDIS_URL (the embedded stores live inside one process)');
  }
  const { headersTimeout, requestTimeout } = v.http;
  if (headersTimeout !== undefined && requestTimeout !== undefined && headersTimeout > requestTimeout) {
    problems.push('HTTP_HEADERS_TIMEOUT: must be at most HTTP_REQUEST_TIMEOUT (the headers are part of the request)');
  }
  if (v.refreshFamilyMaxTtl !== undefined && v.refreshTokenTtl !== undefined && v.refreshFamilyMaxTtl < v.refreshTokenTtl) {
    problems.push('REFRESH_FAMILY_MAX_TTL: must be at least REFRESH_TOKEN_TTL');
  }
  // A revoked family's marker lives as long as its access tokens; a family that idles out
  // sooner would leave them verifying with nothing to say it ended.
  if (v.refreshTokenTtl !== undefined && v.accessTokenTtl !== undefined && v.refreshTokenTtl < v.accessTokenTtl) {
    problems.push('REFRESH_TOKEN_TTL: must be at least ACCESS_TOKEN_TTL');
  }
  if (v.events.enabled === false && v.events.webhookUrls !== undefined && v.events.webhookUrls.length > 0) {
    problems.push('SECURITY_EVENTS: off leaves nothing for WEBHOOK_URLS to deliver; unset one of them');
  }
  if (v.events.webhookUrls !== undefined && v.events.webhookUrls.length > 0 && !input.WEBHOOK_SECRET) {
    problems.push('WEBHOOK_SECRET: required with WEBHOOK_URLS (whsec_ followed by the base64 of 24 to 64 random bytes)');
  }
  if (v.signIn.sessionMaxTtl !== undefined && v.signIn.sessionTtl !== undefined && v.signIn.sessionMaxTtl < v.signIn.sessionTtl) {
    problems.push('SIGN_IN_SESSION_MAX_TTL: must be at least SIGN_IN_SESSION_TTL');
  }
  return problems;
}

function variableNames(spec: Spec): string[] {
  return Object.values(spec).flatMap((entry) => (entry instanceof Variable ? [entry.name] : variableNames(entry)));
}

/** The environment variable names the config reads (used by the compose-file test). */
export const CONFIG_VARIABLES: readonly string[] = Object.freeze(variableNames(variables));

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

/**
 * Variables in `env` that this service does not read but that are one or two edits away
 * from one it does (`ACESS_TOKEN_TTL`), each with the name it probably meant: a misspelled
 * variable would otherwise be silently ignored. Other variables (PATH, HOME, ...) are none
 * of our business and are never named.
 */
export function misspelledVariables(env: Env): { name: string; meant: string }[] {
  const known = new Set(CONFIG_VARIABLES);
  const found: { name: string; meant: string }[] = [];
  for (const name of Object.keys(env)) {
    if (known.has(name) || name.length < 5) continue;
    const meant = CONFIG_VARIABLES.find((candidate) => editDistance(name.toUpperCase(), candidate, 2) <= 2);
    if (meant) found.push({ name, meant });
  }
  return found;
}

/** Levenshtein distance, giving up (returning limit + 1) once it must exceed `limit`. */
function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    if (Math.min(...current) > limit) return limit + 1;
    previous = current;
  }
  return previous[b.length]!;
}
