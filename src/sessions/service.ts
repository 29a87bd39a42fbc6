/**
 * Sessions of the first-party API: which client a login or refresh is for, whose session
 * a token is, and which sessions end when (logout, logout-all, one session, a password
 * change). A session is a refresh-token family; its id is the `sid` of its access tokens.
 * The HTTP layer only parses and answers (cookies, Origin checks); every rule is here.
 */
import { familiesRevoked, familyRevoked } from '../events/families.js';
import { passwordChanged } from '../events/users.js';
import type { Actor, EventSink, FamilyRevocationReason, NewEvent } from '../events/types.js';
import { InvalidGrantError, InvalidRequestError, InvalidTokenError, NotFoundError, UnauthorizedClientError } from '../errors.js';
import type { GrantType } from '../oauth/grants/index.js';
import type { Logout } from '../oauth/logout.js';
import type { TokenService } from '../oauth/token-service.js';
import type { Clock } from '../clock.js';
import type {
  BrowserSessionStore,
  ClientRecord,
  ClientStore,
  ConsentRecord,
  ConsentStore,
  Family,
  FamilyStore,
  UseContext,
  UserRecord,
} from '../stores/types.js';
import type { AccessTokenClaims } from '../tokens/access-token.js';
import type { UserService } from '../users/service.js';

export interface SessionServiceDeps {
  readonly tokens: TokenService;
  readonly users: Pick<UserService, 'login' | 'findById' | 'changePassword' | 'recordSignOut'>;
  readonly families: Pick<FamilyStore, 'get' | 'listBySubject' | 'listByClient' | 'revoke' | 'revokeAll'>;
  readonly clients: Pick<ClientStore, 'findById'>;
  /** Sign-in sessions of browsers at the authority (SSO of the authorization code flow). */
  readonly browserSessions: Pick<BrowserSessionStore, 'listByUser' | 'delete' | 'deleteAllOfUser'>;
  readonly consents: Pick<ConsentStore, 'listByUser' | 'revoke'>;
  /** The first-party client a login without `client_id` is for (LOGIN_CLIENT_ID). */
  readonly loginClientId: string;
  /** Security events (families revoked, password changed). */
  readonly events?: EventSink;
  /** Back-channel logout for sign-in sessions ended here (`oauth/logout.ts`). */
  readonly signIns?: Pick<Logout, 'beforeEnding'>;
  /** For when a login checked its user (`issueForUser`'s `signedInAt`). */
  readonly clock: Clock;
}

/** The caller of a user-authenticated request. */
export interface Caller {
  readonly claims: AccessTokenClaims;
  readonly user: UserRecord;
}

export interface SessionView {
  readonly id: string;
  readonly createdAt: number;
  readonly lastUsedAt: number;
  readonly clientId: string;
  readonly userAgent: string | undefined;
  /** The session the caller's access token belongs to. */
  readonly current: boolean;
}

/** A browser signed in at the authority itself (the hosted login), not a client's session. */
export interface BrowserSessionView {
  readonly id: string;
  readonly createdAt: number;
  readonly lastUsedAt: number;
  readonly expiresAt: number;
}

const INVALID_REFRESH_TOKEN = 'the refresh token is invalid, expired or revoked';

