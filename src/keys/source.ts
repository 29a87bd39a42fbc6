/**
 * The running server's view of KEYS_DIR. Changes made by `keys:rotate` (on this host or
 * through a shared mount) are picked up without a restart: fs.watch for speed, plus a
 * periodic fingerprint of the directory because watch events are unreliable on network
 * file systems and some container mounts. A new state replaces the ring in one assignment;
 * an invalid one is logged and the previous ring keeps serving.
 */
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import { KeyRingError } from './errors.js';
import { isKeyFileName, listDir, MANIFEST_FILE } from './key-files.js';
import { KeyRing, loadKeyDir } from './key-ring.js';
import type { KeyAlg } from './algorithms.js';
import { ensureDevKey, type KeyGenerator } from './rotation.js';

export interface KeyRingSource {
  /** The ring in force. Throws KeyRingError before `start()` has succeeded. */
  current(): KeyRing;
  /** True once a ring with an active key is loaded, and while that key may still sign (for /readyz). */
  ready(): boolean;
  /**
   * Why the directory has failed to load on the last `FAILING_AFTER` reloads in a row
   * (for /readyz: this instance is not following the rotations any more), else undefined.
   */
  reloadFailure(): string | undefined;
  /**
   * Loads the ring (in dev, first creating a key when the directory holds none) and starts
   * watching. Rejects with KeyRingError when there is no usable ring: in production when
   * KEYS_DIR holds no key, with a message saying to run `npm run keys:rotate`.
   */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Re-reads now if the directory changed since the last read; true when a new ring took over. */
  reload(): Promise<boolean>;
}

export interface KeyRingSourceOptions {
  readonly dir: string;
  readonly production: boolean;
  readonly clock: Clock;
  readonly logger: Pick<Logger, 'info' | 'warn' | 'error' | 'debug'>;
  /** RSA algs each RSA key is also published for (its twin entries: `KeyRing.fromState`). */
  readonly twinAlgs?: readonly KeyAlg[];
  /** Fallback re-read period; default 2000 ms. */
  readonly pollIntervalMs?: number;
  /** Watch events come in bursts (a rotation writes several files); default 100 ms. */
  readonly debounceMs?: number;
  /** Create an active key when the directory holds none. Default: outside production. Never in production. */
  readonly generateIfEmpty?: boolean;
  readonly generateKey?: KeyGenerator;
}

