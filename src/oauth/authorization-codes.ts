/**
 * Authorization codes (RFC 6749 §4.1.2, §4.1.3, RFC 7636 §4.6): minted when a user has
 * signed in and allowed a request, redeemed once at the token endpoint. A code is 256
 * random bits; the store holds only its SHA-256, bound to the client, redirect URI, PKCE
 * challenge, user, scope, audience and the sign-in's time. A second presentation takes
 * back everything the first issued (§4.1.2).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../clock.js';
import { InvalidGrantError } from '../errors.js';
import type { Random } from '../random.js';
import type { AuthorizationCodeStore, ClientRecord, UseContext, UserRecord, UserStore } from '../stores/types.js';
import type { IdTokens } from '../tokens/id-token.js';
import type { AuthorizationRequest } from './authorization.js';
import type { Logout } from './logout.js';
import type { TokenResponse, TokenService } from './token-service.js';
import { storedScopeTokens } from './scope.js';
import { userClaims } from './user-claims.js';

/** RFC 6749 §4.1.2 recommends at most 10 minutes; one is plenty for a redirect. */
export const CODE_TTL_MS = 60_000;
const CODE_BYTES = 32;
const INVALID_CODE = 'the authorization code is invalid, expired or already used';

export interface AuthorizationCodeDeps {
  readonly codes: AuthorizationCodeStore;
  readonly tokens: Pick<TokenService, 'issueForUser' | 'undoIssued'>;
  /**
   * The user cache (`users/cache.ts`): a record stale by the invalidation latency is safe
   * here, since a password change or logout-all after the sign-in also refuses the family
   * in the store (`signedInAt`).
   */
  readonly users: Pick<UserStore, 'findById'>;
  /** OpenID Connect: the `openid` scope adds an ID token to the response. */
  readonly idTokens: Pick<IdTokens, 'issue'>;
  /** Told of every ID token issued in a sign-in session, so that its end reaches the client (back-channel logout). */
  readonly signIns?: Pick<Logout, 'clientReceivedTokens'>;
  readonly random: Random;
  readonly clock: Clock;
}

const hash = (value: string) => createHash('sha256').update(value).digest('base64url');

/** RFC 7636 §4.6: BASE64URL(SHA256(ASCII(code_verifier))) == code_challenge, compared in constant time. */
export function verifierMatches(verifier: string, challenge: string): boolean {
  const expected = Buffer.from(challenge);
  const actual = Buffer.from(hash(verifier));
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

export function createAuthorizationCodes(deps: AuthorizationCodeDeps) {
  const { codes, tokens, users } = deps;

  return {
    /** A code for `request`, signed in as `user` in the browser session `signIn.sid` at `signIn.authTime` (ms). */
    async issue(request: AuthorizationRequest, user: UserRecord, signIn: CodeSignIn): Promise<string> {
      const { authTime } = signIn;
      const code = deps.random.token(CODE_BYTES);
      await codes.save(
        hash(code),
        {
          clientId: request.clientId,
          redirectUri: request.redirectUri,
          codeChallenge: request.codeChallenge,
          userId: user.id,
          scope: request.scope,
          audience: request.audience,
          authTime,
          nonce: request.nonce,
          sid: signIn.sid,
          amr: signIn.amr,
        },
        CODE_TTL_MS,
      );
      return code;
    },

    /** The authorization_code grant: one presentation of a code wins, a second undoes it. */
    async redeem(input: { code: string; redirectUri: string; codeVerifier: string; client: ClientRecord; context: UseContext }): Promise<TokenResponse> {
      const codeHash = hash(input.code);
      const result = await codes.consume(codeHash, { clientId: input.client.clientId });
      if (result.outcome === 'invalid') throw new InvalidGrantError(INVALID_CODE);
      if (result.outcome === 'reused') {
        if (result.issued) await tokens.undoIssued(result.issued, { clientId: result.record.clientId, userId: result.record.userId });
        throw new InvalidGrantError(INVALID_CODE, { detail: 'authorization code presented again: what it issued is revoked' });
      }
      const { record } = result;
      // §4.1.3: the same redirect_uri as in the request; RFC 7636 §4.6: the verifier of its challenge.
      if (input.redirectUri !== record.redirectUri) throw new InvalidGrantError('redirect_uri is not the one the code was issued for');
      if (!verifierMatches(input.codeVerifier, record.codeChallenge)) throw new InvalidGrantError('code_verifier does not match the code_challenge');
      const user = await users.findById(record.userId);
      // A password change (or a disabled account) after the sign-in ends what it would have started.
      if (!user || user.disabled || user.passwordChangedAt.getTime() > record.authTime)
        throw new InvalidGrantError(INVALID_CODE, { detail: 'the account changed after the sign-in' });
      const openid = storedScopeTokens(record.scope).includes('openid');
      const signIn = openid && record.sid !== undefined ? { sid: record.sid, authTime: record.authTime, amr: record.amr ?? ['pwd'] } : undefined;
      const issued = await tokens.issueForUser({
        user,
        client: input.client,
        scope: record.scope,
        audience: record.audience,
        context: input.context,
        signIn,
        signedInAt: record.authTime,
        // Recorded with the code while the family is created and the token signed (one round
        // trip less than after them): a second presentation from now on takes both back,
        // the family even before it exists (FamilyStore.revoke's `ahead`). One that came
        // before the record was told nothing to take back: this redemption undoes itself.
        alongside: async (planned) => {
          if ((await codes.recordIssued(codeHash, planned)) !== 'recorded') {
            throw new InvalidGrantError(INVALID_CODE, { detail: 'authorization code presented again while it was redeemed' });
          }
        },
      });
      if (!openid) return issued.response;
      if (record.sid !== undefined) await deps.signIns?.clientReceivedTokens({ sid: record.sid, sub: user.id, clientId: input.client.clientId });
      // OIDC Core §3.1.3.3: the ID token comes with the tokens of an `openid` request.
      const idToken = await deps.idTokens.issue({
        sub: user.id,
        clientId: input.client.clientId,
        alg: input.client.idTokenSignedResponseAlg,
        authTime: record.authTime,
        amr: record.amr ?? ['pwd'],
        sid: record.sid,
        nonce: record.nonce,
        accessToken: issued.response.access_token,
        claims: userClaims(user, record.scope),
      });
      return { ...issued.response, id_token: idToken };
    },
  };
}

/** The browser sign-in a code comes from. */
export interface CodeSignIn {
  /** ms since epoch. */
  readonly authTime: number;
  /** The browser session's public id (the ID token's `sid`). */
  readonly sid: string;
  readonly amr: readonly string[];
}

export type AuthorizationCodes = ReturnType<typeof createAuthorizationCodes>;
