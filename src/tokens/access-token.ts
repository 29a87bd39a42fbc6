/**
 * JWT access tokens per RFC 9068, signed with the key ring's active key. This is the only
 * module that touches a private key. Signing is on the token endpoint's hot path, so the
 * protected header is encoded once per ring and the JWS is assembled directly (RFC 7515
 * §7.1 compact serialisation) with node:crypto, the key imported once per ring load.
 */
import { KeyObject, sign as cryptoSign, type SignKeyObjectInput } from 'node:crypto';
import { epochSeconds, type Clock } from '../clock.js';
import { signParams, type KeyAlg } from '../keys/algorithms.js';
import { traceSigning } from '../telemetry/spans.js';
import type { KeyRing, VerificationKey } from '../keys/key-ring.js';
import type { KeyRingSource } from '../keys/source.js';
import type { Random } from '../random.js';
import {
  ACCESS_TOKEN_TYP,
  checkAlgorithm,
  checkClaims,
  parseToken,
  signatureKey,
  verifySignature,
  type SignatureKey,
} from '../../packages/verifier/src/core.js';
import { isTokenError } from '../../packages/verifier/src/errors.js';

export { ACCESS_TOKEN_TYP };

/** What a grant decides; the time- and issuer-dependent claims are added here. */
export interface AccessTokenRequest {
  /** User id, or the client id for client_credentials (RFC 9068 §2.2). */
  readonly sub: string;
  readonly aud: string | readonly string[];
  readonly client_id: string;
  /** Space-separated (RFC 9068 §2.2.3). */
  readonly scope: string;
  readonly email?: string | undefined;
  /** RFC 9068 §2.2.3.1 (SCIM `roles`). */
  readonly roles?: readonly string[] | undefined;
  /** The refresh family this token was issued in. */
  readonly sid?: string | undefined;
}

/** The claims of one of our access tokens (RFC 9068 §2.2). */
export interface AccessTokenClaims {
  readonly iss: string;
  readonly sub: string;
  readonly aud: string | readonly string[];
  /** Seconds since the epoch, as in the JWT. */
  readonly exp: number;
  readonly iat: number;
  readonly nbf: number;
  readonly jti: string;
  readonly client_id: string;
  readonly scope: string;
  readonly email?: string;
  readonly roles?: readonly string[];
  readonly sid?: string;
}

export interface IssuedAccessToken {
  readonly token: string;
  readonly jti: string;
  readonly kid: string;
  /** Milliseconds since the epoch (the unit of the stores, e.g. the denylist). */
  readonly expiresAt: number;
  /** Seconds: `expires_in` of the token response (RFC 6749 §5.1). */
  readonly expiresIn: number;
  readonly claims: AccessTokenClaims;
}

export type VerifyResult =
  | { readonly ok: true; readonly claims: AccessTokenClaims; readonly kid: string }
  /** `expired`: genuine but past `exp` (+ skew). `invalid`: anything else. `detail` is for logs only. */
  | { readonly ok: false; readonly error: 'expired' | 'invalid'; readonly detail: string };

export interface AccessTokenDeps {
  readonly keys: Pick<KeyRingSource, 'current'>;
  readonly clock: Clock;
  readonly random: Pick<Random, 'token'>;
  readonly issuer: string;
  /** Seconds. */
  readonly ttl: number;
  /** Seconds of tolerance on `exp`, `nbf` and `iat` when verifying. */
  readonly clockSkew: number;
}

export interface VerifyOptions {
  /** When given, `aud` must contain it. */
  readonly audience?: string;
}

export interface AccessTokens {
  issue(request: AccessTokenRequest): Promise<IssuedAccessToken>;
  /**
   * `issue` in two steps, for a caller that must record the token's `jti` and `exp` while
   * it is signed: the claims at once (a fresh `jti`, `exp` from now), then the signature.
   */
  claims(request: AccessTokenRequest): AccessTokenClaims;
  sign(claims: AccessTokenClaims): Promise<IssuedAccessToken>;
  /**
   * Through the verifier kit's core (packages/verifier/src/core.ts), with the ring's keys as the
   * allowlist: the same header, limits and claim rules a resource server applies.
   * Never throws for a bad token: every failure is a typed result.
   */
  verify(token: string, options?: VerifyOptions): Promise<VerifyResult>;
}

interface PreparedSigner {
  readonly ring: KeyRing;
  readonly kid: string;
  readonly alg: KeyAlg;
  /** base64url of the protected header, followed by `.`. */
  readonly headerPrefix: string;
  readonly digest: string | null;
  readonly key: SignKeyObjectInput;
}

