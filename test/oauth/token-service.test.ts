/**
 * Races and failures the HTTP tests cannot stage deterministically, driven through the
 * token service of a real service: embedded stores, and for a code presented again while
 * its first redemption creates the family, a single Redis and a Redis Cluster too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock, systemClock } from '../../src/clock.js';
import { createHash } from 'node:crypto';
import { createAuthorizationCodes } from '../../src/oauth/authorization-codes.js';
import type { NewEvent } from '../../src/events/types.js';
import { createMemoryFamilyStore } from '../../src/stores/memory/families.js';
import type { AuthorizationRequest } from '../../src/oauth/authorization.js';
import { createTokenService, type TokenService } from '../../src/oauth/token-service.js';
import { createUserCache } from '../../src/users/cache.js';
import { cryptoRandom } from '../../src/random.js';
import { StoreUnavailableError, type AuthorizationCodeStore, type ClientRecord, type FamilyStore, type UserStore } from '../../src/stores/types.js';
import { createAccessTokens, type AccessTokenClaims } from '../../src/tokens/access-token.js';
import { createRefreshTokens } from '../../src/tokens/refresh-token.js';
import { startTestService, USER_EMAIL, USER_PASSWORD, type TestService } from '../support/app.js';
import { startTestRedisCluster, type TestRedisCluster } from '../support/redis-cluster.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';

let service: TestService;
beforeAll(async () => {
  service = await startTestService();
});
afterAll(async () => {
  await service?.close();
});

/** Resolves once the system clock has moved past `instant`: what happens next is stamped later. */
async function after(instant: number): Promise<void> {
  while (Date.now() <= instant) await new Promise((resolve) => setTimeout(resolve, 1));
}

describe('a login racing a password change', () => {
  it('does not leave a family alive that was created after the change ended the others', async () => {
    const client = (await service.stores.clients.findById('demo-app'))!;
    // The login read the user (and checked the old password) here...
    const signedInAt = Date.now();
    const seenAtLogin = (await service.stores.users.findByEmail(USER_EMAIL))!;
    await after(signedInAt);
    // ...then the password changed and the other families were ended...
    const hash = (await service.stores.users.getPasswordHash(seenAtLogin.id))!;
    await service.stores.users.setPasswordHash(seenAtLogin.id, hash, { expected: hash, change: { at: new Date(Date.now() + 1000), by: 'another-session' } });
    await service.stores.families.revokeAll(seenAtLogin.id);
    // ...and only now does the login create its family.
    await expect(service.tokens.issueForUser({ user: seenAtLogin, client, context: {}, signedInAt })).rejects.toMatchObject({ code: 'invalid_grant' });
    expect(await service.stores.families.listBySubject(seenAtLogin.id)).toEqual([]);

    // A login that read the user after the change goes through.
    const freshAt = Date.now();
    const fresh = (await service.stores.users.findById(seenAtLogin.id))!;
    const issued = await service.tokens.issueForUser({ user: fresh, client, context: {}, signedInAt: freshAt });
    expect(issued.family).toBeDefined();
    expect(await service.stores.families.listBySubject(seenAtLogin.id)).toHaveLength(1);
  });
});

/** A token service over the test service's stores and keys, with its families or users replaced, or told of every token it signs or event it emits. */
function tokenServiceWith(
  parts: {
    families?: FamilyStore;
    users?: Pick<UserStore, 'findById'>;
    signing?: (claims: AccessTokenClaims) => void;
    events?: NewEvent[];
  },
  on: TestService = service,
) {
  const { config, stores } = on;
  const accessTokens = createAccessTokens({
    keys: on.keys,
    clock: systemClock,
    random: cryptoRandom,
    issuer: config.issuer,
    ttl: config.accessTokenTtl,
    clockSkew: config.clockSkew,
  });
  const families = parts.families ?? stores.families;
  return createTokenService({
    accessTokens: { ...accessTokens, sign: (claims) => (parts.signing?.(claims), accessTokens.sign(claims)) },
    families,
    refreshTokens: createRefreshTokens({ secret: 'token-service-test-refresh-secret-0123456789', random: cryptoRandom, families }),
    denylist: stores.denylist,
    users: parts.users ?? stores.users,
    clients: stores.clients,
    audience: config.audience,
    refreshTokenTtl: config.refreshTokenTtl,
    clockSkew: config.clockSkew,
    ...(parts.events && { events: { emit: (...emitted: NewEvent[]) => parts.events!.push(...emitted) } }),
  });
}

