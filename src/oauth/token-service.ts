/**
 * Issuing, refreshing, revoking and introspecting tokens: the protocol rules between the
 * HTTP layer and the stores. Access tokens are signed by `tokens/access-token.ts`;
 * refresh tokens are minted and checked by `tokens/refresh-token.ts` and live in families
 * (`FamilyStore`).
 */
import {
  AccessDeniedError,
  InvalidGrantError,
  InvalidRequestError,
  InvalidScopeError,
  InvalidTargetError,
  InvalidTokenError,
  UnauthorizedClientError,
} from '../errors.js';
import { cappedFamilies, familyRevoked, reuseDetected } from '../events/families.js';
import type { EventSink } from '../events/types.js';
import { withTimeout } from '../stores/deadline.js';
import { FamilyRevokedError, SignInEndedError, type IssuedFromCode } from '../stores/types.js';
import type {
  AccessTokenDenylist,
  ClientRecord,
  ClientStore,
  Family,
  FamilySignIn,
  FamilyStore,
  RotationRefusal,
  UseContext,
  UserRecord,
  UserStore,
} from '../stores/types.js';
import type { AccessTokenClaims, AccessTokenRequest, AccessTokens, IssuedAccessToken } from '../tokens/access-token.js';
import type { RefreshTokens } from '../tokens/refresh-token.js';
import { bearerToken } from '../../packages/verifier/src/bearer.js';
import { isTokenError } from '../../packages/verifier/src/errors.js';
import { grantScope, parseScope, storedScopeTokens } from './scope.js';

/** RFC 6749 §5.1. */
export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  scope: string;
  refresh_token?: string;
  /** OpenID Connect Core §3.1.3.3, with the `openid` scope. */
  id_token?: string;
}

export interface TokenServiceDeps {
  readonly accessTokens: AccessTokens;
  readonly families: FamilyStore;
  /** Mints and checks refresh tokens over `families`. */
  readonly refreshTokens: RefreshTokens;
  readonly denylist: AccessTokenDenylist;
  readonly users: Pick<UserStore, 'findById'>;
  /** The same users, possibly stale by the invalidation latency (`users/cache.ts`): read by refreshes only. */
  readonly userCache?: Pick<UserStore, 'findById'>;
  /**
   * Milliseconds a refresh waits for its user before answering 503 (default: no bound).
   * The family has rotated by then: the client's retry must come within the grace window.
   */
  readonly refreshUserTimeoutMs?: number;
  /** For introspection: a token of a deleted client is not active. */
  readonly clients: Pick<ClientStore, 'findById'>;
  /** Default `aud` (AUDIENCE). */
  readonly audience: string;
  /** Seconds: idle lifetime of a family (REFRESH_TOKEN_TTL), for introspection's `exp`. */
  readonly refreshTokenTtl: number;
  /**
   * Seconds past `exp` that verification still accepts (CLOCK_SKEW): a denied token stays
   * denied that much longer, or a revocation would lapse while the token still verifies.
   */
  readonly clockSkew: number;
  /** Security events (reuse detected, families revoked). */
  readonly events?: EventSink;
  /** Told of a family that reuse just ended (OIDC back-channel logout to its client). */
  readonly onFamilyReused?: (family: Family) => Promise<void>;
}

interface RefreshInput {
  readonly refreshToken: string;
  readonly client: ClientRecord;
  readonly scope?: string | undefined;
  /** RFC 8707 `resource` / `audience`: if given, it must be the family's own. */
  readonly audience?: string | undefined;
  readonly context: UseContext;
}

/** The scope of the admin API (`/admin/*`): only clients with the `admin` permission obtain it, only by client_credentials. */
export const ADMIN_SCOPE = 'admin';

const INVALID_REFRESH_TOKEN = 'the refresh token is invalid, expired or revoked';