export function createAccessTokens({ keys, clock, random, issuer, ttl, clockSkew }: AccessTokenDeps): AccessTokens {
  let prepared: PreparedSigner | undefined;
  /** Each ring's verification keys as node:crypto keys bound to their alg, converted once. */
  const verifyKeys = new WeakMap<VerificationKey, SignatureKey | undefined>();

  function keyFor(published: VerificationKey): SignatureKey | undefined {
    if (!verifyKeys.has(published)) verifyKeys.set(published, signatureKey(published.alg, KeyObject.from(published.key)));
    return verifyKeys.get(published);
  }

  function signerFor(ring: KeyRing): PreparedSigner {
    if (prepared?.ring === ring) return prepared;
    const { kid, alg, privateKey } = ring.signingKey();
    // RFC 9068 §2.1: `typ` is `at+jwt`, so an access token cannot pass for another kind of JWT.
    const header = Buffer.from(JSON.stringify({ alg, typ: ACCESS_TOKEN_TYP, kid })).toString('base64url');
    prepared = { ring, kid, alg, headerPrefix: `${header}.`, ...signParams(alg, privateKey) };
    return prepared;
  }

  function claimsFor(request: AccessTokenRequest): AccessTokenClaims {
    if (!request.sub || !request.client_id || (typeof request.aud === 'string' ? !request.aud : request.aud.length === 0)) {
      throw new TypeError('an access token needs sub, client_id and aud');
    }
    const iat = epochSeconds(clock);
    return {
      iss: issuer,
      sub: request.sub,
      aud: typeof request.aud === 'string' ? request.aud : [...request.aud],
      exp: iat + ttl,
      iat,
      nbf: iat,
      jti: random.token(16),
      client_id: request.client_id,
      scope: request.scope,
      ...(request.email !== undefined && { email: request.email }),
      ...(request.roles !== undefined && { roles: [...request.roles] }),
      ...(request.sid !== undefined && { sid: request.sid }),
    };
  }

  async function signClaims(claims: AccessTokenClaims): Promise<IssuedAccessToken> {
    const signer = signerFor(keys.current());
    const signingInput = signer.headerPrefix + Buffer.from(JSON.stringify(claims)).toString('base64url');
    const signature = await traceSigning('sign access token', signer, () => sign(signer, Buffer.from(signingInput)));
    return {
      token: `${signingInput}.${signature.toString('base64url')}`,
      jti: claims.jti,
      kid: signer.kid,
      expiresAt: claims.exp * 1000,
      expiresIn: ttl,
      claims,
    };
  }

  const issue = async (request: AccessTokenRequest): Promise<IssuedAccessToken> => signClaims(claimsFor(request));

  async function verify(token: string, options: VerifyOptions = {}): Promise<VerifyResult> {
    try {
      const parsed = parseToken(token);
      const ring = keys.current();
      // Any published key, `next` included: another instance may have promoted it before this one reloaded.
      const published = ring.verificationKey(parsed.kid);
      if (published === undefined) return invalid('kid is not a published key');
      // The alg comes from our ring, never from the token: this excludes `none` and HMAC-with-the-public-key.
      checkAlgorithm(parsed.alg, new Set([published.alg]));
      const key = keyFor(published);
      if (key === undefined) return invalid(`key ${parsed.kid} does not fit ${published.alg}`);
      await verifySignature(parsed, key);
      const audience = options.audience === undefined ? undefined : [options.audience];
      const payload = checkClaims(parsed.payload, { issuer, audience, clockTolerance: clockSkew }, clock.now());
      return { ok: true, kid: parsed.kid, claims: { ...payload, scope: payload.scope ?? '' } as unknown as AccessTokenClaims };
    } catch (err) {
      if (!isTokenError(err)) throw err;
      if (err.code === 'expired_token') return { ok: false, error: 'expired', detail: 'token expired' };
      return invalid(err.detail === undefined ? err.description : `${err.description}: ${err.detail}`);
    }
  }

  return { issue, claims: claimsFor, sign: signClaims, verify };
}

function invalid(detail: string): VerifyResult {
  return { ok: false, error: 'invalid', detail };
}

function sign(signer: PreparedSigner, data: Buffer): Promise<Buffer> | Buffer {
  // RSA signing costs about a millisecond: the callback form runs it on the libuv pool and
  // keeps the event loop serving. EC and Ed25519 are cheaper than the hop to the pool.
  if (signer.alg === 'ES256' || signer.alg === 'EdDSA') return cryptoSign(signer.digest, data, signer.key);
  return new Promise((resolve, reject) => {
    cryptoSign(signer.digest, data, signer.key, (err, signature) => (err ? reject(err) : resolve(signature)));
  });
}
