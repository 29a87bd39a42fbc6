import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES, ConfigError, misspelledVariables, parseConfig, parseDuration } from '../src/config.js';

const production = {
  NODE_ENV: 'production',
  MONGODB_URI: 'mongodb://db:27017/auth',
  REDIS_URL: 'redis://cache:6379',
  ISSUER: 'https://auth.example.com',
  REFRESH_TOKEN_SECRET: 'x'.repeat(32),
};

function problemsOf(env: Record<string, string>): string[] {
  try {
    parseConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return [...(err as ConfigError).problems];
  }
  throw new Error('expected a ConfigError');
}

describe('config', () => {
  it('parses durations in every documented form', () => {
    expect(parseDuration('900')).toBe(900);
    expect(parseDuration('900s')).toBe(900);
    expect(parseDuration('15m')).toBe(900);
    expect(parseDuration('1h')).toBe(3600);
    expect(parseDuration('7d')).toBe(604800);
    for (const bad of ['', '15x', '-5', '1.5h', 'm', '15 m']) expect(parseDuration(bad)).toBeUndefined();
  });

  it('has dev defaults from the contract and freezes the result', () => {
    const config = parseConfig({});
    expect(config).toMatchObject({
      production: false,
      port: 3000,
      host: '127.0.0.1',
      issuer: 'http://localhost:3000',
      audience: 'http://localhost:3000',
      keysDir: './keys',
      jwksMaxAge: 300,
      accessTokenTtl: 900,
      refreshTokenTtl: 7 * 86400,
      refreshFamilyMaxTtl: 30 * 86400,
      refreshReuseGrace: 10,
      loginRateLimit: { points: 5, durationSec: 900 },
      bodyLimit: 65536,
      corsOrigins: [],
    });
    expect(config.mongodbUri).toBeUndefined();
    expect(config.redisUrl).toBeUndefined();
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.argon2)).toBe(true);
    expect(() => {
      (config as { port: number }).port = 1;
    }).toThrow(TypeError);
  });

  it('reports several bad variables together, each by name', () => {
    const problems = problemsOf({
      PORT: 'eighty',
      ACCESS_TOKEN_TTL: '15x',
      LOGIN_RATE_LIMIT: 'five',
      REDIS_URL: 'http://not-redis',
      CORS_ORIGINS: 'https://ok.example,https://bad.example/path',
      LOG_LEVEL: 'loud',
    });
    const named = problems.map((problem) => problem.split(/[:.]/)[0]);
    expect(named).toEqual(expect.arrayContaining(['PORT', 'ACCESS_TOKEN_TTL', 'LOGIN_RATE_LIMIT', 'REDIS_URL', 'CORS_ORIGINS', 'LOG_LEVEL']));
    expect(problems).toHaveLength(6);
  });

  it('runs the checks between variables even when another variable is bad, naming all of them', () => {
    const problems = problemsOf({
      PORT: 'abc',
      WORKERS: '2',
      HTTP_HEADERS_TIMEOUT: '60s',
      HTTP_REQUEST_TIMEOUT: '30s',
      REFRESH_TOKEN_TTL: '30d',
      REFRESH_FAMILY_MAX_TTL: '7d',
    });
    expect(problems.map((problem) => problem.split(':')[0]).sort()).toEqual(['HTTP_HEADERS_TIMEOUT', 'PORT', 'REFRESH_FAMILY_MAX_TTL', 'WORKERS']);
  });

  it('limits registrations per IP to 20/1h in production, 1000/1h in dev, unless set', () => {
    expect(parseConfig(production).registerIpRateLimit).toEqual({ points: 20, durationSec: 3600 });
    expect(parseConfig({}).registerIpRateLimit).toEqual({ points: 1000, durationSec: 3600 });
    expect(parseConfig({ REGISTER_IP_RATE_LIMIT: '5/1m' }).registerIpRateLimit).toEqual({ points: 5, durationSec: 60 });
    expect(parseConfig({ ...production, REGISTER_IP_RATE_LIMIT: '50/1h' }).registerIpRateLimit).toEqual({ points: 50, durationSec: 3600 });
  });

  it('refuses a HOST that is neither an IP address nor a host name, and durations over ten years', () => {
    for (const host of ['not a host!', 'a..b', '-leading.example', 'x'.repeat(64)])
      expect(problemsOf({ HOST: host })[0]).toMatch(/^HOST: must be an IP address or a host name/);
    for (const host of ['0.0.0.0', '::', '::1', 'localhost', 'auth-1.internal.example', 'my_host.lan', 'auth.example.'])
      expect(parseConfig({ HOST: host }).host).toBe(host);
    expect(problemsOf({ JWKS_MAX_AGE: '999999999d' })[0]).toMatch(/^JWKS_MAX_AGE: must be at most 315360000s/);
    expect(problemsOf({ ACCESS_TOKEN_TTL: '3651d' })[0]).toMatch(/^ACCESS_TOKEN_TTL: must be at most/);
    expect(parseConfig({ REFRESH_FAMILY_MAX_TTL: '400d' }).refreshFamilyMaxTtl).toBe(400 * 86_400);
  });

  it('refuses production without its stores and issuer, naming what is missing', () => {
    const problems = problemsOf({ NODE_ENV: 'production' });
    expect(problems.join('\n')).toMatch(/MONGODB_URI/);
    expect(problems.join('\n')).toMatch(/REDIS_URL/);
    expect(problems.join('\n')).toMatch(/ISSUER/);
    // The contract's three: the refresh-token secret may come from KEYS_DIR instead.
    expect(problems).toHaveLength(3);
  });

  it('accepts a complete production environment, and a cluster instead of REDIS_URL', () => {
    expect(parseConfig(production)).toMatchObject({ production: true, host: '0.0.0.0', issuer: 'https://auth.example.com' });
    const { REDIS_URL: _, ...withoutUrl } = production;
    const config = parseConfig({ ...withoutUrl, REDIS_CLUSTER_NODES: '10.0.0.1:7000, 10.0.0.2:7001' });
    expect(config.redisClusterNodes).toEqual([
      { host: '10.0.0.1', port: 7000 },
      { host: '10.0.0.2', port: 7001 },
    ]);
    expect(problemsOf({ ...withoutUrl, REDIS_CLUSTER_NODES: 'nohost' })[0]).toMatch(/^REDIS_CLUSTER_NODES/);
  });

  it('has no default for a secret, and ignores dev secrets in production', () => {
    expect(parseConfig({}).refreshTokenSecret).toBeUndefined();
    expect(parseConfig({}).devClientSecret).toBeUndefined();
    expect(parseConfig({ ...production, DEV_USER_PASSWORD: 'password1' }).devUserPassword).toBeUndefined();
    expect(problemsOf({ ...production, REFRESH_TOKEN_SECRET: 'short' })[0]).toMatch(/^REFRESH_TOKEN_SECRET/);
  });

  it('rejects a plain-http issuer in production except on loopback, and a bad issuer shape', () => {
    expect(problemsOf({ ...production, ISSUER: 'http://auth.example.com' })[0]).toMatch(/^ISSUER: must be https/);
    expect(parseConfig({ ...production, ISSUER: 'http://127.0.0.1:3000' }).issuer).toBe('http://127.0.0.1:3000');
    // A name that starts like a loopback address is not one.
    expect(problemsOf({ ...production, ISSUER: 'http://127.evil.example' })[0]).toMatch(/^ISSUER: must be https/);
    expect(problemsOf({ ISSUER: 'https://auth.example.com/' })[0]).toMatch(/^ISSUER/);
    expect(problemsOf({ ISSUER: 'not a url' })[0]).toMatch(/^ISSUER/);
  });

  it('caps timeouts at a day (timers past 24.8 days fire at once) and wants the headers timeout within the request timeout', () => {
    expect(problemsOf({ SHUTDOWN_TIMEOUT: '30d' })[0]).toMatch(/^SHUTDOWN_TIMEOUT: must be at most 86400s/);
    expect(parseConfig({ SHUTDOWN_TIMEOUT: '1d' }).shutdownTimeout).toBe(86_400);
    expect(problemsOf({ HTTP_HEADERS_TIMEOUT: '60s' })[0]).toMatch(/^HTTP_HEADERS_TIMEOUT: must be at most HTTP_REQUEST_TIMEOUT/);
    expect(parseConfig({ HTTP_HEADERS_TIMEOUT: '60s', HTTP_REQUEST_TIMEOUT: '60s' }).http.headersTimeout).toBe(60);
  });

  it('takes WORKERS as a count or auto, and only with shared stores', () => {
    expect(parseConfig({}).workers).toBe(1);
    expect(parseConfig({ ...production, WORKERS: '3' }).workers).toBe(3);
    expect(parseConfig({ ...production, WORKERS: 'auto' }).workers).toBeGreaterThanOrEqual(1);
    expect(problemsOf({ ...production, WORKERS: 'many' })[0]).toMatch(/^WORKERS/);
    expect(problemsOf({ WORKERS: '2' })[0]).toMatch(/^WORKERS: more than one worker needs MONGODB_URI and REDIS_URL/);
  });

  it('keeps the idle family lifetime at least the access-token lifetime', () => {
    expect(problemsOf({ ACCESS_TOKEN_TTL: '1h', REFRESH_TOKEN_TTL: '30m' })).toEqual(['REFRESH_TOKEN_TTL: must be at least ACCESS_TOKEN_TTL']);
    expect(parseConfig({ ACCESS_TOKEN_TTL: '1h', REFRESH_TOKEN_TTL: '1h' }).refreshTokenTtl).toBe(3600);
  });

  it('keeps the absolute family lifetime at least the idle one', () => {
    expect(problemsOf({ REFRESH_TOKEN_TTL: '30d', REFRESH_FAMILY_MAX_TTL: '7d' })[0]).toMatch(/^REFRESH_FAMILY_MAX_TTL/);
  });
});

