/**
 * The one verification core for the authority's JWT access tokens (RFC 9068 §4), behind
 * both entry points: the verifier kit's `verify()` and the authority's own Bearer check
 * (src/tokens/access-token.ts). As jose's `jwtVerify` and `compactVerify` both go through
 * its `lib/jws_verify`, each rule lives here once: the compact form and its size, the
 * header (`typ`, an asymmetric `alg` on the caller's allowlist, `kid`, no `crit`), which
 * key fits which alg, the signature, `iss`, `aud`, the time claims and the claim types.
 * Callers bring only what differs: where keys come from, the issuer, the audience, the clock.
 *
 * The signature is checked with node:crypto (`verify`, on the libuv pool) rather than
 * through jose, whose WebCrypto path reaches the same OpenSSL call with a per-call cost
 * that made the kit slower than the library it wraps; test/verifier/core-parity.test.ts
 * pins this module's verdicts to jose's `jwtVerify`.
 */
import { constants, createPublicKey, verify as cryptoVerify, type JsonWebKeyInput, type KeyObject, type VerifyKeyObjectInput } from 'node:crypto';
import { TokenError } from './errors.js';

/** RFC 9068 §2.1: the media type of an access token, without `application/`. */
export const ACCESS_TOKEN_TYP = 'at+jwt';

/** Longer than any access token the authority issues; a bound on what we parse. */
export const MAX_TOKEN_LENGTH = 16 * 1024;

/** Below this an RSA key is refused (RFC 7518 §3.3, §3.5). */
const MIN_RSA_BITS = 2048;

/** How each accepted alg verifies: digest, key type (and curve), RSA padding (RFC 7518 §3, RFC 8037 §3.1). */
const ALGORITHMS: Readonly<Record<string, { digest: string | null; type: string; curve?: string; pss?: number; p1363?: true }>> = {
  RS256: { digest: 'sha256', type: 'rsa' },
  RS384: { digest: 'sha384', type: 'rsa' },
  RS512: { digest: 'sha512', type: 'rsa' },
  PS256: { digest: 'sha256', type: 'rsa', pss: 32 },
  PS384: { digest: 'sha384', type: 'rsa', pss: 48 },
  PS512: { digest: 'sha512', type: 'rsa', pss: 64 },
  ES256: { digest: 'sha256', type: 'ec', curve: 'prime256v1', p1363: true },
  ES384: { digest: 'sha384', type: 'ec', curve: 'secp384r1', p1363: true },
  ES512: { digest: 'sha512', type: 'ec', curve: 'secp521r1', p1363: true },
  EdDSA: { digest: null, type: 'ed25519' },
  Ed25519: { digest: null, type: 'ed25519' },
};

/**
 * Asymmetric JWS algorithms (RFC 7518 §3.1, RFC 8037 §3.1, RFC 9864). Everything else —
 * `none` and the HMAC family above all — is never accepted: with HMAC, a verifier handed
 * the public key as a "secret" would accept tokens anyone can forge.
 */
export const ASYMMETRIC_ALGORITHMS: ReadonlySet<string> = new Set(Object.keys(ALGORITHMS));

/** A public key bound to the one alg it may verify. */
export interface SignatureKey {
  readonly alg: string;
  readonly digest: string | null;
  readonly input: VerifyKeyObjectInput;
}

/**
 * `key` bound to `alg`, or undefined when it does not fit: wrong key type or curve, an
 * RSA key under 2048 bits, a private key. This binding is what makes the alg safe to take
 * from the token: an RS256 key never checks a PS256 or ES256 signature.
 */
export function signatureKey(alg: string, key: KeyObject): SignatureKey | undefined {
  const spec = ALGORITHMS[alg];
  if (spec === undefined || key.type !== 'public') return undefined;
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (spec.type === 'rsa') {
    // An `rsa-pss` key may only make PSS signatures (RFC 8017 §A.2.3).
    if (!(type === 'rsa' || (type === 'rsa-pss' && spec.pss !== undefined))) return undefined;
    if ((details.modulusLength ?? 0) < MIN_RSA_BITS) return undefined;
  } else if (type !== spec.type || (spec.curve !== undefined && details.namedCurve !== spec.curve)) {
    return undefined;
  }
  const input: VerifyKeyObjectInput =
    spec.pss !== undefined
      ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: spec.pss }
      : spec.p1363
        ? { key, dsaEncoding: 'ieee-p1363' }
        : { key };
  return { alg, digest: spec.digest, input };
}

