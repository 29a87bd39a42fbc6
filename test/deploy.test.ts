import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CONFIG_VARIABLES, parseConfig } from '../src/config.js';

interface Service {
  build?: { context: string; dockerfile: string };
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  profiles?: string[];
  ports?: string[];
}

const compose = parse(readFileSync(new URL('../docker-compose.yml', import.meta.url), 'utf8')) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};
const dockerfile = readFileSync(new URL('../Dockerfile', import.meta.url), 'utf8');

describe('docker-compose.yml', () => {
  it('runs the app, MongoDB and Redis, each with a health check', () => {
    const always = Object.entries(compose.services).filter(([, service]) => service.profiles === undefined);
    expect(always.map(([name]) => name).sort()).toEqual(['app', 'mongo', 'redis']);
    for (const [name, service] of always) {
      expect(service.healthcheck?.test?.length, `${name} health check`).toBeGreaterThan(0);
    }
  });

  it('builds the app from the Dockerfile in production mode and waits for healthy stores', () => {
    const app = compose.services.app!;
    expect(app.build).toEqual({ context: '.', dockerfile: 'Dockerfile' });
    expect(app.environment?.NODE_ENV).toBe('production');
    expect(app.depends_on).toEqual({ mongo: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' } });
    expect(app.volumes).toContain('./keys:/keys:ro');
    expect(app.environment?.KEYS_DIR).toBe('/keys');
  });

  it('passes only variables the config knows, and enough of them to start in production', () => {
    const env = compose.services.app!.environment!;
    for (const name of Object.keys(env)) expect(CONFIG_VARIABLES, name).toContain(name);
    // Nothing is required from .env: with every ${VAR:-default} at its default (and no
    // ${VAR:?} demanding a value), the configuration is complete; the refresh-token secret
    // then comes from /keys/refresh-token.secret, which the first keys:rotate made.
    for (const value of Object.values(env)) expect(value).not.toMatch(/\$\{\w+:\?/);
    const resolved = Object.fromEntries(
      Object.entries(env).map(([key, value]) => [key, value.replace(/\$\{(\w+)(?::-([^}]*))?\}/g, (_, _name: string, fallback = '') => fallback)]),
    );
    expect(resolved.REFRESH_TOKEN_SECRET).toBe('');
    expect(() => parseConfig(resolved)).not.toThrow();
  });

  it('persists Redis (append-only file) and MongoDB on named volumes', () => {
    const redis = compose.services.redis!;
    expect(redis.command?.join(' ')).toMatch(/--appendonly yes/);
    expect(redis.volumes).toContain('redis-data:/data');
    expect(compose.services.mongo!.volumes).toContain('mongo-data:/data/db');
    expect(Object.keys(compose.volumes)).toEqual(expect.arrayContaining(['redis-data', 'mongo-data']));
  });
});

describe('Dockerfile', () => {
  it('is multi-stage, runs as a non-root user in production mode, and has a health check', () => {
    expect(dockerfile.match(/^FROM /gm)?.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/NODE_ENV=production/);
    expect(dockerfile).toMatch(/^HEALTHCHECK /m);
    expect(dockerfile).toMatch(/npm prune --omit=dev/);
  });

  it('downloads no mongod test binary into the image, drops npm caches, and checks argon2 loads', () => {
    expect(dockerfile).toMatch(/^RUN MONGOMS_DISABLE_POSTINSTALL=1 npm ci /m);
    expect(dockerfile).not.toMatch(/--ignore-scripts/);
    expect(dockerfile).toMatch(/rm -rf node_modules\/\.cache/);
    expect(dockerfile).toMatch(/require\('argon2'\)\.hash\(/);
  });
});

describe('docker-compose.yml shutdown', () => {
  it('gives the app longer to stop than its own drain timeout', () => {
    const grace = (compose.services.app as Service & { stop_grace_period?: string }).stop_grace_period;
    expect(grace).toMatch(/^\d+s$/);
    expect(Number.parseInt(grace!, 10)).toBeGreaterThan(parseConfig({}).shutdownTimeout);
  });
});

describe('docker-compose.yml observability profile', () => {
  it('adds Prometheus with the alert rules and Grafana with the dashboard, only when asked for', () => {
    const optional = Object.entries(compose.services).filter(([, service]) => service.profiles !== undefined);
    expect(optional.map(([name]) => name).sort()).toEqual(['grafana', 'prometheus']);
    for (const [, service] of optional) expect(service.profiles).toEqual(['observability']);
    const { prometheus, grafana } = compose.services;
    expect(prometheus!.volumes).toContain('./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro');
    expect(prometheus!.volumes).toContain('./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro');
    expect(grafana!.volumes).toContain('./deploy/grafana/provisioning:/etc/grafana/provisioning:ro');
    expect(grafana!.volumes).toContain('./deploy/grafana/token-authority.json:/var/lib/grafana/dashboards/token-authority.json:ro');
    for (const volume of [...prometheus!.volumes!, ...grafana!.volumes!]) {
      const source = volume.split(':')[0]!;
      if (source.startsWith('./')) expect(existsSync(new URL(`../${source.slice(2)}`, import.meta.url)), source).toBe(true);
      else expect(compose.volumes, source).toHaveProperty(source);
    }
    // Their UIs on loopback only; the app's metrics listener is on the compose network, never published.
    for (const port of [...prometheus!.ports!, ...grafana!.ports!]) expect(port).toMatch(/^127\.0\.0\.1:/);
    const app = compose.services.app!;
    expect(app.environment?.METRICS_PORT).toBe('${METRICS_PORT:-9464}');
    expect(app.ports!.some((port) => port.includes('9464'))).toBe(false);
    const scrape = parse(readFileSync(new URL('../deploy/prometheus/prometheus.yml', import.meta.url), 'utf8')) as {
      rule_files: string[];
      scrape_configs: { static_configs: { targets: string[] }[] }[];
    };
    expect(scrape.rule_files).toEqual(['/etc/prometheus/alerts.yml']);
    expect(scrape.scrape_configs[0]!.static_configs[0]!.targets).toEqual(['app:9464']);
  });
});