const verifier = 'v'.repeat(43);

/** An authorization request of `client` for `profile`, with `verifier`'s challenge. */
function codeRequest(client: ClientRecord, on: TestService = service): AuthorizationRequest {
  return {
    clientId: client.clientId,
    redirectUri: client.redirectUris[0]!,
    state: undefined,
    scope: 'profile',
    audience: on.config.audience,
    codeChallenge: createHash('sha256').update(verifier).digest('base64url'),
    prompt: [],
    loginHint: undefined,
    nonce: undefined,
    maxAge: undefined,
    idTokenHint: undefined,
  } as unknown as AuthorizationRequest;
}

/**
 * The first redemption's record of what it issues lands; then the code comes again and is
 * redeemed to its end (reuse: it takes back what was recorded); only then does the first
 * redemption's family creation reach `on`'s store.
 */
async function replayBetweenRecordAndCreation(on: TestService): Promise<void> {
  const { stores } = on;
  const client = (await stores.clients.findById('demo-spa'))!;
  const user = (await stores.users.findByEmail(USER_EMAIL))!;
  await stores.families.revokeAll(user.id);
  await after(Math.max(Date.now(), user.passwordChangedAt.getTime()));
  // The first redemption's record of what it issues lands; then the code comes again and
  // is redeemed to its end (reuse: it takes back what was recorded); only then does the
  // first redemption's family creation reach the store.
  let recorded!: () => void;
  const recordLanded = new Promise<void>((resolve) => (recorded = resolve));
  let replayDone!: () => void;
  const replayFinished = new Promise<void>((resolve) => (replayDone = resolve));
  const codeStore: AuthorizationCodeStore = {
    ...stores.authorizationCodes,
    recordIssued: async (codeHash, issued) => {
      const answer = await stores.authorizationCodes.recordIssued(codeHash, issued);
      recorded();
      return answer;
    },
  };
  let familyId: string | undefined;
  const families: FamilyStore = {
    ...stores.families,
    create: async (family, context) => {
      familyId = family.id;
      await replayFinished;
      return stores.families.create(family, context);
    },
  };
  let jti: string | undefined;
  const events: NewEvent[] = [];
  const tokens = tokenServiceWith({ families, signing: (claims) => (jti = claims.jti), events }, on);
  const codes = createAuthorizationCodes({
    codes: codeStore,
    tokens,
    users: stores.users,
    idTokens: { issue: () => Promise.reject(new Error('no openid scope: no ID token')) },
    random: cryptoRandom,
    clock: systemClock,
  });
  const request = codeRequest(client, on);
  const redeem = (code: string) => codes.redeem({ code, redirectUri: request.redirectUri, codeVerifier: verifier, client, context: {} });
  const code = await codes.issue(request, user, { authTime: Date.now(), sid: 'browser-session-replayed', amr: ['pwd'] });

  const first = redeem(code);
  await recordLanded;
  await expect(redeem(code)).rejects.toMatchObject({ code: 'invalid_grant' });
  replayDone();
  await expect(first).rejects.toMatchObject({ code: 'invalid_grant' });
  expect(familyId).toBeDefined();
  expect(await stores.families.get(familyId!)).toBeNull();
  expect(await stores.families.isRevoked(familyId!)).toBe(true);
  expect(await stores.families.listBySubject(user.id)).toEqual([]);
  expect(jti).toBeDefined();
  expect(await stores.denylist.isDenied(jti!)).toBe(true);
  // The family never existed, but its revocation is a security event all the same: once.
  expect(events).toEqual([
    expect.objectContaining({ type: 'family.revoked', subject: { type: 'family', id: familyId }, data: expect.objectContaining({ reason: 'code_reuse' }) }),
  ]);
}

