/**
 * The registry's label rules and the metrics listener's start-up rules, without a server.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/metrics/metrics.js';
import { startMetricsListener } from '../../src/metrics/start.js';
import { captureLogs } from '../support/logs.js';
import { parseExposition, valueOf } from './support.js';

describe('labels', () => {
  it('give a client id its own value up to the bound, then count further clients as other', async () => {
    const metrics = createMetrics({ maxClientLabels: 2, defaultMetrics: false });
    for (const client of ['a', 'b', 'c', 'd', 'a']) metrics.tokenIssued('client_credentials', client);
    const samples = parseExposition(await metrics.registry.metrics());
    expect(valueOf(samples, 'authority_tokens_issued_total', { client: 'a' })).toBe(2);
    expect(valueOf(samples, 'authority_tokens_issued_total', { client: 'b' })).toBe(1);
    expect(valueOf(samples, 'authority_tokens_issued_total', { client: 'other' })).toBe(2);
  });

  it('name a grant type only when it is one of ours', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    metrics.tokenRefused('urn:attacker:<script>', 'unsupported_grant_type');
    metrics.tokenRefused(undefined, 'invalid_request');
    metrics.tokenRefused('password', 'invalid_grant');
    const text = await metrics.registry.metrics();
    expect(text).not.toContain('attacker');
    const samples = parseExposition(text);
    expect(valueOf(samples, 'authority_token_requests_refused_total', { grant: 'other', error: 'unsupported_grant_type' })).toBe(1);
    expect(valueOf(samples, 'authority_token_requests_refused_total', { grant: 'other', error: 'invalid_request' })).toBe(1);
    expect(valueOf(samples, 'authority_token_requests_refused_total', { grant: 'password', error: 'invalid_grant' })).toBe(1);
  });

  it('keep two services apart: each has its own registry', async () => {
    const one = createMetrics({ defaultMetrics: false });
    const two = createMetrics({ defaultMetrics: false });
    one.registered();
    expect(valueOf(parseExposition(await one.registry.metrics()), 'authority_registrations_total')).toBe(1);
    expect(valueOf(parseExposition(await two.registry.metrics()), 'authority_registrations_total')).toBe(0);
  });
});

describe('the metrics listener at start-up', () => {
  const withTakenPort = async (work: (port: number) => Promise<void>) => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      await work((taken.address() as AddressInfo).port);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  };
  const registry = createMetrics({ defaultMetrics: false }).registry;

  it('stops start-up naming the variables when a METRICS_PORT that was set is taken', async () => {
    await withTakenPort(async (port) => {
      const { logger } = captureLogs();
      await expect(startMetricsListener({ port, host: '127.0.0.1', explicit: true }, registry, logger)).rejects.toThrow(
        `METRICS_HOST/METRICS_PORT: cannot listen on 127.0.0.1:${port} (EADDRINUSE)`,
      );
    });
  });

  it('only warns when the dev default port is taken (another dev server may hold it)', async () => {
    await withTakenPort(async (port) => {
      const logs = captureLogs();
      expect(await startMetricsListener({ port, host: '127.0.0.1', explicit: false }, registry, logs.logger)).toBeUndefined();
      await new Promise<void>((resolve) => logs.logger.flush(() => resolve()));
      expect(logs.text()).toContain('the default dev port is taken');
    });
  });

  it('starts nothing when METRICS_PORT is off', async () => {
    const { logger } = captureLogs();
    expect(await startMetricsListener({ port: undefined, host: '127.0.0.1', explicit: true }, registry, logger)).toBeUndefined();
  });
});
