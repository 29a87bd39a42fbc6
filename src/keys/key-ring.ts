/**
 * Loading KEYS_DIR into memory: `loadKeyDir` validates every file (used by the server and
 * the admin scripts alike), `KeyRing` is the immutable, ready-to-serve result. A ring is
 * built once per change of the directory; everything a request needs (imported keys, the
 * JWKS body and its ETag) is computed here, never per request.
 */
import { createHash, createPrivateKey, createPublicKey, type JsonWebKey, type KeyObject, type webcrypto } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { importJWK, type JWK } from 'jose';
import { algsOfKey, keyProblem, publicJwkOf, thumbprintOf, type KeyAlg, type PublicJwk } from './algorithms.js';
import { TemporarilyUnavailableError } from '../errors.js';
import { KeyRingError } from './errors.js';
import { isKeyFileName, isTempFileName, keyFileName, listDir, MANIFEST_FILE, modeProblem, readKeyFile, readManifest, type KeyMeta } from './key-files.js';

/** A key as the manifest describes it, with its public half. */
export interface PublishedKey extends KeyMeta {
  readonly file: string;
  readonly publicJwk: PublicJwk;
}

/** Everything in KEYS_DIR, validated. Holds private keys: never log it whole. */
export interface KeyDirState {
  readonly dir: string;
  /** False when KEYS_DIR does not exist yet. */
  readonly exists: boolean;
  /** False when there is no manifest: a directory never rotated into (or only left-overs). */
  readonly hasManifest: boolean;
  /** In manifest order. */
  readonly keys: readonly PublishedKey[];
  /** Private halves by kid, imported once per load. */
  readonly privateKeys: ReadonlyMap<string, KeyObject>;
  /** Key files no manifest entry names: left by an interrupted rotation, removed by the next one. */
  readonly orphans: readonly string[];
  /** Temporary files of an interrupted write, removed by the next rotation. */
  readonly tempFiles: readonly string[];
  /** Loose file modes (outside production; in production they are errors). */
  readonly warnings: readonly string[];
}

export interface LoadOptions {
  /** Loose file modes are errors instead of warnings. */
  readonly production: boolean;
}

/**
 * Reads and validates KEYS_DIR. Throws KeyRingError naming the file for: malformed JSON, a
 * bad manifest, two active keys, a missing or unusable key file, a key whose type does not
 * fit its alg, an RSA key under 2048 bits, a kid that is not the key's thumbprint, and (in
 * production) a directory or file other users can access.
 */
export async function loadKeyDir(dir: string, options: LoadOptions): Promise<KeyDirState> {
  // A rotation may replace the manifest and delete a key file while we read: when the
  // manifest changed under us, read again rather than report a state that never existed.
  for (let attempt = 1; ; attempt++) {
    const before = await manifestStamp(dir);
    try {
      const state = await loadOnce(dir, options);
      if (attempt >= 3 || (await manifestStamp(dir)) === before) return state;
    } catch (err) {
      if (attempt >= 3 || (await manifestStamp(dir)) === before) throw err;
    }
  }
}

async function manifestStamp(dir: string): Promise<string> {
  try {
    const info = await stat(join(dir, MANIFEST_FILE));
    return `${info.ino}:${info.size}:${info.mtimeMs}`;
  } catch {
    return 'none';
  }
}

async function loadOnce(dir: string, { production }: LoadOptions): Promise<KeyDirState> {
  const warnings: string[] = [];
  const checkMode = async (path: string, kind: 'file' | 'dir') => {
    let problem: string | undefined;
    try {
      problem = modeProblem(await stat(path), kind);
    } catch {
      return; // reported by the read that follows
    }
    if (problem === undefined) return;
    if (production) throw new KeyRingError(`${problem}; run \`chmod ${kind === 'dir' ? 700 : 600} ${path}\``, path);
    warnings.push(`${path}: ${problem} (an error in production); run \`chmod ${kind === 'dir' ? 700 : 600} ${path}\``);
  };

  const names = await listDir(dir);
  if (names === undefined) {
    return { dir, exists: false, hasManifest: false, keys: [], privateKeys: new Map(), orphans: [], tempFiles: [], warnings };
  }
  await checkMode(dir, 'dir');
  const metas = await readManifest(dir);
  if (metas !== undefined) await checkMode(join(dir, MANIFEST_FILE), 'file');

  const keys: PublishedKey[] = [];
  const privateKeys = new Map<string, KeyObject>();
  for (const meta of metas ?? []) {
    const file = join(dir, keyFileName(meta.kid));
    await checkMode(file, 'file');
    const { privateKey, publicJwk } = await importKeyFile(file, meta);
    keys.push({ ...meta, file, publicJwk });
    privateKeys.set(meta.kid, privateKey);
  }

  const listed = new Set(keys.map((key) => keyFileName(key.kid)));
  return {
    dir,
    exists: true,
    hasManifest: metas !== undefined,
    keys,
    privateKeys,
    orphans: names.filter((name) => isKeyFileName(name) && !listed.has(name)).map((name) => join(dir, name)),
    tempFiles: names.filter(isTempFileName).map((name) => join(dir, name)),
    warnings,
  };
}