export function createKeyRingSource(options: KeyRingSourceOptions): KeyRingSource {
  const { dir, production, clock, logger } = options;
  const pollIntervalMs = options.pollIntervalMs ?? 2000;
  const debounceMs = options.debounceMs ?? 100;
  const generateIfEmpty = !production && (options.generateIfEmpty ?? true);

  let ring: KeyRing | undefined;
  /** The directory as it was when the ring was last loaded. */
  let lastFingerprint: string | undefined;
  /** The last failed load (directory and reason), so that it is logged once. */
  let lastFailure: string | undefined;
  /** Failed reloads since the last one that succeeded. */
  let failures = 0;
  let failureReason: string | undefined;
  let watcher: FSWatcher | undefined;
  let poller: NodeJS.Timeout | undefined;
  let debounce: NodeJS.Timeout | undefined;
  let running: Promise<boolean> | undefined;
  let again = false;
  let stopped = false;

  async function load(): Promise<KeyRing> {
    const state = await loadKeyDir(dir, { production });
    const next = await KeyRing.fromState(state, { twinAlgs: options.twinAlgs });
    for (const warning of next.warnings) logger.warn({ dir }, `signing keys: ${warning}`);
    return next;
  }

  async function reloadOnce(): Promise<boolean> {
    const fingerprint = await fingerprintOf(dir);
    if (fingerprint === lastFingerprint) return false;
    try {
      const next = await load();
      const previous = ring;
      ring = next;
      if (previous?.jwks.etag !== next.jwks.etag || previous.active.kid !== next.active.kid) {
        logger.info({ dir, activeKid: next.active.kid, keys: next.keys.map(({ kid, state }) => ({ kid, state })) }, 'signing keys reloaded');
      }
      lastFingerprint = fingerprint;
      failures = 0;
      failureReason = undefined;
      return true;
    } catch (err) {
      // Only a load that succeeded sets lastFingerprint, so every poll tries again: a
      // failure that was transient (EMFILE, say) must not leave this instance signing with
      // a key an emergency rotation removed until the directory happens to change again.
      // The same failure of the same directory is logged once, not on every poll.
      const reason = err instanceof Error ? err.message : String(err);
      failures += 1;
      failureReason = reason;
      await withdrawVanishedKeys();
      if (`${fingerprint}\n${reason}` !== lastFailure) {
        lastFailure = `${fingerprint}\n${reason}`;
        logger.error(
          { dir, file: err instanceof KeyRingError ? err.file : undefined, reason },
          'signing keys: the key directory is invalid; keeping the previous key ring',
        );
      }
      return false;
    }
  }

  /**
   * The directory cannot be loaded, so this instance cannot learn what replaced a key whose
   * file is gone (an emergency rotation removes the compromised key's file right after the
   * new manifest). Such keys stop being published and accepted; if one was signing, this
   * instance stops signing (503) rather than go on with a compromised key.
   */
  async function withdrawVanishedKeys(): Promise<void> {
    if (ring === undefined) return;
    const gone = new Set<string>();
    for (const key of ring.keys) {
      if (
        await stat(key.file).then(
          () => false,
          (err: NodeJS.ErrnoException) => err.code === 'ENOENT',
        )
      )
        gone.add(key.kid);
    }
    if (gone.size === 0) return;
    const signing = ring.canSign;
    ring = ring.withdraw(gone);
    logger.error(
      { dir, withdrawn: [...gone], signing: ring.canSign },
      signing && !ring.canSign
        ? 'signing keys: the active key file is gone and the key directory cannot be loaded; not signing until it can'
        : 'signing keys: key files are gone and the key directory cannot be loaded; no longer publishing them',
    );
  }

  /** One reload at a time; a request during one runs once more afterwards. */
  function reload(): Promise<boolean> {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      let changed = false;
      do {
        again = false;
        changed = (await reloadOnce()) || changed;
      } while (again && !stopped);
      return changed;
    })().finally(() => {
      running = undefined;
    });
    return running;
  }

  function schedule(): void {
    if (stopped) return;
    clearTimeout(debounce);
    debounce = setTimeout(() => void reload(), debounceMs);
    debounce.unref();
  }

  return {
    current() {
      if (ring === undefined) throw new KeyRingError('signing keys are not loaded yet', dir);
      return ring;
    },
    ready: () => ring !== undefined && ring.canSign,
    reloadFailure: () => (failures >= FAILING_AFTER ? failureReason : undefined),
    reload,

    async start() {
      stopped = false;
      if (generateIfEmpty) {
        const kid = await ensureDevKey(dir, clock, { generateKey: options.generateKey });
        if (kid !== undefined) logger.warn({ dir, kid }, 'signing keys: the key directory was empty, generated a development key (dev mode only)');
      }
      lastFingerprint = await fingerprintOf(dir);
      ring = await load();
      logger.info({ dir, activeKid: ring.active.kid, keys: ring.keys.map(({ kid, state }) => ({ kid, state })) }, 'signing keys loaded');
      try {
        watcher = watch(dir, { persistent: false }, schedule);
        watcher.on('error', (err) => {
          logger.debug({ dir, err }, 'signing keys: directory watch failed; relying on polling');
          watcher?.close();
          watcher = undefined;
        });
      } catch (err) {
        logger.debug({ dir, err }, 'signing keys: cannot watch the directory; relying on polling');
      }
      poller = setInterval(() => void reload(), pollIntervalMs);
      poller.unref();
    },

    async stop() {
      stopped = true;
      clearTimeout(debounce);
      clearInterval(poller);
      watcher?.close();
      watcher = undefined;
      await running;
    },
  };
}

/** Failed reloads in a row (about one poll interval apart) before readiness reports them: one may be a transient EMFILE. */
export const FAILING_AFTER = 2;

/** Cheap identity of the directory's relevant contents: names, inodes, sizes, mtimes, modes. */
async function fingerprintOf(dir: string): Promise<string> {
  const names = await listDir(dir).catch(() => undefined);
  if (names === undefined) return 'missing';
  const parts: string[] = [];
  try {
    const info = await stat(dir);
    parts.push(`.:${info.mode}`);
  } catch {
    return 'missing';
  }
  for (const name of names.filter((name) => name === MANIFEST_FILE || isKeyFileName(name)).sort()) {
    try {
      const info = await stat(join(dir, name));
      parts.push(`${name}:${info.ino}:${info.size}:${info.mtimeMs}:${info.mode}`);
    } catch {
      parts.push(`${name}:gone`);
    }
  }
  return parts.join('|');
}
