/**
 * Races and failures the HTTP tests cannot stage deterministically, driven through the
 * token service of a real (embedded) service.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock, systemClock } from '../../src/clock.js';
import { createTokenService } from '../../src/oauth/token-service.js';
import { cryptoRandom } from '../../src/random.js';
import { StoreUnavailableError } from '../../src/stores/types.js';
import { createAccessTokens } from '../../src/tokens/access-token.js';
import { createRefreshTokens } from '../../src/tokens/refresh-token.js';
import { startTestService, USER_EMAIL, type TestService } from '../support/app.js';

let service: TestService;
beforeAll(async () => {
  service = await startTestService();
});
afterAll(async () => {
  await service?.close();
});

describe('a login racing a password change', () => {
  it('does not leave a family alive that was created after the change ended the others', async () => {
    const client = (await service.stores.clients.findById('demo-app'))!;
    // The login read the user (and checked the old password) here...
    const seenAtLogin = (await service.stores.users.findByEmail(USER_EMAIL))!;
    // ...then the password changed and the other families were ended...
    const hash = (await service.stores.users.getPasswordHash(seenAtLogin.id))!;
    await service.stores.users.setPasswordHash(seenAtLogin.id, hash, { expected: hash, change: { at: new Date(Date.now() + 1000), by: 'another-session' } });
    await service.stores.families.revokeAll(seenAtLogin.id);
    // ...and only now does the login create its family.
    await expect(service.tokens.issueForUser({ user: seenAtLogin, client, context: {} })).rejects.toMatchObject({ code: 'invalid_grant' });
    expect(await service.stores.families.listBySubject(seenAtLogin.id)).toEqual([]);

    // A login that read the user after the change goes through.
    const fresh = (await service.stores.users.findById(seenAtLogin.id))!;
    const issued = await service.tokens.issueForUser({ user: fresh, client, context: {} });
    expect(issued.family).toBeDefined();
    expect(await service.stores.families.listBySubject(seenAtLogin.id)).toHaveLength(1);
  });
});

describe('a refresh while MongoDB is unavailable', () => {
  it('fails with 503 before rotating, so the same token refreshes once MongoDB is back', async () => {
    const { config, stores } = service;
    let mongoDown = false;
    const users = {
      findById: (id: string) => (mongoDown ? Promise.reject(new StoreUnavailableError('users')) : stores.users.findById(id)),
    };
    const tokens = createTokenService({
      accessTokens: createAccessTokens({
        keys: service.keys,
        clock: systemClock,
        random: cryptoRandom,
        issuer: config.issuer,
        ttl: config.accessTokenTtl,
        clockSkew: config.clockSkew,
      }),
      families: stores.families,
      refreshTokens: createRefreshTokens({ secret: 'token-service-test-refresh-secret-0123456789', random: cryptoRandom, families: stores.families }),
      denylist: stores.denylist,
      users,
      clients: stores.clients,
      audience: config.audience,
      refreshTokenTtl: config.refreshTokenTtl,
      clockSkew: config.clockSkew,
    });
    const client = (await stores.clients.findById('demo-app'))!;
    const user = (await stores.users.findByEmail(USER_EMAIL))!;
    const refreshToken = (await tokens.issueForUser({ user, client, context: {} })).response.refresh_token!;

    mongoDown = true;
    await expect(tokens.refresh({ refreshToken, client, context: {} })).rejects.toBeInstanceOf(StoreUnavailableError);
    mongoDown = false;
    // The client kept its token; presenting it again is not reuse.
    const refreshed = await tokens.refresh({ refreshToken, client, context: {} });
    expect(refreshed.response.refresh_token).toBeDefined();
    expect(refreshed.user.id).toBe(user.id);
  });
});

describe('a revoked access token inside the clock-skew tolerance', () => {
  it('stays denied for as long as it still verifies: past exp, up to exp + CLOCK_SKEW', async () => {
    const clock = manualClock(Date.now());
    const skewed = await startTestService({ CLOCK_SKEW: '60s' }, { clock });
    try {
      const client = (await skewed.stores.clients.findById('demo-service'))!;
      const issue = async () => (await skewed.tokens.issueForClient({ client })).access_token;
      const [revoked, loggedOut, untouched] = [await issue(), await issue(), await issue()];
      await skewed.tokens.revoke({ token: revoked, client });
      // What logout does with the caller's own token.
      await skewed.tokens.denyAccessToken(await skewed.tokens.authenticateBearer(`Bearer ${loggedOut}`));

      // Past exp, within the 60 s tolerance: the untouched token of the same age still verifies...
      clock.advance((skewed.config.accessTokenTtl + 30) * 1000);
      expect((await skewed.tokens.introspect({ token: untouched, client })).active).toBe(true);
      // ...so the denied ones must still be denied.
      expect((await skewed.tokens.introspect({ token: revoked, client })).active).toBe(false);
      expect((await skewed.tokens.introspect({ token: loggedOut, client })).active).toBe(false);
    } finally {
      await skewed.close();
    }
  });
});