/** A JWK's public members as a key bound to `alg`, or undefined when it is unusable for it. */
export function signatureKeyFromJwk(alg: string, jwk: Record<string, unknown>): SignatureKey | undefined {
  // Only the public members: a JWKS that leaks `d` must still not make us import a private key.
  const { kty, n, e, crv, x, y } = jwk;
  const publicMembers = Object.fromEntries(Object.entries({ kty, n, e, crv, x, y }).filter(([, value]) => value !== undefined));
  try {
    return signatureKey(alg, createPublicKey({ key: publicMembers, format: 'jwk' } as JsonWebKeyInput));
  } catch {
    return undefined;
  }
}

/** A compact JWS whose header passed, its payload decoded (once) but not yet trusted. */
export interface ParsedToken {
  readonly alg: string;
  readonly kid: string;
  readonly payload: Record<string, unknown>;
  /** `header.payload`, what was signed (RFC 7515 §7.1). */
  readonly signingInput: string;
  readonly signature: string;
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/**
 * RFC 7515 §7.1 compact serialisation and the header rules. Throws malformed_token for
 * anything that is not a JWS of bounded size with JSON object header and payload,
 * invalid_token for a header we refuse: an alg that is not asymmetric, a `typ` other than
 * `at+jwt` (RFC 9068 §4 step 2), no `kid`, or any `crit` (we understand no extension, and
 * RFC 7515 §4.1.11 says a token naming one we do not understand must be refused).
 */
export function parseToken(token: unknown): ParsedToken {
  if (typeof token !== 'string') throw new TokenError('malformed_token', 'the token is not a string');
  if (token === '') throw new TokenError('malformed_token', 'the token is empty');
  if (token.length > MAX_TOKEN_LENGTH) throw new TokenError('malformed_token', 'the token is too long');
  const first = token.indexOf('.');
  const last = token.lastIndexOf('.');
  const segments = token.split('.', 6).length;
  if (segments === 5) throw new TokenError('malformed_token', 'encrypted tokens (JWE) are not accepted');
  if (segments !== 3) throw new TokenError('malformed_token', 'the token is not a JWS in compact form (three segments)');
  const headerPart = token.slice(0, first);
  const payloadPart = token.slice(first + 1, last);
  const signature = token.slice(last + 1);
  if (headerPart === '' || payloadPart === '' || !BASE64URL.test(headerPart) || !BASE64URL.test(payloadPart) || !BASE64URL.test(signature)) {
    throw new TokenError('malformed_token', 'the token is not base64url-encoded');
  }
  const header = decodeJson(headerPart);
  const payload = decodeJson(payloadPart);
  if (!isRecord(header)) throw new TokenError('malformed_token', 'the token header is not a JSON object');
  if (!isRecord(payload)) throw new TokenError('malformed_token', 'the token payload is not a JSON object');

  const { alg, typ, kid } = header;
  if (typeof alg !== 'string' || !ASYMMETRIC_ALGORITHMS.has(alg)) {
    throw new TokenError('invalid_token', "the token's signing algorithm is not accepted", { detail: `alg ${JSON.stringify(alg)}` });
  }
  if (typeof typ !== 'string' || normalizeTyp(typ) !== ACCESS_TOKEN_TYP) {
    throw new TokenError('invalid_token', 'the token is not an access token (typ must be at+jwt)', { detail: `typ ${JSON.stringify(typ)}` });
  }
  if (typeof kid !== 'string' || kid === '') throw new TokenError('invalid_token', 'the token names no signing key (kid)');
  if (header.crit !== undefined)
    throw new TokenError('invalid_token', 'the token names critical header extensions', { detail: `crit ${JSON.stringify(header.crit)}` });
  return { alg, kid, payload, signingInput: token.slice(0, last), signature };
}

/** The allowlist: the caller's (configured, or the authority's metadata, or its own keys). */
export function checkAlgorithm(alg: string, allowed: ReadonlySet<string>): void {
  if (!allowed.has(alg))
    throw new TokenError('invalid_token', "the token's signing algorithm is not accepted", { detail: `alg ${alg} is not on the allowlist` });
}

/** Throws invalid_token unless `key`, bound to the token's alg, made the signature. */
export function verifySignature(parsed: ParsedToken, key: SignatureKey): Promise<void> {
  if (key.alg !== parsed.alg)
    return Promise.reject(
      new TokenError('invalid_token', "the token's signing algorithm does not fit its key", { detail: `alg ${parsed.alg}, key for ${key.alg}` }),
    );
  const data = Buffer.from(parsed.signingInput);
  const signature = Buffer.from(parsed.signature, 'base64url');
  return new Promise((resolve, reject) => {
    // The callback form runs on the libuv pool: the event loop keeps serving meanwhile.
    cryptoVerify(key.digest, data, key.input, signature, (err, valid) => {
      if (err === null && valid) resolve();
      else reject(new TokenError('invalid_token', 'the token signature is invalid', { detail: err?.message ?? 'signature mismatch' }));
    });
  });
}

export interface ClaimRules {
  /** `iss` must equal it exactly (RFC 9068 §4 step 3). */
  readonly issuer: string;
  /** `aud` must contain one of them exactly (§4 step 4); undefined: any audience. */
  readonly audience: readonly string[] | undefined;
  /** Seconds of tolerance on `exp`, `nbf` and `iat`. */
  readonly clockTolerance: number;
}

/** The claims of a token whose signature verified, every one of them checked for type. */
export interface AccessTokenPayload {
  readonly iss: string;
  readonly sub: string;
  readonly aud: string | readonly string[];
  readonly exp: number;
  readonly iat: number;
  readonly nbf?: number;
  readonly jti: string;
  readonly client_id: string;
  readonly scope?: string;
  readonly email?: string;
  readonly roles?: readonly string[];
  readonly sid?: string;
  readonly [claim: string]: unknown;
}

/**
 * RFC 9068 §2.2 and §4 on a verified payload: `iss`, `aud`, the time claims, and
 * `sub`, `client_id`, `jti` (non-empty strings), `exp`, `iat` (numbers), `scope`, `email`,
 * `sid` (strings), `roles` (strings) when present. Throws invalid_token or expired_token.
 */
export function checkClaims(payload: Record<string, unknown>, rules: ClaimRules, nowMs: number): AccessTokenPayload {
  for (const claim of ['sub', 'client_id', 'jti', 'exp', 'iat'] as const) {
    if (payload[claim] === undefined) throw new TokenError('invalid_token', `the token lacks the ${claim} claim`);
  }
  const { iss, sub, aud, exp, iat, nbf, jti, client_id: clientId, scope, email, roles, sid } = payload;
  if (iss !== rules.issuer) throw new TokenError('invalid_token', 'the token was issued by another authority', { detail: `iss ${JSON.stringify(iss)}` });
  const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) && aud.every((value) => typeof value === 'string') ? (aud as string[]) : undefined;
  if (audiences === undefined)
    throw new TokenError('invalid_token', aud === undefined ? 'the token lacks the aud claim' : 'the token has claims of the wrong type', { detail: 'aud' });
  if (rules.audience !== undefined && !rules.audience.some((value) => audiences.includes(value))) {
    throw new TokenError('invalid_token', 'the token is not meant for this API', { detail: `aud ${JSON.stringify(aud)}` });
  }
  const ok =
    typeof sub === 'string' &&
    sub !== '' &&
    typeof clientId === 'string' &&
    clientId !== '' &&
    typeof jti === 'string' &&
    jti !== '' &&
    typeof exp === 'number' &&
    Number.isFinite(exp) &&
    typeof iat === 'number' &&
    Number.isFinite(iat) &&
    (nbf === undefined || (typeof nbf === 'number' && Number.isFinite(nbf))) &&
    (scope === undefined || typeof scope === 'string') &&
    (roles === undefined || (Array.isArray(roles) && roles.every((role) => typeof role === 'string'))) &&
    (email === undefined || typeof email === 'string') &&
    (sid === undefined || typeof sid === 'string');
  if (!ok) throw new TokenError('invalid_token', 'the token has claims of the wrong type');
  const claims = payload as AccessTokenPayload;
  checkTimes(claims, rules.clockTolerance, nowMs);
  return claims;
}

