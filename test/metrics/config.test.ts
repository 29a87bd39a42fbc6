import { describe, expect, it } from 'vitest';
import { DEV_METRICS_PORT, parseConfig } from '../../src/config.js';

const production = { NODE_ENV: 'production', MONGODB_URI: 'mongodb://db/x', REDIS_URL: 'redis://cache', ISSUER: 'https://auth.example' };

describe('METRICS_PORT and METRICS_HOST', () => {
  it('are on in dev mode (port 9464, loopback) and off in production and in tests unless set', () => {
    expect(parseConfig({}).metrics).toEqual({ port: DEV_METRICS_PORT, host: '127.0.0.1', explicit: false });
    expect(DEV_METRICS_PORT).toBe(9464);
    expect(parseConfig(production).metrics.port).toBeUndefined();
    expect(parseConfig({ NODE_ENV: 'test' }).metrics.port).toBeUndefined();
  });

  it('take a port (0 = any free one) or off, and a listen address', () => {
    expect(parseConfig({ ...production, METRICS_PORT: '9100', METRICS_HOST: '10.0.0.5' }).metrics).toEqual({ port: 9100, host: '10.0.0.5', explicit: true });
    expect(parseConfig({ METRICS_PORT: '0' }).metrics.port).toBe(0);
    expect(parseConfig({ METRICS_PORT: 'off' }).metrics).toMatchObject({ port: undefined, explicit: true });
  });

  it('refuse anything else, naming the variable', () => {
    expect(() => parseConfig({ METRICS_PORT: '70000' })).toThrow(/METRICS_PORT: "70000" must be off or an integer from 0 to 65535/);
    expect(() => parseConfig({ METRICS_PORT: 'on' })).toThrow(/METRICS_PORT/);
    expect(() => parseConfig({ METRICS_HOST: 'not a host!' })).toThrow(/METRICS_HOST: must be an IP address or a host name/);
  });
});
