/**
 * OpenID Connect ID tokens (OIDC Core §2, §3.1.3.6) and the other JWTs that are not access
 * tokens (logout tokens, Back-Channel Logout §2.4), signed with the key ring's active key.
 * Their `typ` is never `at+jwt`: our Bearer check and the verifier kit refuse them as
 * access tokens (RFC 9068 §2.1), and an access token is never taken for one of them.
 */
import { createHash } from 'node:crypto';
import { compactVerify, decodeProtectedHeader, SignJWT, type JWTPayload } from 'jose';
import { epochSeconds, type Clock } from '../clock.js';
import { algsOfKey, type KeyAlg } from '../keys/algorithms.js';
import type { KeyRingSource } from '../keys/source.js';
import type { Random } from '../random.js';
import { traceSigning } from '../telemetry/spans.js';

/** OIDC Core §2 recommends `JWT` (RFC 7519 §5.1) for ID tokens. */
export const ID_TOKEN_TYP = 'JWT';
/** Back-Channel Logout 1.0 §2.4. */
export const LOGOUT_TOKEN_TYP = 'logout+jwt';
export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
/** ISO/IEC 29115 level of assurance 1: one factor (a password). The MFA work raises it. */
export const ACR_PASSWORD = '1';

/**
 * What a client may register as `id_token_signed_response_alg` (OIDC Registration §2): the
 * algs our RSA keys sign with. Never `none` (OIDC Core §3.1.3.7 step 6 wants a signature
 * in the code flow, and an unsigned token could be forged by anyone).
 */
export const ID_TOKEN_SIGNING_ALGS = ['RS256', 'PS256'] as const satisfies readonly KeyAlg[];
export type IdTokenSigningAlg = (typeof ID_TOKEN_SIGNING_ALGS)[number];
/** OIDC Registration §2: the alg when the client registered none. */
export const DEFAULT_ID_TOKEN_SIGNING_ALG: IdTokenSigningAlg = 'RS256';

export function isIdTokenSigningAlg(value: unknown): value is IdTokenSigningAlg {
  return typeof value === 'string' && (ID_TOKEN_SIGNING_ALGS as readonly string[]).includes(value);
}

export interface IdTokenRequest {
  readonly sub: string;
  readonly clientId: string;
  /** The client's `id_token_signed_response_alg`. */
  readonly alg: IdTokenSigningAlg;
  /** ms since epoch. */
  readonly authTime: number;
  readonly amr: readonly string[];
  readonly sid?: string | undefined;
  readonly nonce?: string | undefined;
  /** The access token issued with it, for `at_hash` (§3.1.3.6). */
  readonly accessToken: string;
  /** User claims the scope allows (`user-claims.ts`). */
  readonly claims: Readonly<Record<string, unknown>>;
}

export interface IdTokenDeps {
  readonly keys: Pick<KeyRingSource, 'current'>;
  readonly clock: Clock;
  readonly random: Pick<Random, 'token'>;
  readonly issuer: string;
  /** Seconds. */
  readonly ttl: number;
}

/** The claims of an ID token we issued, as an `id_token_hint` gives them back. */
export interface HintClaims {
  readonly sub: string;
  readonly aud: string;
  readonly sid: string | undefined;
}

/** OIDC Core §3.1.3.6: the left half of the hash of the access token, with the alg's hash. */
export function tokenHash(alg: string, token: string): string {
  const digest = alg === 'EdDSA' || alg.endsWith('512') ? 'sha512' : alg.endsWith('384') ? 'sha384' : 'sha256';
  const full = createHash(digest).update(token).digest();
  return full.subarray(0, full.length / 2).toString('base64url');
}

export function createIdTokens(deps: IdTokenDeps) {
  const { keys, clock, issuer } = deps;

  /**
   * Signs with the active key, in the client's alg when the ring offers it (the key's own alg,
   * or a twin's: ID_TOKEN_SIGNING_ALGS), else in the key's own alg: a relying party that
   * pinned another alg then refuses the token, as OIDC Core §3.1.3.7 wants.
   */
  async function sign(typ: string, payload: (alg: KeyAlg) => JWTPayload, wanted: IdTokenSigningAlg): Promise<string> {
    const ring = keys.current();
    const { kid, alg, privateKey } = ring.idTokenSigningKey(ring.idTokenAlgs.includes(wanted) ? wanted : ring.active.alg);
    return traceSigning(`sign ${typ === ID_TOKEN_TYP ? 'id token' : typ}`, { kid, alg }, () =>
      new SignJWT(payload(alg)).setProtectedHeader({ alg, typ, kid }).sign(privateKey),
    );
  }

  return {
    async issue(request: IdTokenRequest): Promise<string> {
      const iat = epochSeconds(clock);
      const payload = (alg: KeyAlg): JWTPayload => ({
        iss: issuer,
        sub: request.sub,
        aud: request.clientId,
        exp: iat + deps.ttl,
        iat,
        auth_time: Math.floor(request.authTime / 1000),
        ...(request.nonce !== undefined && { nonce: request.nonce }),
        at_hash: tokenHash(alg, request.accessToken),
        ...(request.sid !== undefined && { sid: request.sid }),
        acr: ACR_PASSWORD,
        amr: [...request.amr],
        ...request.claims,
      });
      return sign(ID_TOKEN_TYP, payload, request.alg);
    },

    /** Back-Channel Logout §2.4: for one client, one session; never a nonce. Signed as the client's ID tokens are (§2.4: the same keys). */
    async logoutToken(input: { clientId: string; alg: IdTokenSigningAlg; sub: string; sid: string }): Promise<string> {
      const iat = epochSeconds(clock);
      const payload: JWTPayload = {
        iss: issuer,
        sub: input.sub,
        aud: input.clientId,
        iat,
        exp: iat + 120,
        jti: deps.random.token(16),
        sid: input.sid,
        events: { [BACKCHANNEL_LOGOUT_EVENT]: {} },
      };
      return sign(LOGOUT_TOKEN_TYP, () => payload, input.alg);
    },

    /**
     * An `id_token_hint` (OIDC Core §3.1.2.1, RP-Initiated Logout §2): one of our ID tokens,
     * signed by a key we publish and with our `iss`; expired ones are accepted, as the
     * specifications allow. Undefined for anything else.
     */
    async verifyHint(token: string): Promise<HintClaims | undefined> {
      try {
        if (token.length > 16 * 1024) return undefined;
        const header = decodeProtectedHeader(token);
        if (typeof header.kid !== 'string' || header.typ !== ID_TOKEN_TYP) return undefined;
        // Under a key's own kid its own alg; under a twin's kid (`<kid>~<alg>`) that alg, if
        // it is one the key signs (the twin may be gone since: a hint may be old).
        const [kid, twin] = header.kid.split('~');
        const published = keys.current().verificationKey(kid!);
        if (!published || (twin !== undefined && !algsOfKey(published.alg).includes(twin as KeyAlg))) return undefined;
        const { payload } = await compactVerify(token, published.publicKey, { algorithms: [twin ?? published.alg] });
        const claims = JSON.parse(new TextDecoder().decode(payload)) as Record<string, unknown>;
        if (claims.iss !== issuer || typeof claims.sub !== 'string' || typeof claims.aud !== 'string') return undefined;
        return { sub: claims.sub, aud: claims.aud, sid: typeof claims.sid === 'string' ? claims.sid : undefined };
      } catch {
        return undefined;
      }
    },
  };
}

export type IdTokens = ReturnType<typeof createIdTokens>;