export function createTokenService(deps: TokenServiceDeps) {
  const { accessTokens, families, refreshTokens, denylist, users, events } = deps;
  const userCache = deps.userCache ?? users;
  /** Until when a token must stay denied: as long as it can still verify. */
  const denyUntil = (claims: AccessTokenClaims) => (claims.exp + deps.clockSkew) * 1000;

  /** The default AUDIENCE is every client's; any other must be one of the client's audiences. */
  const mayTarget = (client: ClientRecord, audience: string): boolean => audience === deps.audience || client.audiences.includes(audience);

  /** RFC 8707 `resource` / `audience`: one of the client's audiences, the default AUDIENCE otherwise. */
  function pickAudience(client: ClientRecord, requested: string | undefined): string {
    if (requested === undefined) return deps.audience;
    if (mayTarget(client, requested)) return requested;
    throw new InvalidTargetError(`audience "${requested.slice(0, 100)}" is not allowed for this client`);
  }

  type TokenSubject = { user?: UserRecord; client: ClientRecord; scope: string; audience: string; sid?: string | undefined };

  function accessRequest(subject: TokenSubject): AccessTokenRequest {
    return {
      sub: subject.user?.id ?? subject.client.clientId,
      client_id: subject.client.clientId,
      aud: subject.audience,
      scope: subject.scope,
      ...(subject.user ? { email: subject.user.email, roles: [...subject.user.roles] } : {}),
      ...(subject.sid ? { sid: subject.sid } : {}),
    };
  }

  const accessTokenFor = (subject: TokenSubject) => accessTokens.issue(accessRequest(subject));

  /** Takes back what an authorization code issued (RFC 6749 §4.1.2), the family even before it exists. */
  async function undoIssued(issued: IssuedFromCode, by?: { clientId: string; userId: string }): Promise<void> {
    const revoke = async (familyId: string) => {
      if ((await families.revoke(familyId, { ahead: true })) && by)
        events?.emit(familyRevoked('code_reuse', { id: familyId, subject: by.userId, clientId: by.clientId }, { type: 'client', id: by.clientId }));
    };
    await Promise.all([
      issued.familyId ? revoke(issued.familyId) : undefined,
      denylist.deny(issued.accessTokenJti, issued.accessTokenExpiresAt + deps.clockSkew * 1000),
    ]);
  }

  /** A family refused by its store, as the grant's answer. */
  function familyRefusal(err: unknown): never {
    if (err instanceof SignInEndedError) {
      throw new InvalidGrantError('the account changed or signed out everywhere while this sign-in was in progress; sign in again', {
        detail: 'sessions ended during sign-in',
      });
    }
    if (err instanceof FamilyRevokedError) {
      throw new InvalidGrantError('the grant was revoked while its tokens were issued', {
        detail: 'family revoked ahead of its creation (authorization code presented again)',
      });
    }
    throw err;
  }

  function response(issued: IssuedAccessToken, scope: string, refreshToken?: string): TokenResponse {
    return {
      access_token: issued.token,
      token_type: 'Bearer',
      expires_in: issued.expiresIn,
      scope,
      ...(refreshToken ? { refresh_token: refreshToken } : {}),
    };
  }

  /**
   * A presented access token's claims if it verifies and is neither denied nor from a
   * revoked family; `audience`, when given, must be among its `aud`.
   */
  async function checkAccessToken(token: string, audience?: string): Promise<AccessTokenClaims | undefined> {
    const verified = await accessTokens.verify(token, audience === undefined ? {} : { audience });
    if (!verified.ok) return undefined;
    const { claims } = verified;
    const [denied, familyRevoked] = await Promise.all([denylist.isDenied(claims.jti), claims.sid ? families.isRevoked(claims.sid) : Promise.resolve(false)]);
    return denied || familyRevoked ? undefined : claims;
  }

  /** The family's user, if still active; otherwise the family ends and the grant is refused. */
  async function activeUser(subject: string, family: Family): Promise<UserRecord> {
    const user = await withTimeout(userCache.findById(subject), deps.refreshUserTimeoutMs, 'users');
    if (!user || user.disabled) {
      if (await families.revoke(family.id)) events?.emit(familyRevoked('disabled_user', family, { type: 'client', id: family.clientId }));
      throw new InvalidGrantError('the account is no longer active');
    }
    return user;
  }

  /** The error for a rotation the store refused, changing nothing. */
  function refusal(reason: RotationRefusal, value: string): Error {
    switch (reason) {
      case 'scope_exceeded':
        return new InvalidScopeError(`scope "${value}" exceeds the scope originally granted`);
      case 'scope_lost':
        return new InvalidScopeError(`scope "${value}" is no longer allowed for this client`);
      case 'target':
        return new InvalidTargetError(`this refresh token is for audience "${value.slice(0, 100)}" only`);
    }
  }

  /** The client still exists and, for a user's token, the user still exists and is not disabled. */
  async function ownersActive(clientId: string, userId: string | undefined): Promise<boolean> {
    const [client, user] = await Promise.all([deps.clients.findById(clientId), userId === undefined ? undefined : users.findById(userId)]);
    return client !== null && (userId === undefined || (user !== null && user !== undefined && !user.disabled));
  }

  /**
   * The refresh_token grant (RFC 6749 §6): the token must belong to this client (else
   * undefined, changing nothing); a narrower scope may be asked for this access token, the
   * family keeps its own.
   *
   * Checked against the client as it is now, not as it was at sign-in: the access token
   * gets only the family's scopes the client still has (RFC 6749 §3.3: the response says
   * which), and asking for one it lost is invalid_scope; a family for an audience the
   * client may no longer target is ended (invalid_grant), as an access token for it
   * could not be issued at all.
   */
  async function rotateAndIssue(input: RefreshInput) {
    const requested = parseScope(input.scope);
    // One round trip: the rotation checks everything about the family in its atomic
    // step and replies with the family (a token whose tag does not verify asks nothing).
    // A refusal changes nothing, so an honest client's next refresh is no reuse.
    const result = await refreshTokens.rotate(input.refreshToken, input.context, {
      clientId: input.client.clientId,
      scope: requested,
      clientScopes: input.client.scopes,
      audience: input.audience,
      audiences: [deps.audience, ...input.client.audiences],
    });
    switch (result.outcome) {
      case 'reused':
        events?.emit(...reuseDetected(result.family, input.context));
        await deps.onFamilyReused?.(result.family);
        throw new InvalidGrantError('the refresh token was already used; the session has been revoked', { detail: `reuse in family ${result.familyId}` });
      case 'invalid':
        return undefined;
      case 'withdrawn':
        events?.emit(familyRevoked('audience_withdrawn', result.family, { type: 'client', id: input.client.clientId }));
        throw new InvalidGrantError('this client may no longer use the audience the refresh token was granted for', {
          detail: `audience withdrawn from client, family ${result.familyId} ended`,
        });
      case 'refused':
        throw refusal(result.reason, result.value);
      case 'rotated':
        break;
    }
    // After the rotation, from the user cache: a disabled user's family ends here. Should
    // the user have to be read and MongoDB be unavailable, the answer is 503 with the
    // family already rotated; the client's retry of the same token within
    // REFRESH_REUSE_GRACE gets the same successor (with a grace of 0 it is reuse).
    const user = await activeUser(result.family.subject, result.family);
    const scope =
      requested.length > 0
        ? requested.join(' ')
        : storedScopeTokens(result.family.scope)
            .filter((token) => input.client.scopes.includes(token))
            .join(' ');
    const issued = await accessTokenFor({ user, client: input.client, scope, audience: result.family.audience, sid: result.family.id });
    return { response: response(issued, scope, result.refreshToken), family: result.family, user };
  }

  return {
    /** Password grant and first-party login: an access token and, if the client may refresh, a new family. */
    async issueForUser(input: {
      user: UserRecord;
      client: ClientRecord;
      scope?: string | undefined;
      audience?: string | undefined;
      context: UseContext;
      /** The browser sign-in behind an OpenID Connect grant, kept by its family. */
      signIn?: FamilySignIn | undefined;
      /**
       * When the user was checked (ms; taken before reading the user): a password change or
       * logout-all after it refuses the family (`NewFamily.signedInAt`).
       */
      signedInAt: number;
      /**
       * Runs while the family is created and the access token signed, told their family id,
       * `jti` and expiry first (the authorization code grant records them with its code).
       * Should it reject, both are undone (the family revoked even if its creation is still to
       * come, the token denied) and its error is the answer.
       */
      alongside?: ((planned: IssuedFromCode) => Promise<void>) | undefined;
    }) {
      const scope = grantScope(input.scope, input.client.scopes);
      if (storedScopeTokens(scope).includes(ADMIN_SCOPE))
        throw new InvalidScopeError(`the ${ADMIN_SCOPE} scope is only for admin clients, by client_credentials`);
      const audience = pickAudience(input.client, input.audience);
      const { user, client } = input;
      const id = client.grantTypes.includes('refresh_token') ? refreshTokens.newFamilyId(user.id) : undefined;
      // The access token names the family (`sid`), so it is signed while the family is
      // written; if the family is refused, the token is dropped unseen.
      const claims = accessTokens.claims(accessRequest({ user, client, scope, audience, sid: id }));
      const planned: IssuedFromCode = { ...(id !== undefined && { familyId: id }), accessTokenJti: claims.jti, accessTokenExpiresAt: claims.exp * 1000 };
      const [family, issued, alongside] = await Promise.allSettled([
        // A password change or a logout-all that ran after this sign-in checked its user wins:
        // the store refuses the family in the step that would create it (FamilyStore.revokeAll).
        id === undefined
          ? undefined
          : refreshTokens.create(
              { id, subject: user.id, clientId: client.clientId, scope, audience, signIn: input.signIn, signedInAt: input.signedInAt },
              input.context,
            ),
        accessTokens.sign(claims),
        input.alongside?.(planned),
      ]);
      // The sessions the cap ended are gone whatever happens next to this one.
      const endedByCap = family.status === 'fulfilled' ? (family.value?.family.endedByCap ?? []) : [];
      if (endedByCap.length > 0) events?.emit(...cappedFamilies(user.id, endedByCap));
      if (alongside.status === 'rejected') {
        await undoIssued(planned, { clientId: client.clientId, userId: user.id });
        throw alongside.reason;
      }
      if (family.status === 'rejected') familyRefusal(family.reason);
      if (issued.status === 'rejected') throw issued.reason;
      const accessToken = { jti: issued.value.jti, expiresAt: issued.value.expiresAt };
      if (!family.value) return { response: response(issued.value, scope), family: undefined, accessToken };
      const created = family.value;
      return { response: response(issued.value, scope, created.refreshToken), family: created.family, accessToken };
    },

    /** client_credentials: no user, no refresh token, `sub` = client id. */
    async issueForClient(input: { client: ClientRecord; scope?: string | undefined; audience?: string | undefined }) {
      const scope = grantScope(input.scope, input.client.scopes);
      if (storedScopeTokens(scope).includes(ADMIN_SCOPE) && !input.client.permissions.includes('admin'))
        throw new InvalidScopeError(`the ${ADMIN_SCOPE} scope needs a client with the admin permission`);
      const audience = pickAudience(input.client, input.audience);
      const issued = await accessTokenFor({ client: input.client, scope, audience });
      return response(issued, scope);
    },

    /**
     * refresh_token grant (RFC 6749 §6): the token must belong to this client; a narrower
     * scope may be asked for this access token, the family keeps its own (see rotateAndIssue).
     */
    async refresh(input: RefreshInput) {
      const refreshed = await rotateAndIssue(input);
      if (!refreshed) throw new InvalidGrantError(INVALID_REFRESH_TOKEN);
      return refreshed;
    },

    /**
     * As `refresh`, but resolves undefined, changing nothing, when the token is not a live
     * family of `input.client` (FamilyStore.rotate: another client's token is invalid), so
     * that a caller may guess the client first and read the family only when it guessed wrong.
     */
    refreshIfOwned: (input: RefreshInput) => rotateAndIssue(input),

    /**
     * RFC 7009: a refresh token ends its whole family, an access token is denied until it
     * expires; unknown or malformed tokens are accepted silently (§2.2). A client may revoke
     * only tokens issued to it unless it holds the `revoke` permission.
     */
    async revoke(input: { token: string; hint?: string | undefined; client: ClientRecord }): Promise<void> {
      const mayRevoke = (owner: string) => owner === input.client.clientId || input.client.permissions.includes('revoke');
      const tryRefresh = async () => {
        const familyId = refreshTokens.verifiedFamilyId(input.token);
        if (!familyId) return false;
        const family = await families.get(familyId);
        if (family) {
          if (!mayRevoke(family.clientId)) throw new UnauthorizedClientError('the token was issued to another client');
          if (await families.revoke(family.id)) events?.emit(familyRevoked('token_revoked', family, { type: 'client', id: input.client.clientId }));
        }
        return true;
      };
      const tryAccess = async () => {
        const verified = await accessTokens.verify(input.token);
        if (!verified.ok) return false;
        if (!mayRevoke(verified.claims.client_id)) throw new UnauthorizedClientError('the token was issued to another client');
        await denylist.deny(verified.claims.jti, denyUntil(verified.claims));
        return true;
      };
      // §2.1: the hint only orders the search.
      if (input.hint === 'access_token') {
        if (!(await tryAccess())) await tryRefresh();
      } else if (!(await tryRefresh())) {
        await tryAccess();
      }
    },

    /** RFC 7662 §2.2. Only clients with the `introspect` permission; never rotates a refresh token. */
    async introspect(input: { token: string; client: ClientRecord }): Promise<Record<string, unknown>> {
      if (input.client.type !== 'confidential' || !input.client.permissions.includes('introspect')) {
        throw new AccessDeniedError('this client may not introspect tokens');
      }
      const claims = await checkAccessToken(input.token);
      // A token verifies until it expires; RFC 7662 §2.2 asks whether it is active now: not
      // once its client is deleted or its user deleted or disabled.
      if (claims && (await ownersActive(claims.client_id, claims.sub === claims.client_id ? undefined : claims.sub))) {
        return {
          active: true,
          token_type: 'Bearer',
          iss: claims.iss,
          sub: claims.sub,
          aud: claims.aud,
          client_id: claims.client_id,
          scope: claims.scope,
          exp: claims.exp,
          iat: claims.iat,
          nbf: claims.nbf,
          jti: claims.jti,
          ...(claims.sid ? { sid: claims.sid } : {}),
          ...(claims.email ? { username: claims.email } : {}),
        };
      }
      const family = await refreshTokens.inspect(input.token);
      if (family && (await ownersActive(family.clientId, family.subject))) {
        return {
          // No token_type: RFC 7662 §2.2 takes it from RFC 6749 §7.1, which types access tokens only.
          active: true,
          sub: family.subject,
          client_id: family.clientId,
          scope: family.scope,
          aud: family.audience,
          iat: Math.floor(family.lastUsedAt / 1000),
          // The earlier of the idle and the absolute expiry.
          exp: Math.floor(Math.min(family.expiresAt, family.lastUsedAt + deps.refreshTokenTtl * 1000) / 1000),
          sid: family.id,
        };
      }
      return { active: false };
    },

    /**
     * The claims of a Bearer token for the issuer's own endpoints: it must be meant for
     * our default audience. The header is read by the verifier kit's `bearerToken`, so
     * both sides parse it alike; `authorization` is every value the request carried
     * (Node's `req.headersDistinct.authorization`), since two headers are refused.
     * RFC 6750 §3.1: no Bearer credentials get a bare challenge, malformed ones 400.
     */
    async authenticateBearer(authorization: string | readonly string[] | undefined): Promise<AccessTokenClaims> {
      let token: string;
      try {
        token = bearerToken(authorization);
      } catch (err) {
        if (!isTokenError(err)) throw err;
        const headers = { 'WWW-Authenticate': err.wwwAuthenticate ?? 'Bearer' };
        if (err.code === 'invalid_request') throw new InvalidRequestError(err.description, { headers });
        throw new InvalidTokenError('a Bearer access token is required', { headers });
      }
      const claims = await checkAccessToken(token, deps.audience);
      if (!claims) throw new InvalidTokenError('the access token is invalid, expired or revoked');
      return claims;
    },

    /**
     * Takes back what one grant issued (RFC 6749 §4.1.2: a code used twice): ends the
     * family (keeps it from being created, should it not exist yet) and denies the access
     * token until it can no longer verify.
     */
    undoIssued,

    /** The family id of a refresh token this server minted, current or not; undefined for anything else. */
    refreshTokenFamilyId: (refreshToken: string) => refreshTokens.verifiedFamilyId(refreshToken),

    /** Denies one access token until it expires (logout). */
    denyAccessToken: (claims: AccessTokenClaims) => denylist.deny(claims.jti, denyUntil(claims)),
  };
}

export type TokenService = ReturnType<typeof createTokenService>;
