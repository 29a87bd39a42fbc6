/**
 * The session rules, called directly (no HTTP): which clients may log in here, whose a
 * session is, and which sessions each way of ending them ends. The stores are the embedded
 * ones the dev server runs on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidGrantError, InvalidRequestError, InvalidTokenError, NotFoundError, UnauthorizedClientError } from '../../src/errors.js';
import { startTestService, USER_EMAIL, USER_PASSWORD, type TestService } from '../support/app.js';

let service: TestService;
const context = { ip: '192.0.2.10', userAgent: 'vitest' };

beforeAll(async () => {
  service = await startTestService();
  const base = { firstParty: true, scopes: [], audiences: [], permissions: [], cookieMode: false, secretHash: undefined };
  await service.stores.clients.create({ ...base, clientId: 'third-party-spa', name: 'SPA', type: 'public', firstParty: false, grantTypes: ['refresh_token'] });
  await service.stores.clients.create({ ...base, clientId: 'no-password-app', name: 'App', type: 'public', grantTypes: ['refresh_token'] });
});
afterAll(async () => {
  await service?.close();
});

async function signIn(email = USER_EMAIL, password = USER_PASSWORD) {
  const client = await service.sessions.firstPartyClient(undefined, 'password');
  const { user, response } = await service.sessions.login({ client, email, password, context });
  const caller = await service.sessions.authenticate(`Bearer ${response.access_token}`);
  return { user, response, caller };
}

async function newUser(email: string) {
  await service.users.register({ email, password: USER_PASSWORD, ip: '192.0.2.99' });
  return signIn(email);
}

describe('the session service', () => {
  it('logs in only through first-party public clients that hold the grant', async () => {
    await expect(service.sessions.firstPartyClient('third-party-spa', 'password')).rejects.toThrow(InvalidRequestError);
    await expect(service.sessions.firstPartyClient('demo-service', 'password')).rejects.toThrow(InvalidRequestError);
    await expect(service.sessions.firstPartyClient('no-password-app', 'password')).rejects.toThrow(UnauthorizedClientError);
    const { response, caller } = await signIn();
    expect(response.refresh_token).toEqual(expect.any(String));
    expect(caller.claims.sid).toEqual(expect.any(String));
  });

  it("refreshes a first-party session and refuses a token that is not a live family's", async () => {
    const { response } = await signIn();
    const refreshed = await service.sessions.refresh({ refreshToken: response.refresh_token!, context });
    expect(refreshed.refresh_token).not.toBe(response.refresh_token);
    await expect(service.sessions.refresh({ refreshToken: 'not-a-token', context })).rejects.toThrow(InvalidGrantError);
  });

  it("never takes a client's own token for a user's", async () => {
    const { access_token } = await service.tokens.issueForClient({ client: (await service.stores.clients.findById('demo-service'))! });
    await expect(service.sessions.authenticate(`Bearer ${access_token}`)).rejects.toThrow(InvalidTokenError);
  });

  it("ends one of the caller's sessions, and answers another user's session id as if it did not exist", async () => {
    const mine = await newUser('sessions-owner@example.com');
    const theirs = await newUser('sessions-other@example.com');
    await expect(service.sessions.end(mine.caller, theirs.caller.claims.sid!)).rejects.toThrow(NotFoundError);
    expect(await service.stores.families.get(theirs.caller.claims.sid!)).not.toBeNull();
    const second = await signIn('sessions-owner@example.com');
    await service.sessions.end(mine.caller, second.caller.claims.sid!);
    expect((await service.sessions.list(mine.caller)).map((session) => [session.id, session.current])).toEqual([[mine.caller.claims.sid, true]]);
  });

  it('ends every other session on a password change, keeping the one that changed it', async () => {
    const first = await newUser('sessions-password@example.com');
    await signIn('sessions-password@example.com');
    await signIn('sessions-password@example.com');
    const ended = await service.sessions.changePassword(first.caller, {
      currentPassword: USER_PASSWORD,
      newPassword: 'a brand new passphrase',
      ip: context.ip,
    });
    expect(ended).toBe(2);
    expect((await service.sessions.list(first.caller)).map((session) => session.id)).toEqual([first.caller.claims.sid]);
  });

  it('logs out one session (denying its access token) or all of them', async () => {
    const one = await newUser('sessions-logout@example.com');
    const two = await signIn('sessions-logout@example.com');
    await service.sessions.logout(one.caller);
    await expect(service.sessions.authenticate(`Bearer ${one.response.access_token}`)).rejects.toThrow(InvalidTokenError);
    expect(await service.stores.families.get(one.caller.claims.sid!)).toBeNull();
    await signIn('sessions-logout@example.com');
    expect(await service.sessions.logoutAll(two.caller)).toBe(2);
    await expect(service.sessions.authenticate(`Bearer ${two.response.access_token}`)).rejects.toThrow(InvalidTokenError);
  });

  it('ends the session of a login in flight (paused between its user read and its family) when logout-all runs (issue 23 item 11)', async () => {
    const email = 'sessions-race@example.com';
    const first = await newUser(email);
    const families = service.stores.families;
    const realCreate = families.create.bind(families);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let paused!: () => void;
    const reached = new Promise<void>((resolve) => (paused = resolve));
    // The login has read the user and checked the password; its family does not exist yet.
    families.create = async (...args) => {
      paused();
      await gate;
      return realCreate(...args);
    };
    try {
      const login = signIn(email).then(
        (result) => result.response,
        (err: unknown) => err,
      );
      await reached;
      await service.sessions.logoutAll(first.caller);
      release();
      const outcome = await login;
      // Either the login is refused, or what it returned is already dead: never a live family.
      expect(await service.stores.families.listBySubject(first.user.id)).toEqual([]);
      expect(outcome).toBeInstanceOf(InvalidGrantError);
    } finally {
      families.create = realCreate;
    }
  });
});