describe('a code presented again while its first redemption creates the family', () => {
  it('keeps the family from being created and denies the access token, when the second presentation comes after the record', () =>
    replayBetweenRecordAndCreation(service));

  it('still reports the session its family ended by the per-user cap, when the second presentation came before the record', async () => {
    const { stores } = service;
    const client = (await stores.clients.findById('demo-spa'))!;
    const user = (await stores.users.findByEmail(USER_EMAIL))!;
    await after(Math.max(Date.now(), user.passwordChangedAt.getTime()));
    // One session per user: the redemption's family ends the one already there.
    const families = createMemoryFamilyStore({
      clock: systemClock,
      refreshTokenTtl: 3600,
      familyMaxTtl: 86_400,
      reuseGrace: 0,
      revokedMarkerTtl: 600,
      maxFamiliesPerSubject: 1,
    });
    const events: NewEvent[] = [];
    const tokens = tokenServiceWith({ families, events });
    const earlier = await tokens.issueForUser({ user, client, context: {}, signedInAt: Date.now() });
    // The code comes again after the first redemption consumed it and before it recorded
    // what it issues: the first redemption hears 'reused' and takes its tokens back.
    let replayDone!: () => void;
    const replayFinished = new Promise<void>((resolve) => (replayDone = resolve));
    let consumed!: () => void;
    const firstConsumed = new Promise<void>((resolve) => (consumed = resolve));
    const codeStore: AuthorizationCodeStore = {
      ...stores.authorizationCodes,
      consume: async (codeHash, expected) => {
        const answer = await stores.authorizationCodes.consume(codeHash, expected);
        consumed();
        return answer;
      },
      recordIssued: async (codeHash, issued) => {
        await replayFinished;
        return stores.authorizationCodes.recordIssued(codeHash, issued);
      },
    };
    const codes = createAuthorizationCodes({
      codes: codeStore,
      tokens,
      users: stores.users,
      idTokens: { issue: () => Promise.reject(new Error('no openid scope: no ID token')) },
      random: cryptoRandom,
      clock: systemClock,
    });
    const request = codeRequest(client);
    const redeem = (code: string) => codes.redeem({ code, redirectUri: request.redirectUri, codeVerifier: verifier, client, context: {} });
    const code = await codes.issue(request, user, { authTime: Date.now(), sid: 'browser-session-capped', amr: ['pwd'] });

    const first = redeem(code);
    await firstConsumed;
    await expect(redeem(code)).rejects.toMatchObject({ code: 'invalid_grant' });
    replayDone();
    await expect(first).rejects.toMatchObject({ code: 'invalid_grant' });
    // The earlier session was ended by the cap when the family was created: that is told.
    expect(await families.get(earlier.family!.id)).toBeNull();
    expect(events).toContainEqual(
      expect.objectContaining({
        type: 'family.revoked',
        subject: { type: 'family', id: earlier.family!.id },
        data: expect.objectContaining({ reason: 'session_cap' }),
      }),
    );
    expect(events.filter((event) => 'reason' in event.data && event.data.reason === 'code_reuse')).toHaveLength(1);
    expect(await families.listBySubject(user.id)).toEqual([]);
  });
});

describe.each([
  {
    name: 'single Redis',
    start: async () => {
      const redis: TestRedis = await startTestRedis();
      return { env: { REDIS_URL: redis.url }, stop: () => redis.stop() };
    },
  },
  {
    name: 'Redis Cluster',
    start: async () => {
      const cluster: TestRedisCluster = await startTestRedisCluster();
      return { env: { REDIS_CLUSTER_NODES: cluster.nodes.map(({ host, port }) => `${host}:${port}`).join(',') }, stop: () => cluster.stop() };
    },
  },
])('a code presented again while its first redemption creates the family: $name', ({ start }) => {
  let on: TestService | undefined;
  let stop: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    const started = await start();
    stop = started.stop;
    on = await startTestService(started.env);
  }, 30_000);
  afterAll(async () => {
    await on?.close();
    await stop?.();
  });

  it('keeps the family from being created and denies the access token, the marker and the refusal in Redis', () => replayBetweenRecordAndCreation(on!));
});