// Parity: pinned before Config was derived from the schema; every name, default and message as it was.
describe('config, all of it', () => {
  it('reads exactly these variables, in this order', () => {
    expect(CONFIG_VARIABLES).toEqual([
      'NODE_ENV',
      'PORT',
      'HOST',
      'ISSUER',
      'MONGODB_URI',
      'REDIS_URL',
      'REDIS_CLUSTER_NODES',
      'KEYS_DIR',
      'ID_TOKEN_SIGNING_ALGS',
      'JWKS_MAX_AGE',
      'KEY_PROMOTION_MARGIN',
      'CLOCK_SKEW',
      'ACCESS_TOKEN_TTL',
      'REFRESH_TOKEN_TTL',
      'REFRESH_FAMILY_MAX_TTL',
      'REFRESH_REUSE_GRACE',
      'REFRESH_FAMILIES_PER_USER',
      'REFRESH_TOKEN_SECRET',
      'AUDIENCE',
      'LOGIN_RATE_LIMIT',
      'LOGIN_IP_RATE_LIMIT',
      'LOGIN_ACCOUNT_RATE_LIMIT',
      'CLIENT_AUTH_RATE_LIMIT',
      'REGISTER_RATE_LIMIT',
      'REGISTER_IP_RATE_LIMIT',
      'SCOPES_SUPPORTED',
      'LOGIN_CLIENT_ID',
      'CORS_ORIGINS',
      'LOG_LEVEL',
      'WORKERS',
      'TRUST_PROXY_HOPS',
      'CLIENT_CACHE_TTL',
      'USER_CACHE_TTL',
      'BODY_LIMIT',
      'SHUTDOWN_TIMEOUT',
      'HTTP_HEADERS_TIMEOUT',
      'HTTP_REQUEST_TIMEOUT',
      'HTTP_KEEPALIVE_TIMEOUT',
      'ARGON2_MEMORY_KIB',
      'ARGON2_TIME_COST',
      'ARGON2_PARALLELISM',
      'PRODUCT_NAME',
      'PAGES_STYLESHEET',
      'PAGES_LOGO',
      'REQUIRE_PAR',
      'SIGN_IN_SESSION_TTL',
      'SIGN_IN_SESSION_MAX_TTL',
      'SECURITY_EVENTS',
      'EVENTS_STREAM_MAXLEN',
      'WEBHOOK_URLS',
      'WEBHOOK_SECRET',
      'WEBHOOK_TIMEOUT',
      'WEBHOOK_RETRY_BASE',
      'WEBHOOK_RETRY_MAX',
      'SMTP_URL',
      'SMTP_CA_FILE',
      'MAIL_FROM',
      'MAIL_TEMPLATES_DIR',
      'MAIL_RETRY_BASE',
      'MAIL_RETRY_MAX',
      'MAIL_MAX_ATTEMPTS',
      'MAIL_RATE_LIMIT',
      'MAIL_IP_RATE_LIMIT',
      'REQUIRE_VERIFIED_EMAIL',
      'HIBP_RANGE_URL',
      'METRICS_PORT',
      'METRICS_HOST',
      'DEV_CLIENT_SECRET',
      'DEV_USER_PASSWORD',
    ]);
  });

  it('gives exactly these fields and defaults in dev', () => {
    const config = parseConfig({});
    expect(Object.keys(config).sort()).toEqual(
      [
        'production',
        'port',
        'host',
        'issuer',
        'audience',
        'mongodbUri',
        'redisUrl',
        'redisClusterNodes',
        'keysDir',
        'idTokenSigningAlgs',
        'jwksMaxAge',
        'keyPromotionMargin',
        'clockSkew',
        'accessTokenTtl',
        'refreshTokenTtl',
        'refreshFamilyMaxTtl',
        'refreshReuseGrace',
        'refreshFamiliesPerUser',
        'refreshTokenSecret',
        'loginRateLimit',
        'loginIpRateLimit',
        'loginAccountRateLimit',
        'clientAuthRateLimit',
        'registerRateLimit',
        'registerIpRateLimit',
        'corsOrigins',
        'loginClientId',
        'scopesSupported',
        'logLevel',
        'trustProxyHops',
        'workers',
        'clientCacheTtl',
        'userCacheTtl',
        'bodyLimit',
        'shutdownTimeout',
        'http',
        'argon2',
        'signIn',
        'events',
        'mail',
        'requireVerifiedEmail',
        'hibpRangeUrl',
        'metrics',
        'devClientSecret',
        'devUserPassword',
      ].sort(),
    );
    expect(config).toEqual({
      production: false,
      port: 3000,
      host: '127.0.0.1',
      issuer: 'http://localhost:3000',
      audience: 'http://localhost:3000',
      keysDir: './keys',
      idTokenSigningAlgs: [],
      jwksMaxAge: 300,
      keyPromotionMargin: 60,
      clockSkew: 60,
      accessTokenTtl: 900,
      refreshTokenTtl: 604800,
      refreshFamilyMaxTtl: 2592000,
      refreshReuseGrace: 10,
      refreshFamiliesPerUser: 100,
      loginRateLimit: { points: 5, durationSec: 900 },
      loginIpRateLimit: { points: 100, durationSec: 900 },
      loginAccountRateLimit: { points: 50, durationSec: 3600 },
      clientAuthRateLimit: { points: 20, durationSec: 900 },
      registerRateLimit: { points: 10, durationSec: 3600 },
      registerIpRateLimit: { points: 1000, durationSec: 3600 },
      corsOrigins: [],
      loginClientId: 'demo-app',
      scopesSupported: [],
      logLevel: 'info',
      trustProxyHops: 0,
      workers: 1,
      clientCacheTtl: 30,
      userCacheTtl: 60,
      bodyLimit: 65536,
      shutdownTimeout: 10,
      http: { headersTimeout: 10, requestTimeout: 30, keepAliveTimeout: 5 },
      argon2: { memoryCost: 19456, timeCost: 2, parallelism: 1 },
      signIn: { productName: 'Token Authority', stylesheetFile: undefined, logoFile: undefined, requirePar: false, sessionTtl: 86400, sessionMaxTtl: 604800 },
      events: {
        enabled: true,
        streamMaxLen: 100_000,
        webhookUrls: [],
        webhookSecret: undefined,
        webhookTimeout: 10,
        webhookRetryBaseMs: 1000,
        webhookRetryMaxMs: 300_000,
      },
      mail: {
        smtpUrl: undefined,
        smtpCaFile: undefined,
        from: undefined,
        templatesDir: undefined,
        retryBase: 10,
        retryMax: 900,
        maxAttempts: 15,
        addressRateLimit: { points: 5, durationSec: 3600 },
        ipRateLimit: { points: 30, durationSec: 3600 },
      },
      requireVerifiedEmail: false,
      hibpRangeUrl: undefined,
      metrics: { port: 9464, host: '127.0.0.1', explicit: false },
      mongodbUri: undefined,
      redisUrl: undefined,
      redisClusterNodes: undefined,
      refreshTokenSecret: undefined,
      devClientSecret: undefined,
      devUserPassword: undefined,
    });
  });

  it('names every bad variable with its own message, in this order', () => {
    const everyBad = Object.fromEntries(CONFIG_VARIABLES.map((name) => [name, 'bad value!']));
    expect(problemsOf({ ...everyBad, NODE_ENV: 'production' })).toEqual([
      'PORT: "bad value!" must be an integer from 0 to 65535',
      'HOST: must be an IP address or a host name',
      'ISSUER: must be a URL (http: or https:)',
      'MONGODB_URI: must be a URL (mongodb: or mongodb+srv:)',
      'REDIS_URL: must be a URL (redis: or rediss:)',
      'REDIS_CLUSTER_NODES: must be a comma-separated list of host:port',
      'ID_TOKEN_SIGNING_ALGS.0: Invalid option: expected one of "RS256"|"PS256"',
      'JWKS_MAX_AGE: "bad value!" is not a duration (use 900, 900s, 15m, 1h or 7d)',
      'KEY_PROMOTION_MARGIN: "bad value!" is not a duration (use 900, 900s, 15m, 1h or 7d)',
      'CLOCK_SKEW: "bad value!" is not a duration (use 900, 900s, 15m, 1h or 7d)',
      'ACCESS_TOKEN_TTL: "bad value!" is not a duration (use 900, 900s, 15m, 1h or 7d)',
      'REFRESH_TOKEN_TTL: "bad value!" is not a duration (use 900, 900s, 15m, 1h or 7d)',
      'REFRESH_FAMILY_MAX_TTL: "bad value!" is not a duration (use 900, 900s, 15m, 1h or 7d)',
      'REFRESH_REUSE_GRACE: "bad value!" is not a duration (use 900, 900s, 15m, 1h or 7d)',
      'REFRESH_FAMILIES_PER_USER: "bad value!" must be an integer from 1 to 100000',
      'REFRESH_TOKEN_SECRET: must be at least 32 characters of secret material',
      'LOGIN_RATE_LIMIT: "bad value!" is not a budget (use <count>/<duration>, e.g. 5/15m)',
      'LOGIN_IP_RATE_LIMIT: "bad value!" is not a budget (use <count>/<duration>, e.g. 5/15m)',
      'LOGIN_ACCOUNT_RATE_LIMIT: "bad value!" is not a budget (use <count>/<duration>, e.g. 5/15m)',
      'CLIENT_AUTH_RATE_LIMIT: "bad value!" is not a budget (use <count>/<duration>, e.g. 5/15m)',
      'REGISTER_RATE_LIMIT: "bad value!" is not a budget (use <count>/<duration>, e.g. 5/15m)',
      'REGISTER_IP_RATE_LIMIT: "bad value!" is not a budget (use <count>/<duration>, e.g. 5/15m)',
      'CORS_ORIGINS.0: each origin must be exactly scheme://host[:port]',
      'LOG_LEVEL: Invalid option: expected one of "fatal"|"error"|"warn"|"info"|"debug"|"trace"|"silent"',
      'WORKERS: "bad value!" must be auto or an integer from 1 to 64',
      'TRUST_PROXY_HOPS: "bad value!" must be an integer from 0 to 10',
      'CLIENT_CACHE_TTL: "bad value!" is not a duration (use 900, 900s, 15m, 1h or 7d)',
      'USER_CACHE_TTL: "bad value!" is not a duration (use 900, 900s, 15m, 1h or 7d)',
      'BODY_LIMIT: "bad value!" must be an integer from 1024 to 10485760',
      'SHUTDOWN_TIMEOUT: "bad value!" is not a duration (use 900, 900s, 15m, 1h or 7d)',
      'HTTP_HEADERS_TIMEOUT: "bad value!" is not a duration (use 900, 900s, 15m, 1h or 7d)',
      'HTTP_REQUEST_TIMEOUT: "bad value!" is not a duration (use 900, 900s, 15m, 1h or 7d)',
      'HTTP_KEEPALIVE_TIMEOUT: "bad value!" is not a duration (use 900, 900s, 15m, 1h or 7d)',
      'ARGON2_MEMORY_KIB: "bad value!" must be an integer from 8192 to 4194304',
      'ARGON2_TIME_COST: "bad value!" must be an integer from 1 to 20',
      'ARGON2_PARALLELISM: "bad value!" must be an integer from 1 to 16',
      'PAGES_LOGO: must be an .svg, .png or .webp file',
      'REQUIRE_PAR: Invalid option: expected one of "true"|"false"',
      'SIGN_IN_SESSION_TTL: "bad value!" is not a duration (use 900, 900s, 15m, 1h or 7d)',
      'SIGN_IN_SESSION_MAX_TTL: "bad value!" is not a duration (use 900, 900s, 15m, 1h or 7d)',
      'SECURITY_EVENTS: Invalid option: expected one of "on"|"off"',
      'EVENTS_STREAM_MAXLEN: "bad value!" must be an integer from 100 to 100000000',
      'WEBHOOK_URLS.0: must be a URL (http: or https:)',
      'WEBHOOK_SECRET: must be whsec_ followed by the base64 of 24 to 64 random bytes (e.g. whsec_$(openssl rand -base64 32))',
      'WEBHOOK_TIMEOUT: "bad value!" is not a duration (use 900, 900s, 15m, 1h or 7d)',
      'WEBHOOK_RETRY_BASE: "bad value!" must be a duration from 1ms to 3600s (e.g. 250ms, 2s, 5m)',
      'WEBHOOK_RETRY_MAX: "bad value!" must be a duration from 1ms to 86400s (e.g. 250ms, 2s, 5m)',
      'SMTP_URL: must be a URL (smtp: or smtps:)',
      'MAIL_RETRY_BASE: "bad value!" is not a duration (use 900, 900s, 15m, 1h or 7d)',
      'MAIL_RETRY_MAX: "bad value!" is not a duration (use 900, 900s, 15m, 1h or 7d)',
      'MAIL_MAX_ATTEMPTS: "bad value!" must be an integer from 1 to 100',
      'MAIL_RATE_LIMIT: "bad value!" is not a budget (use <count>/<duration>, e.g. 5/15m)',
      'MAIL_IP_RATE_LIMIT: "bad value!" is not a budget (use <count>/<duration>, e.g. 5/15m)',
      'REQUIRE_VERIFIED_EMAIL: Invalid option: expected one of "true"|"false"',
      'HIBP_RANGE_URL: must be a URL (http: or https:)',
      'METRICS_PORT: "bad value!" must be off or an integer from 0 to 65535',
      'METRICS_HOST: must be an IP address or a host name',
      'DEV_CLIENT_SECRET: Too small: expected string to have >=16 characters',
    ]);
  });

  it('names every problem between variables, in this order', () => {
    const env = {
      NODE_ENV: 'production',
      ISSUER: 'http://auth.example.com',
      WORKERS: '2',
      HTTP_HEADERS_TIMEOUT: '20s',
      HTTP_REQUEST_TIMEOUT: '10s',
      REFRESH_TOKEN_TTL: '30d',
      REFRESH_FAMILY_MAX_TTL: '7d',
    };
    expect(problemsOf(env)).toEqual([
      'MONGODB_URI: required in production',
      'REDIS_URL: required in production (or REDIS_CLUSTER_NODES)',
      'ISSUER: must be https in production (http is allowed only for a loopback host)',
      'WORKERS: more than one worker needs MONGODB_URI and REDIS_URL (the embedded stores live inside one process)',
      'HTTP_HEADERS_TIMEOUT: must be at most HTTP_REQUEST_TIMEOUT (the headers are part of the request)',
      'REFRESH_FAMILY_MAX_TTL: must be at least REFRESH_TOKEN_TTL',
    ]);
  });

  it('maps a complete production environment onto every field', () => {
    const config = parseConfig({
      ...production,
      PORT: '8443',
      HOST: '10.0.0.5',
      REDIS_CLUSTER_NODES: 'a:7000,[::1]:7001',
      KEYS_DIR: '/keys',
      ID_TOKEN_SIGNING_ALGS: 'RS256,PS256',
      JWKS_MAX_AGE: '10m',
      KEY_PROMOTION_MARGIN: '2m',
      CLOCK_SKEW: '30s',
      ACCESS_TOKEN_TTL: '5m',
      REFRESH_TOKEN_TTL: '1d',
      REFRESH_FAMILY_MAX_TTL: '10d',
      REFRESH_REUSE_GRACE: '5s',
      REFRESH_FAMILIES_PER_USER: '7',
      AUDIENCE: 'api',
      LOGIN_RATE_LIMIT: '1/1m',
      LOGIN_IP_RATE_LIMIT: '2/2m',
      LOGIN_ACCOUNT_RATE_LIMIT: '3/3m',
      CLIENT_AUTH_RATE_LIMIT: '4/4m',
      REGISTER_RATE_LIMIT: '5/5m',
      REGISTER_IP_RATE_LIMIT: '6/6m',
      SCOPES_SUPPORTED: 'a, b',
      LOGIN_CLIENT_ID: 'web',
      CORS_ORIGINS: 'https://app.example.com',
      LOG_LEVEL: 'warn',
      WORKERS: '3',
      TRUST_PROXY_HOPS: '1',
      CLIENT_CACHE_TTL: '0',
      USER_CACHE_TTL: '0',
      BODY_LIMIT: '2048',
      SHUTDOWN_TIMEOUT: '20s',
      HTTP_HEADERS_TIMEOUT: '3s',
      HTTP_REQUEST_TIMEOUT: '4s',
      HTTP_KEEPALIVE_TIMEOUT: '6s',
      ARGON2_MEMORY_KIB: '9000',
      ARGON2_TIME_COST: '3',
      ARGON2_PARALLELISM: '2',
      PRODUCT_NAME: 'Example Login',
      PAGES_STYLESHEET: '/etc/brand/pages.css',
      PAGES_LOGO: '/etc/brand/logo.svg',
      REQUIRE_PAR: 'true',
      SIGN_IN_SESSION_TTL: '2h',
      SIGN_IN_SESSION_MAX_TTL: '1d',
      SECURITY_EVENTS: 'on',
      EVENTS_STREAM_MAXLEN: '1000',
      WEBHOOK_URLS: 'https://siem.example.com/hook',
      WEBHOOK_SECRET: `whsec_${'A'.repeat(32)}`,
      WEBHOOK_TIMEOUT: '7s',
      WEBHOOK_RETRY_BASE: '500ms',
      WEBHOOK_RETRY_MAX: '1h',
      SMTP_URL: 'smtp://mailer:secret@mail.example.com:587?requireTLS=true',
      SMTP_CA_FILE: '/etc/mail/ca.pem',
      MAIL_FROM: 'Example <no-reply@example.com>',
      MAIL_TEMPLATES_DIR: '/etc/brand/mail',
      MAIL_RETRY_BASE: '30s',
      MAIL_RETRY_MAX: '1h',
      MAIL_MAX_ATTEMPTS: '20',
      MAIL_RATE_LIMIT: '3/1h',
      MAIL_IP_RATE_LIMIT: '10/1h',
      REQUIRE_VERIFIED_EMAIL: 'true',
      HIBP_RANGE_URL: 'https://api.pwnedpasswords.com/range/',
      METRICS_PORT: '9100',
      METRICS_HOST: '10.0.0.6',
      DEV_CLIENT_SECRET: 'x'.repeat(16),
      DEV_USER_PASSWORD: 'password',
    });
    expect(config).toEqual({
      production: true,
      port: 8443,
      host: '10.0.0.5',
      issuer: 'https://auth.example.com',
      audience: 'api',
      mongodbUri: 'mongodb://db:27017/auth',
      redisUrl: 'redis://cache:6379',
      redisClusterNodes: [
        { host: 'a', port: 7000 },
        { host: '::1', port: 7001 },
      ],
      keysDir: '/keys',
      idTokenSigningAlgs: ['RS256', 'PS256'],
      jwksMaxAge: 600,
      keyPromotionMargin: 120,
      clockSkew: 30,
      accessTokenTtl: 300,
      refreshTokenTtl: 86400,
      refreshFamilyMaxTtl: 864000,
      refreshReuseGrace: 5,
      refreshFamiliesPerUser: 7,
      refreshTokenSecret: 'x'.repeat(32),
      loginRateLimit: { points: 1, durationSec: 60 },
      loginIpRateLimit: { points: 2, durationSec: 120 },
      loginAccountRateLimit: { points: 3, durationSec: 180 },
      clientAuthRateLimit: { points: 4, durationSec: 240 },
      registerRateLimit: { points: 5, durationSec: 300 },
      registerIpRateLimit: { points: 6, durationSec: 360 },
      corsOrigins: ['https://app.example.com'],
      scopesSupported: ['a', 'b'],
      loginClientId: 'web',
      logLevel: 'warn',
      trustProxyHops: 1,
      workers: 3,
      clientCacheTtl: 0,
      userCacheTtl: 0,
      bodyLimit: 2048,
      shutdownTimeout: 20,
      http: { headersTimeout: 3, requestTimeout: 4, keepAliveTimeout: 6 },
      argon2: { memoryCost: 9000, timeCost: 3, parallelism: 2 },
      devClientSecret: undefined,
      devUserPassword: undefined,
      events: {
        enabled: true,
        streamMaxLen: 1000,
        webhookUrls: ['https://siem.example.com/hook'],
        webhookSecret: `whsec_${'A'.repeat(32)}`,
        webhookTimeout: 7,
        webhookRetryBaseMs: 500,
        webhookRetryMaxMs: 3_600_000,
      },
      signIn: {
        productName: 'Example Login',
        stylesheetFile: '/etc/brand/pages.css',
        logoFile: '/etc/brand/logo.svg',
        requirePar: true,
        sessionTtl: 7200,
        sessionMaxTtl: 86400,
      },
      mail: {
        smtpUrl: 'smtp://mailer:secret@mail.example.com:587?requireTLS=true',
        smtpCaFile: '/etc/mail/ca.pem',
        from: 'Example <no-reply@example.com>',
        templatesDir: '/etc/brand/mail',
        retryBase: 30,
        retryMax: 3600,
        maxAttempts: 20,
        addressRateLimit: { points: 3, durationSec: 3600 },
        ipRateLimit: { points: 10, durationSec: 3600 },
      },
      requireVerifiedEmail: true,
      hibpRangeUrl: 'https://api.pwnedpasswords.com/range/',
      metrics: { port: 9100, host: '10.0.0.6', explicit: true },
    });
  });
});

