import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, parseDuration } from '../src/config.js';

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
      refreshReuseGrace: 0,
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
    const problems = problemsOf({ PORT: 'abc', WORKERS: '2', HTTP_HEADERS_TIMEOUT: '60s', HTTP_REQUEST_TIMEOUT: '30s', REFRESH_TOKEN_TTL: '30d', REFRESH_FAMILY_MAX_TTL: '7d' });
    expect(problems.map((problem) => problem.split(':')[0]).sort()).toEqual(['HTTP_HEADERS_TIMEOUT', 'PORT', 'REFRESH_FAMILY_MAX_TTL', 'WORKERS']);
  });

  it('limits registrations per IP to 20/1h in production, 1000/1h in dev, unless set', () => {
    expect(parseConfig(production).registerIpRateLimit).toEqual({ points: 20, durationSec: 3600 });
    expect(parseConfig({}).registerIpRateLimit).toEqual({ points: 1000, durationSec: 3600 });
    expect(parseConfig({ REGISTER_IP_RATE_LIMIT: '5/1m' }).registerIpRateLimit).toEqual({ points: 5, durationSec: 60 });
    expect(parseConfig({ ...production, REGISTER_IP_RATE_LIMIT: '50/1h' }).registerIpRateLimit).toEqual({ points: 50, durationSec: 3600 });
  });

  it('refuses a HOST that is neither an IP address nor a host name, and durations over ten years', () => {
    for (const host of ['not a host!', 'a..b', '-leading.example', 'x'.repeat(64)]) expect(problemsOf({ HOST: host })[0]).toMatch(/^HOST: must be an IP address or a host name/);
    for (const host of ['0.0.0.0', '::', '::1', 'localhost', 'auth-1.internal.example', 'my_host.lan', 'auth.example.']) expect(parseConfig({ HOST: host }).host).toBe(host);
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

  it('keeps the absolute family lifetime at least the idle one', () => {
    expect(problemsOf({ REFRESH_TOKEN_TTL: '30d', REFRESH_FAMILY_MAX_TTL: '7d' })[0]).toMatch(/^REFRESH_FAMILY_MAX_TTL/);
  });
});