/**
 * `exp`, `nbf` and `iat` against the clock, with `tolerance` seconds either way (the
 * comparisons are jose's). Also run on every hit of a cache of verified tokens.
 */
export function checkTimes(claims: Pick<AccessTokenPayload, 'exp' | 'iat' | 'nbf'>, tolerance: number, nowMs: number): void {
  const now = Math.floor(nowMs / 1000);
  if (claims.exp <= now - tolerance) throw new TokenError('expired_token', 'the token has expired', { detail: `exp ${claims.exp}` });
  if (claims.nbf !== undefined && claims.nbf > now + tolerance)
    throw new TokenError('invalid_token', 'the token is not valid yet', { detail: `nbf ${claims.nbf}` });
  // A token from the future: a skewed or compromised signer; jose leaves this to maxTokenAge.
  if (claims.iat > now + tolerance) throw new TokenError('invalid_token', 'the token was issued in the future', { detail: `iat ${claims.iat}` });
}

/** RFC 9068 §4: `at+jwt` or `application/at+jwt`, compared case-insensitively (RFC 7515 §4.1.9). */
function normalizeTyp(typ: string): string {
  const lower = typ.toLowerCase();
  return lower.startsWith('application/') ? lower.slice('application/'.length) : lower;
}

function decodeJson(segment: string): unknown {
  try {
    return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