describe('misspelled variables', () => {
  it('names a variable one or two edits from one we read, with the one it probably meant, and nothing else', () => {
    expect(
      misspelledVariables({
        ACESS_TOKEN_TTL: '1h',
        REFRESH_TOKN_TTL: '7d',
        redis_url: 'redis://x',
        ACCESS_TOKEN_TTL: '1h',
        PATH: '/usr/bin',
        HOME: '/root',
        NODE_OPTIONS: '',
        LANG: 'C',
        REDIS_PASSWORD: 'x',
      }),
    ).toEqual([
      { name: 'ACESS_TOKEN_TTL', meant: 'ACCESS_TOKEN_TTL' },
      { name: 'REFRESH_TOKN_TTL', meant: 'REFRESH_TOKEN_TTL' },
      { name: 'redis_url', meant: 'REDIS_URL' },
    ]);
    expect(misspelledVariables(Object.fromEntries(CONFIG_VARIABLES.map((name) => [name, 'x'])))).toEqual([]);
  });
});

describe('security events and webhooks', () => {
  const secret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;

  it('parses the webhook settings', () => {
    const config = parseConfig({
      WEBHOOK_URLS: 'https://a.example/hook, http://10.0.0.2:8080/x',
      WEBHOOK_SECRET: secret,
      WEBHOOK_RETRY_BASE: '250ms',
      WEBHOOK_RETRY_MAX: '2m',
      EVENTS_STREAM_MAXLEN: '5000',
    });
    expect(config.events).toEqual({
      enabled: true,
      streamMaxLen: 5000,
      webhookUrls: ['https://a.example/hook', 'http://10.0.0.2:8080/x'],
      webhookSecret: secret,
      webhookTimeout: 10,
      webhookRetryBaseMs: 250,
      webhookRetryMaxMs: 120_000,
    });
  });

  it('turns security events off with SECURITY_EVENTS=off (the bench compares), not with webhooks to deliver', () => {
    expect(parseConfig({}).events.enabled).toBe(true);
    expect(parseConfig({ SECURITY_EVENTS: 'off' }).events.enabled).toBe(false);
    expect(problemsOf({ SECURITY_EVENTS: 'no' })[0]).toMatch(/^SECURITY_EVENTS: /);
    expect(problemsOf({ SECURITY_EVENTS: 'off', WEBHOOK_URLS: 'https://a.example/hook', WEBHOOK_SECRET: secret })).toEqual([
      'SECURITY_EVENTS: off leaves nothing for WEBHOOK_URLS to deliver; unset one of them',
    ]);
  });

  it('needs a Standard Webhooks secret of 24 to 64 bytes with WEBHOOK_URLS', () => {
    expect(problemsOf({ WEBHOOK_URLS: 'https://a.example/hook' })).toEqual([
      'WEBHOOK_SECRET: required with WEBHOOK_URLS (whsec_ followed by the base64 of 24 to 64 random bytes)',
    ]);
    expect(problemsOf({ WEBHOOK_URLS: 'https://u:p@a.example/hook', WEBHOOK_SECRET: secret })[0]).toMatch(/^WEBHOOK_URLS.0: must not carry user:password@/);
    for (const bad of ['whsec_' + Buffer.alloc(16).toString('base64'), Buffer.alloc(32).toString('base64'), 'whsec_not base64!']) {
      expect(problemsOf({ WEBHOOK_URLS: 'https://a.example/hook', WEBHOOK_SECRET: bad })[0]).toMatch(/^WEBHOOK_SECRET: must be whsec_/);
    }
  });
});
