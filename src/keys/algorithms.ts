/**
 * The signature algorithms a key may carry, what key type each needs, and how to sign with
 * it through node:crypto. RFC 7518 §3 (RS256, PS256, ES256) and RFC 8037 §3.1 (EdDSA/Ed25519).
 */
import { constants, generateKeyPair, type JsonWebKey, type KeyObject, type SignKeyObjectInput } from 'node:crypto';
import { promisify } from 'node:util';
import { calculateJwkThumbprint, type JWK } from 'jose';

export const KEY_ALGS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;
export type KeyAlg = (typeof KEY_ALGS)[number];

export const DEFAULT_KEY_ALG: KeyAlg = 'RS256';

/** RFC 7518 §3.3 and §3.5 ask for at least 2048 bits. */
export const MIN_RSA_BITS = 2048;

export function isKeyAlg(value: unknown): value is KeyAlg {
  return typeof value === 'string' && (KEY_ALGS as readonly string[]).includes(value);
}

const RSA_ALGS: readonly KeyAlg[] = Object.freeze(['RS256', 'PS256']);

/**
 * The algs one key signs with. An RSA key signs both RS256 and PS256: access tokens use the
 * alg of its manifest entry, ID tokens the one their client registered (`tokens/id-token.ts`).
 * RSASSA-PKCS1-v1_5 and RSASSA-PSS over one RSA key is what a server offering TLS 1.2 and 1.3
 * does with one rsaEncryption certificate (RFC 8446 §4.2.3); verifiers still pin the alg
 * (the metadata for access tokens, the client's registration for ID tokens).
 */
export function algsOfKey(alg: KeyAlg): readonly KeyAlg[] {
  return alg === 'RS256' || alg === 'PS256' ? RSA_ALGS : [alg];
}

/**
 * The public members of a signing key as published in the JWKS (RFC 7517 §4, RFC 7518 §6),
 * each with its one `alg`: an RSA key that also signs ID tokens in the other RSA alg is
 * published a second time for it, under its own kid (`KeyRing`, `twinKid`).
 */
export interface PublicJwk {
  readonly kty: 'RSA' | 'EC' | 'OKP';
  readonly use: 'sig';
  readonly alg: KeyAlg;
  readonly kid: string;
  readonly n?: string;
  readonly e?: string;
  readonly crv?: string;
  readonly x?: string;
  readonly y?: string;
}

const generate = promisify(generateKeyPair);

/** A fresh private key for `alg`, as a private JWK (RSA keys are MIN_RSA_BITS long). */
export async function generatePrivateJwk(alg: KeyAlg): Promise<JsonWebKey> {
  let privateKey: KeyObject;
  switch (alg) {
    case 'RS256':
    case 'PS256':
      // A plain `rsa` key (not `rsa-pss`): RFC 7518 §3.5 uses ordinary RSA keys for PS256, and only those export as JWK.
      ({ privateKey } = await generate('rsa', { modulusLength: MIN_RSA_BITS, publicExponent: 0x10001 }));
      break;
    case 'ES256':
      ({ privateKey } = await generate('ec', { namedCurve: 'P-256' }));
      break;
    case 'EdDSA':
      ({ privateKey } = await generate('ed25519'));
      break;
  }
  return privateKey.export({ format: 'jwk' });
}

/** Why `key` cannot be used with `alg`, or undefined when it can. */
export function keyProblem(key: KeyObject, alg: KeyAlg): string | undefined {
  const type = key.asymmetricKeyType;
  switch (alg) {
    case 'RS256':
    case 'PS256': {
      if (type !== 'rsa') return `${alg} needs an RSA key, found ${type ?? key.type}`;
      const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
      return bits < MIN_RSA_BITS ? `RSA key is ${bits} bits; ${alg} needs at least ${MIN_RSA_BITS}` : undefined;
    }
    case 'ES256':
      if (type !== 'ec') return `ES256 needs an EC P-256 key, found ${type ?? key.type}`;
      return key.asymmetricKeyDetails?.namedCurve === 'prime256v1'
        ? undefined
        : `ES256 needs curve P-256, found ${key.asymmetricKeyDetails?.namedCurve ?? 'unknown'}`;
    case 'EdDSA':
      return type === 'ed25519' ? undefined : `EdDSA needs an Ed25519 key, found ${type ?? key.type}`;
  }
}

/** Only the public members, so a private member can never slip into the JWKS. */
export function publicJwkOf(publicKey: KeyObject, kid: string, alg: KeyAlg): PublicJwk {
  const jwk = publicKey.export({ format: 'jwk' });
  switch (jwk.kty) {
    case 'RSA':
      return { kty: 'RSA', use: 'sig', alg, kid, n: jwk.n!, e: jwk.e! };
    case 'EC':
      return { kty: 'EC', use: 'sig', alg, kid, crv: jwk.crv!, x: jwk.x!, y: jwk.y! };
    case 'OKP':
      return { kty: 'OKP', use: 'sig', alg, kid, crv: jwk.crv!, x: jwk.x! };
    default:
      throw new TypeError(`unsupported key type ${String(jwk.kty)}`);
  }
}

/** RFC 7638 SHA-256 thumbprint of the public key: the `kid` of every key we make. */
export async function thumbprintOf(publicKey: KeyObject): Promise<string> {
  return calculateJwkThumbprint(publicKey.export({ format: 'jwk' }) as JWK, 'sha256');
}

/** node:crypto `sign` arguments producing the JWS signature encoding of RFC 7518 §3. */
export function signParams(alg: KeyAlg, key: KeyObject): { digest: string | null; key: SignKeyObjectInput } {
  switch (alg) {
    case 'RS256':
      return { digest: 'sha256', key: { key } };
    case 'PS256':
      // RFC 7518 §3.5: MGF1 with SHA-256 and a salt as long as the hash.
      return { digest: 'sha256', key: { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } };
    case 'ES256':
      // RFC 7518 §3.4: the signature is R || S, not DER.
      return { digest: 'sha256', key: { key, dsaEncoding: 'ieee-p1363' } };
    case 'EdDSA':
      return { digest: null, key: { key } };
  }
}