describe('a code exchange racing a password change', () => {
  it('refuses the tokens when the password changes between the redemption and the family’s creation, and leaves no family', async () => {
    const { stores } = service;
    const client = (await stores.clients.findById('demo-spa'))!;
    const user = (await stores.users.findByEmail(USER_EMAIL))!;
    await stores.families.revokeAll(user.id);
    // Signed in after every earlier change (an earlier test dated one a second ahead).
    await after(Math.max(Date.now(), user.passwordChangedAt.getTime()));
    const signInAt = Date.now();
    await after(signInAt);
    // The password changes (as POST /auth/password does: the new hash, then every other session ends)
    // after the code was redeemed and its user read, before its family exists.
    const changePassword = async () => {
      const hash = (await stores.users.getPasswordHash(user.id))!;
      await stores.users.setPasswordHash(user.id, hash, { expected: hash, change: { at: new Date(Date.now()), by: 'another-session' } });
      await stores.families.revokeAll(user.id);
    };
    let changed = 0;
    const tokens: Pick<TokenService, 'issueForUser' | 'undoIssued'> = {
      async issueForUser(input) {
        if (changed++ === 0) await changePassword();
        return service.tokens.issueForUser(input);
      },
      undoIssued: (issued, by) => service.tokens.undoIssued(issued, by),
    };
    const userCache = createUserCache(stores.users, { feed: stores.userChanges, ttlMs: 60_000, clock: systemClock });
    const codes = createAuthorizationCodes({
      codes: stores.authorizationCodes,
      tokens,
      users: userCache,
      idTokens: { issue: () => Promise.reject(new Error('no openid scope: no ID token')) },
      random: cryptoRandom,
      clock: systemClock,
    });
    const request = codeRequest(client);
    const redeem = (code: string) => codes.redeem({ code, redirectUri: request.redirectUri, codeVerifier: verifier, client, context: {} });

    const raced = await codes.issue(request, user, { authTime: signInAt, sid: 'browser-session', amr: ['pwd'] });
    await expect(redeem(raced)).rejects.toMatchObject({ code: 'invalid_grant' });
    expect(changed).toBe(1);
    expect(await stores.families.listBySubject(user.id)).toEqual([]);

    // A sign-in after the change exchanges its code.
    await after(Date.now());
    const fresh = await codes.issue(request, (await stores.users.findById(user.id))!, { authTime: Date.now(), sid: 'browser-session-2', amr: ['pwd'] });
    const issued = await redeem(fresh);
    expect(issued.refresh_token).toBeDefined();
    expect(await stores.families.listBySubject(user.id)).toHaveLength(1);
  });
});

describe('a login racing a logout-all', () => {
  it('refuses the family of a login that checked the user before the logout-all and creates it after', async () => {
    const { sessions, stores } = service;
    const client = (await stores.clients.findById('demo-app'))!;
    const signedIn = await sessions.login({ client, email: USER_EMAIL, password: USER_PASSWORD, context: { ip: '203.0.113.9' } });
    const caller = await sessions.authenticate(`Bearer ${signedIn.response.access_token}`);
    const signedInAt = Date.now();
    const seenAtLogin = (await stores.users.findByEmail(USER_EMAIL))!;
    await after(signedInAt);
    await sessions.logoutAll(caller);
    await expect(service.tokens.issueForUser({ user: seenAtLogin, client, context: {}, signedInAt })).rejects.toMatchObject({ code: 'invalid_grant' });
    expect(await stores.families.listBySubject(seenAtLogin.id)).toEqual([]);
    // Signing in again afterwards works.
    const again = await sessions.login({ client, email: USER_EMAIL, password: USER_PASSWORD, context: { ip: '203.0.113.9' } });
    expect(again.response.refresh_token).toBeDefined();
  });
});

describe('a refresh while MongoDB is unavailable', () => {
  it('fails with 503 before rotating, so the same token refreshes once MongoDB is back', async () => {
    const { stores } = service;
    let mongoDown = false;
    const users = {
      findById: (id: string) => (mongoDown ? Promise.reject(new StoreUnavailableError('users')) : stores.users.findById(id)),
    };
    const tokens = tokenServiceWith({ users });
    const client = (await stores.clients.findById('demo-app'))!;
    const user = (await stores.users.findByEmail(USER_EMAIL))!;
    const refreshToken = (await tokens.issueForUser({ user, client, context: {}, signedInAt: Date.now() })).response.refresh_token!;

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