async function importKeyFile(file: string, meta: KeyMeta): Promise<{ privateKey: KeyObject; publicJwk: PublicJwk }> {
  const jwk = await readKeyFile(file);
  if (typeof jwk.kty !== 'string') throw new KeyRingError('not a JSON Web Key (no "kty")', file);
  if (typeof jwk.d !== 'string') throw new KeyRingError('holds no private key (no "d")', file);
  if (jwk.alg !== undefined && jwk.alg !== meta.alg) {
    throw new KeyRingError(`the key says alg ${String(jwk.alg)} but the manifest says ${meta.alg}`, file);
  }
  if (jwk.kid !== undefined && jwk.kid !== meta.kid) throw new KeyRingError('the key\'s "kid" differs from its file name', file);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: jwk as JsonWebKey, format: 'jwk' });
  } catch (err) {
    // node:crypto messages name the problem, never the key material.
    throw new KeyRingError(`not a usable ${jwk.kty} private key (${(err as Error).message})`, file);
  }
  const problem = keyProblem(privateKey, meta.alg);
  if (problem !== undefined) throw new KeyRingError(problem, file);
  const publicKey = createPublicKey(privateKey);
  if ((await thumbprintOf(publicKey)) !== meta.kid) {
    throw new KeyRingError(`kid ${meta.kid} is not the RFC 7638 thumbprint of the key in this file`, file);
  }
  return { privateKey, publicJwk: publicJwkOf(publicKey, meta.kid, meta.alg) };
}

/** The one key that signs. Only `src/tokens/access-token.ts` asks for it. */
export interface SigningKey {
  readonly kid: string;
  readonly alg: KeyAlg;
  readonly privateKey: KeyObject;
}

/** A published key as jose wants it for verification. */
export interface VerificationKey {
  readonly kid: string;
  readonly alg: KeyAlg;
  readonly state: KeyMeta['state'];
  /** Bound to `alg`: what access tokens are checked with. */
  readonly key: webcrypto.CryptoKey;
  /** The same public key for any of `algsOfKey(alg)` (ID tokens given back as hints). */
  readonly publicKey: KeyObject;
}

/** The JWKS response, serialised once per ring. */
export interface JwksDocument {
  readonly body: Buffer;
  /** Strong validator (RFC 9110 §8.8.3): a hash of the exact body bytes. */
  readonly etag: string;
}

const STATE_ORDER = { active: 0, next: 1, retired: 2 } as const;

/** The kid under which key `kid` is also published for `alg` (`~` never occurs in a thumbprint). */
export const twinKid = (kid: string, alg: KeyAlg): string => `${kid}~${alg}`;

/** The other algs of `twinAlgs` that `key` also signs ID tokens in: RSA keys only, never its own alg. */
const twinAlgsOf = (key: { readonly alg: KeyAlg }, twinAlgs: readonly KeyAlg[]): KeyAlg[] =>
  twinAlgs.filter((alg) => alg !== key.alg && algsOfKey(key.alg).includes(alg));

export interface KeyRingOptions {
  /**
   * ID_TOKEN_SIGNING_ALGS: further RSA algs each RSA key signs ID tokens in. Each is
   * published as its own JWKS entry (`twinKid`, with that `alg`), so every entry keeps one
   * alg and relying parties that select keys by alg find it.
   */
  readonly twinAlgs?: readonly KeyAlg[] | undefined;
}

/** An immutable, validated snapshot of the key directory, ready to sign and serve. */
export class KeyRing {
  /** Published keys: the active one first, then `next`, then `retired`, newest first within each. */
  readonly keys: readonly PublishedKey[];
  readonly active: PublishedKey;
  /** Distinct algs of the published keys, the active key's first. */
  readonly algorithms: readonly KeyAlg[];
  /** What ID tokens can be signed in now: the active key's alg first, then its twins'. */
  readonly idTokenAlgs: readonly KeyAlg[];
  readonly #twinAlgs: readonly KeyAlg[];
  readonly jwks: JwksDocument;
  readonly warnings: readonly string[];
  /** Undefined once the active key was withdrawn: the ring then signs nothing. */
  readonly #signing: SigningKey | undefined;
  readonly #verification: ReadonlyMap<string, VerificationKey>;

