/** Signing keys: the public entry point. */
export { DEFAULT_KEY_ALG, KEY_ALGS, MIN_RSA_BITS, isKeyAlg, type KeyAlg, type PublicJwk } from './algorithms.js';
export { KeyRingError } from './errors.js';
export { LOCK_FILE, MANIFEST_FILE, keyFileName, type KeyMeta, type KeyState } from './key-files.js';
export { KeyRing, loadKeyDir, loadKeyRing, type JwksDocument, type KeyDirState, type PublishedKey, type SigningKey, type VerificationKey } from './key-ring.js';
export { withKeyDirLock, type LockOptions } from './lock.js';
export {
  applyPlan,
  ensureDevKey,
  executeRotation,
  formatDuration,
  planRotation,
  promotableAt,
  removableAt,
  rotateKeys,
  type CreatedKey,
  type KeyGenerator,
  type RotateKeysOptions,
  type RotateKeysResult,
  type RotationOptions,
  type RotationPlan,
  type RotationStep,
  type RotationTimings,
} from './rotation.js';
export { createKeyRingSource, type KeyRingSource, type KeyRingSourceOptions } from './source.js';