export function createSessionService(deps: SessionServiceDeps) {
  const { tokens, users, families, clients, browserSessions, consents, events } = deps;
  const beforeEnding = (userId: string, only?: string) => deps.signIns?.beforeEnding(userId, only) ?? Promise.resolve(async () => undefined);

  /**
   * The first-party public client a login or refresh here is for, which must also hold
   * `grant` (as at /oauth/token). Confidential first-party apps authenticate at /oauth/token.
   */
  async function firstPartyClient(clientId: string | undefined, grant: GrantType): Promise<ClientRecord> {
    const client = await clients.findById(clientId ?? deps.loginClientId);
    if (!client || !client.firstParty || client.type !== 'public') {
      throw new InvalidRequestError('client_id does not name a first-party public client');
    }
    if (!client.grantTypes.includes(grant)) throw new UnauthorizedClientError(`this client may not use the ${grant} grant`);
    return client;
  }

  /** Ends one session of `userId`: a refresh family (`revoked` names its event) or a browser's sign-in; NotFoundError otherwise. */
  async function endOne(userId: string, sessionId: string, revoked: (family: Family) => NewEvent): Promise<void> {
    const family = await families.get(sessionId);
    if (family && family.subject === userId) {
      if (await families.revoke(family.id)) events?.emit(revoked(family));
      return;
    }
    const browser = (await browserSessions.listByUser(userId)).find((session) => session.id === sessionId);
    const notify = browser ? await beforeEnding(userId, browser.id) : undefined;
    if (!browser || !(await browserSessions.delete(browser.id))) throw new NotFoundError('no such session');
    await notify?.();
  }

  /** A user's live sessions (refresh families); `current` names the caller's own. */
  async function sessionsOf(userId: string, currentSid: string | undefined): Promise<SessionView[]> {
    const sessions = await families.listBySubject(userId);
    return sessions.map((family) => ({
      id: family.id,
      createdAt: family.createdAt,
      lastUsedAt: family.lastUsedAt,
      clientId: family.clientId,
      userAgent: family.userAgent,
      current: family.id === currentSid,
    }));
  }

  return {
    firstPartyClient,

    /** Password login for `client` (from `firstPartyClient`): the user and a token response. */
    async login(input: { client: ClientRecord; email: string; password: string; scope?: string | undefined; context: UseContext & { ip: string } }) {
      const signedInAt = deps.clock.now();
      const user = await users.login({ email: input.email, password: input.password, ip: input.context.ip });
      const issued = await tokens.issueForUser({ user, client: input.client, scope: input.scope, context: input.context, signedInAt });
      return { user, response: issued.response };
    },

    /**
     * Rotates a refresh token of a first-party public client's family. Most are the login
     * client's: that is tried first, in the rotation itself (another client's token is
     * invalid there and changes nothing), so nothing is read before it; only a family of
     * another client is read, to learn which.
     */
    async refresh(input: { refreshToken: string; scope?: string | undefined; audience?: string | undefined; context: UseContext }) {
      const familyId = tokens.refreshTokenFamilyId(input.refreshToken);
      if (!familyId) throw new InvalidGrantError(INVALID_REFRESH_TOKEN);
      // A login client that may not refresh here is no guess (its own refusal is for its own tokens).
      const login = await firstPartyClient(undefined, 'refresh_token').catch((err: unknown) => {
        if (err instanceof InvalidRequestError || err instanceof UnauthorizedClientError) return undefined;
        throw err;
      });
      const guessed = login ? await tokens.refreshIfOwned({ ...input, client: login }) : undefined;
      if (guessed) return guessed.response;
      const family = await families.get(familyId);
      if (!family || family.clientId === login?.clientId) throw new InvalidGrantError(INVALID_REFRESH_TOKEN);
      const client = await firstPartyClient(family.clientId, 'refresh_token');
      const refreshed = await tokens.refresh({ ...input, client });
      return refreshed.response;
    },

    /**
     * The user an access token speaks for (RFC 6750). A client's own token
     * (client_credentials: `sub` = `client_id`, no email) is never a user's.
     */
    async authenticate(authorization: string | readonly string[] | undefined): Promise<Caller> {
      const claims = await tokens.authenticateBearer(authorization);
      if (claims.email === undefined || claims.sub === claims.client_id) throw new InvalidTokenError('this endpoint needs a user access token');
      const user = await users.findById(claims.sub);
      if (!user || user.disabled) throw new InvalidTokenError('the access token does not belong to an active user');
      return { claims, user };
    },

    /** Ends the caller's session and denies the access token it presented. */
    async logout({ claims }: Caller): Promise<void> {
      const [ended] = await Promise.all([claims.sid ? families.revoke(claims.sid) : undefined, tokens.denyAccessToken(claims)]);
      if (ended && claims.sid) events?.emit(familyRevoked('logout', { id: claims.sid, subject: claims.sub, clientId: claims.client_id }));
    },

    /**
     * Ends every session of the caller, and every browser's sign-in; resolves how many
     * sessions ended. A login that checked the user before and creates its family after
     * the revocation below is refused by the store (`FamilyStore.revokeAll`); one whose
     * family exists before is revoked here.
     */
    async logoutAll({ claims }: Caller): Promise<number> {
      await users.recordSignOut(claims.sub);
      const notify = await beforeEnding(claims.sub);
      const [ended] = await Promise.all([families.revokeAll(claims.sub), browserSessions.deleteAllOfUser(claims.sub)]);
      await tokens.denyAccessToken(claims);
      await notify();
      events?.emit(...familiesRevoked('logout_all', { id: claims.sub, email: claims.email }, ended));
      return ended;
    },

    async listBrowserSessions({ user }: Caller): Promise<BrowserSessionView[]> {
      const sessions = await browserSessions.listByUser(user.id);
      return sessions.map((session) => ({ id: session.id, createdAt: session.createdAt, lastUsedAt: session.lastSeenAt, expiresAt: session.expiresAt }));
    },

    /** The third-party clients the caller has allowed, with the scopes allowed. */
    listConsents: ({ user }: Caller): Promise<ConsentRecord[]> => consents.listByUser(user.id),

    /**
     * Withdraws the caller's consent to a client and ends that client's sessions of the
     * caller: what it was allowed to keep doing stops now, not at its refresh token's expiry.
     */
    async revokeConsent({ user }: Caller, clientId: string): Promise<void> {
      const sessions = await families.listBySubject(user.id);
      const [revoked] = await Promise.all([
        consents.revoke(user.id, clientId),
        ...sessions
          .filter((family) => family.clientId === clientId)
          .map(async (family) => (await families.revoke(family.id)) && events?.emit(familyRevoked('consent_revoked', family))),
      ]);
      if (!revoked) throw new NotFoundError('no consent for this client');
    },

    list: ({ claims }: Caller): Promise<SessionView[]> => sessionsOf(claims.sub, claims.sid),

    /**
     * Ends one of the caller's sessions (a client's, or a browser's sign-in); someone else's
     * id answers exactly like one that does not exist.
     */
    end: ({ user }: Caller, sessionId: string): Promise<void> => endOne(user.id, sessionId, (family) => familyRevoked('session_ended', family)),

    /**
     * Ends every session of a user, with no caller (a password reset from a mailed link): every
     * refresh family and every browser's sign-in, as a password change does. Resolves how
     * many families ended.
     */
    async endEverySession(userId: string): Promise<number> {
      const notify = await beforeEnding(userId);
      const [ended] = await Promise.all([families.revokeAll(userId), browserSessions.deleteAllOfUser(userId)]);
      await notify();
      events?.emit(...familiesRevoked('password_change', { id: userId }, ended));
      return ended;
    },

    /** A user's sessions as an administrator sees them (the admin API): none is `current`. */
    listOfUser: (userId: string): Promise<SessionView[]> => sessionsOf(userId, undefined),

    /** Ends one session of a user for an administrator (`actor`); NotFoundError when the user has no such session. */
    endOneOfUser: (userId: string, sessionId: string, actor: Actor): Promise<void> =>
      endOne(userId, sessionId, (family) => familyRevoked('admin_ended', family, actor)),

    /**
     * Ends every session of a user from outside them (the admin API: end all, disable,
     * delete), by the path logout-all takes: counted as a sign-out first (a login in
     * progress then ends its own family), every refresh family and browser sign-in ended,
     * the clients told by back-channel logout, one `family.revoked` event. Resolves how
     * many families ended.
     */
    async endAllOfUser(user: { id: string; email?: string }, reason: FamilyRevocationReason, actor: Actor): Promise<number> {
      await users.recordSignOut(user.id);
      const notify = await beforeEnding(user.id);
      const [ended] = await Promise.all([families.revokeAll(user.id), browserSessions.deleteAllOfUser(user.id)]);
      await notify();
      events?.emit(...familiesRevoked(reason, user, ended, actor));
      return ended;
    },

    /** Ends every refresh family of a client (it was deleted); resolves how many ended. */
    async endClientSessions(clientId: string, actor: Actor): Promise<number> {
      const ending = await families.listByClient(clientId);
      const revoked = await Promise.all(ending.map((family) => families.revoke(family.id)));
      const ended = ending.filter((_, index) => revoked[index]);
      events?.emit(...ended.map((family) => familyRevoked('client_deleted', family, actor)));
      return ended.length;
    },

    /** Changes the password and ends every other session of the user, and every browser's sign-in; resolves how many sessions ended. */
    async changePassword({ claims, user }: Caller, input: { currentPassword: string; newPassword: string; ip: string }): Promise<number> {
      await users.changePassword({
        user,
        currentPassword: input.currentPassword,
        newPassword: input.newPassword,
        ip: input.ip,
        session: claims.sid ?? claims.jti,
      });
      const notify = await beforeEnding(user.id);
      const [ended] = await Promise.all([families.revokeAll(user.id, claims.sid), browserSessions.deleteAllOfUser(user.id)]);
      events?.emit(passwordChanged(user, ended), ...familiesRevoked('password_change', user, ended));
      await notify();
      return ended;
    },
  };
}

export type SessionService = ReturnType<typeof createSessionService>;