  private constructor(
    keys: PublishedKey[],
    active: PublishedKey,
    verification: ReadonlyMap<string, VerificationKey>,
    warnings: readonly string[],
    signing: SigningKey | undefined,
    twinAlgs: readonly KeyAlg[],
  ) {
    this.keys = Object.freeze(keys);
    this.active = active;
    this.algorithms = Object.freeze([...new Set(keys.map((key) => key.alg))]);
    this.#twinAlgs = twinAlgs;
    this.idTokenAlgs = Object.freeze([active.alg, ...twinAlgsOf(active, twinAlgs)]);
    const published = keys.flatMap((key) => [
      key.publicJwk,
      ...twinAlgsOf(key, twinAlgs).map((alg) => ({ ...key.publicJwk, alg, kid: twinKid(key.kid, alg) })),
    ]);
    const body = Buffer.from(JSON.stringify({ keys: published }));
    this.jwks = Object.freeze({ body, etag: `"${createHash('sha256').update(body).digest('base64url')}"` });
    this.warnings = warnings;
    this.#signing = signing;
    this.#verification = verification;
    Object.freeze(this);
  }

  /**
   * Builds the ring from a loaded directory. Throws KeyRingError (naming the manifest) when
   * there is no active key: a ring that cannot sign is never served.
   */
  static async fromState(state: KeyDirState, options: KeyRingOptions = {}): Promise<KeyRing> {
    const manifest = join(state.dir, MANIFEST_FILE);
    if (state.keys.length === 0) {
      throw new KeyRingError('no signing keys; run `npm run keys:rotate` to create the first one', state.hasManifest ? manifest : state.dir);
    }
    const active = state.keys.find((key) => key.state === 'active');
    if (active === undefined) throw new KeyRingError('no key is active; run `npm run keys:rotate` to promote or create one', manifest);
    const keys = [...state.keys].sort((a, b) => STATE_ORDER[a.state] - STATE_ORDER[b.state] || b.createdAt - a.createdAt);
    const verification = new Map<string, VerificationKey>();
    for (const key of keys) {
      const imported = (await importJWK(key.publicJwk as JWK, key.alg)) as webcrypto.CryptoKey;
      const publicKey = createPublicKey({ key: { ...key.publicJwk }, format: 'jwk' });
      verification.set(key.kid, Object.freeze({ kid: key.kid, alg: key.alg, state: key.state, key: imported, publicKey }));
    }
    const signing = Object.freeze({ kid: active.kid, alg: active.alg, privateKey: state.privateKeys.get(active.kid)! });
    return new KeyRing(keys, active, verification, state.warnings, signing, options.twinAlgs ?? []);
  }

  /**
   * The same ring without `kids` (keys whose files vanished while the directory could not
   * be read, as after an emergency rotation this process cannot follow): they are neither
   * published nor accepted, and if the active key is among them the ring signs nothing.
   */
  withdraw(kids: ReadonlySet<string>): KeyRing {
    const keys = this.keys.filter((key) => !kids.has(key.kid));
    const verification = new Map([...this.#verification].filter(([kid]) => !kids.has(kid)));
    return new KeyRing(keys, this.active, verification, this.warnings, kids.has(this.active.kid) ? undefined : this.#signing, this.#twinAlgs);
  }

  /** False once the active key was withdrawn. */
  get canSign(): boolean {
    return this.#signing !== undefined;
  }

  /**
   * The active key's private half. Nothing but the access-token signer may call this.
   * Throws TemporarilyUnavailableError (503) when the active key was withdrawn.
   */
  signingKey(): SigningKey {
    if (this.#signing === undefined) {
      throw new TemporarilyUnavailableError(undefined, {
        detail: `signing key ${this.active.kid} was removed from KEYS_DIR and the directory cannot be loaded: not signing`,
      });
    }
    return this.#signing;
  }

  /**
   * The active key as it signs an ID token in `alg` (one of `idTokenAlgs`): under its own
   * kid for its own alg, under its twin's for another. Throws as `signingKey`.
   */
  idTokenSigningKey(alg: KeyAlg): SigningKey {
    const { kid, privateKey } = this.signingKey();
    return alg === this.active.alg ? this.signingKey() : { kid: twinKid(kid, alg), alg, privateKey };
  }

  /** The key a token's `kid` names, if it is published (next, active or retired). */
  verificationKey(kid: string): VerificationKey | undefined {
    return this.#verification.get(kid);
  }
}

/** `loadKeyDir` then `KeyRing.fromState`. */
export async function loadKeyRing(dir: string, options: LoadOptions): Promise<KeyRing> {
  return KeyRing.fromState(await loadKeyDir(dir, options));
}
