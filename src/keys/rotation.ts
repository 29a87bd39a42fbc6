/**
 * Key rotation without a verification gap. A key's life:
 *
 *   next     published in the JWKS, not signing. Created by a rotation step.
 *   active   the one key that signs. A `next` key is promoted only after it has been
 *            published for JWKS_MAX_AGE + KEY_PROMOTION_MARGIN, so every cache in front of
 *            the JWKS has seen it before the first token naming its kid exists.
 *   retired  published, not signing, until every token it signed has expired:
 *            retiredAt + ACCESS_TOKEN_TTL + CLOCK_SKEW. Then it is removed.
 *
 * `planRotation` is pure (state + time in, steps out); `executeRotation` applies a plan to
 * the directory; `rotateKeys` does both under the directory lock.
 */
import { createPrivateKey, createPublicKey, type JsonWebKey } from 'node:crypto';
import { chmod, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../clock.js';
import { DEFAULT_KEY_ALG, generatePrivateJwk, thumbprintOf, type KeyAlg } from './algorithms.js';
import { KeyRingError } from './errors.js';
import { ensureDir, fsyncDir, keyFileName, MANIFEST_FILE, serializeManifest, writeFileAtomic, type KeyMeta, type KeyState } from './key-files.js';
import { loadKeyDir, type KeyDirState } from './key-ring.js';
import { clearDevMade, markDevMade, readDevMade } from './dev-made.js';
import { withKeyDirLock, type LockOptions } from './lock.js';

/** Seconds, as in Config. */
export interface RotationTimings {
  readonly jwksMaxAge: number;
  readonly keyPromotionMargin: number;
  readonly accessTokenTtl: number;
  readonly clockSkew: number;
}

export interface RotationOptions extends RotationTimings {
  /** Alg of keys this step creates; default: the active key's, else RS256. */
  readonly alg?: KeyAlg;
  /** Emergency: this kid is compromised and leaves the ring now. */
  readonly emergencyKid?: string;
}

export type RotationStep =
  | { readonly action: 'create'; readonly state: 'active' | 'next'; readonly alg: KeyAlg }
  | { readonly action: 'promote'; readonly kid: string }
  | { readonly action: 'retire'; readonly kid: string }
  | { readonly action: 'remove'; readonly kid: string; readonly reason: 'expired' | 'compromised' | 'development' };

export interface RotationPlan {
  readonly steps: readonly RotationStep[];
  /** What the operator should know: why nothing happened, how long to wait, what a step implies. */
  readonly notes: readonly string[];
  /** When the waiting `next` key may be promoted (ms), if one is waiting. */
  readonly promotableAt: number | undefined;
}

/** When a `next` key may start signing (ms). */
export function promotableAt(key: KeyMeta, timings: RotationTimings): number {
  return key.createdAt + (timings.jwksMaxAge + timings.keyPromotionMargin) * 1000;
}

/** When a retired key may leave the JWKS (ms): every token it signed has expired, even to a skewed clock. */
export function removableAt(key: KeyMeta, timings: RotationTimings): number | undefined {
  if (key.retiredAt === undefined) return undefined;
  return key.retiredAt + (timings.accessTokenTtl + timings.clockSkew) * 1000;
}

/**
 * One safe step from `keys` at `now`. Routine: remove expired retired keys; then
 *  - no key at all: create an ACTIVE key directly. Nothing can have cached a JWKS holding a
 *    key yet (a production server does not start without one), so there is no gap to wait out;
 *  - no active key but a `next`: promote it at once (nothing signs otherwise);
 *  - a `next` published long enough: promote it and retire the active key;
 *  - otherwise say how long to wait.
 * Finally make sure a `next` key exists, so the following rotation (or an emergency) has a
 * key already in every cache. Running it again immediately changes nothing.
 */
export function planRotation(keys: readonly KeyMeta[], now: number, options: RotationOptions): RotationPlan {
  const actives = keys.filter((key) => key.state === 'active');
  if (actives.length > 1) throw new KeyRingError(`${actives.length} keys claim state "active"; fix the manifest by hand first`);
  const ring: Ring = {
    keys,
    active: actives[0],
    nexts: keys.filter((key) => key.state === 'next').sort((a, b) => a.createdAt - b.createdAt),
    // A cron job without --alg keeps the algorithm an operator chose earlier.
    alg: options.alg ?? actives[0]?.alg ?? DEFAULT_KEY_ALG,
  };
  const step =
    options.emergencyKid !== undefined
      ? planEmergency(ring, options.emergencyKid, now, options)
      : ring.active === undefined
        ? planNoActiveKey(ring)
        : planRoutine(ring, ring.active, now, options);
  const steps = [...removeExpired(keys, now, options), ...step.steps];
  if (!step.nextRemains) steps.push({ action: 'create', state: 'next', alg: ring.alg });
  return { steps, notes: step.notes, promotableAt: step.waitUntil };
}

/** The key ring as the cases below read it; `nexts` oldest first. */
interface Ring {
  readonly keys: readonly KeyMeta[];
  readonly active: KeyMeta | undefined;
  readonly nexts: readonly KeyMeta[];
  readonly alg: KeyAlg;
}

/** One case's steps, and whether a `next` key is left afterwards (else the plan creates one). */
interface CaseStep {
  readonly steps: RotationStep[];
  readonly notes: string[];
  readonly nextRemains: boolean;
  readonly waitUntil?: number;
}

/** Retired keys every token of which has expired; never the emergency kid, which goes as compromised. */
function removeExpired(keys: readonly KeyMeta[], now: number, options: RotationOptions): RotationStep[] {
  return keys
    .filter((key) => {
      const at = key.state === 'retired' ? removableAt(key, options) : undefined;
      return at !== undefined && now >= at && key.kid !== options.emergencyKid;
    })
    .map((key) => ({ action: 'remove', kid: key.kid, reason: 'expired' }));
}

/** `--emergency --kid K`: K leaves at once; if it was signing, the oldest other `next` key (or a fresh one) signs now. */
function planEmergency(ring: Ring, kid: string, now: number, options: RotationOptions): CaseStep {
  const target = ring.keys.find((key) => key.kid === kid);
  if (target === undefined) throw new KeyRingError(`no key has kid ${kid}; see \`npm run keys:list\``);
  const steps: RotationStep[] = [{ action: 'remove', kid: target.kid, reason: 'compromised' }];
  const notes = [
    `${target.kid} (${target.state}) leaves the JWKS now and never signs again. Tokens it signed are rejected by this ` +
      `server at once and by resource servers once their JWKS caches refresh (within JWKS_MAX_AGE = ${formatDuration(options.jwksMaxAge)}).`,
  ];
  const candidates = ring.nexts.filter((key) => key.kid !== target.kid);
  if (target.state !== 'active') return { steps, notes, nextRemains: candidates.length > 0 };
  const successor = candidates[0];
  if (successor === undefined) {
    steps.push({ action: 'create', state: 'active', alg: ring.alg });
    notes.push(
      'No next key was published, so a fresh key signs at once: resource servers that do not refetch the JWKS on an ' +
        `unknown kid reject its tokens until their cache expires (within ${formatDuration(options.jwksMaxAge)}).`,
    );
    return { steps, notes, nextRemains: false };
  }
  steps.push({ action: 'promote', kid: successor.kid });
  const cached = promotableAt(successor, options);
  notes.push(
    now >= cached
      ? `${successor.kid} was already published since ${iso(successor.createdAt)} and signs from now on.`
      : `${successor.kid} signs from now on, but was published only at ${iso(successor.createdAt)}: resource servers that ` +
          `do not refetch the JWKS on an unknown kid may reject its tokens until ${iso(cached)}.`,
  );
  return { steps, notes, nextRemains: candidates.length > 1 };
}

/** No active key (an empty ring included): something must sign now, so no wait is possible. */
function planNoActiveKey(ring: Ring): CaseStep {
  const successor = ring.nexts[0];
  if (successor !== undefined) {
    return {
      steps: [{ action: 'promote', kid: successor.kid }],
      notes: ['No key was active, so the oldest next key is promoted at once: nothing could sign otherwise.'],
      nextRemains: ring.nexts.length > 1,
    };
  }
  return {
    steps: [{ action: 'create', state: 'active', alg: ring.alg }],
    notes: [
      ring.keys.length === 0
        ? 'The key ring was empty: the first key is active at once (nothing can have cached a JWKS without it).'
        : 'No key was active or next: a fresh key is active at once (nothing could sign otherwise).',
    ],
    nextRemains: false,
  };
}

/** An active key: promote the oldest `next` once it has been published long enough, else say how long to wait. */
function planRoutine(ring: Ring, active: KeyMeta, now: number, options: RotationOptions): CaseStep {
  const candidate = ring.nexts[0];
  if (candidate === undefined) return { steps: [], notes: [], nextRemains: false };
  const at = promotableAt(candidate, options);
  if (now >= at) {
    return {
      steps: [
        { action: 'promote', kid: candidate.kid },
        { action: 'retire', kid: active.kid },
      ],
      notes: [],
      nextRemains: ring.nexts.length > 1,
    };
  }
  const note =
    `Next key ${candidate.kid} has been published for ${formatDuration((now - candidate.createdAt) / 1000)}; it may sign only ` +
    `after JWKS_MAX_AGE + KEY_PROMOTION_MARGIN (${formatDuration(options.jwksMaxAge + options.keyPromotionMargin)}), ` +
    `at ${iso(at)}. Run keys:rotate again in ${formatDuration((at - now) / 1000)}.`;
  return { steps: [], notes: [note], nextRemains: true, waitUntil: at };
}

/** The manifest after `steps`; `createdKids[i]` is the kid of the i-th `create` step. */
export function applyPlan(keys: readonly KeyMeta[], steps: readonly RotationStep[], now: number, createdKids: readonly string[]): KeyMeta[] {
  let result = [...keys];
  let created = 0;
  for (const step of steps) {
    switch (step.action) {
      case 'remove':
        result = result.filter((key) => key.kid !== step.kid);
        break;
      case 'promote':
        result = result.map((key) => (key.kid === step.kid ? { ...key, state: 'active', activatedAt: now } : key));
        break;
      case 'retire':
        result = result.map((key) => (key.kid === step.kid ? { ...key, state: 'retired', retiredAt: now } : key));
        break;
      case 'create': {
        const kid = createdKids[created++];
        if (kid === undefined) throw new Error('applyPlan: a created kid is missing');
        result.push({ kid, alg: step.alg, state: step.state, createdAt: now, activatedAt: step.state === 'active' ? now : undefined, retiredAt: undefined });
        break;
      }
    }
  }
  if (result.filter((key) => key.state === 'active').length !== 1) throw new Error('applyPlan: the plan does not leave exactly one active key');
  return result;
}

/** Makes a private JWK for a new key; tests inject pre-generated keys to save time. */
export type KeyGenerator = (alg: KeyAlg) => Promise<JsonWebKey>;

export interface ExecuteOptions {
  readonly clock: Clock;
  readonly generateKey?: KeyGenerator;
  /** Runs just before the manifest is replaced; throwing stops the rotation there (the lock check). */
  readonly beforeCommit?: () => Promise<void>;
  /** Test seam: runs right after the manifest was renamed into place. */
  readonly onManifestWritten?: () => void;
}

export interface CreatedKey {
  readonly kid: string;
  readonly alg: KeyAlg;
  readonly state: KeyState;
}

/** A manifest write that took longer than this (a slow fsync, a paused VM) is stamped and written again. */
export const RESTAMP_AFTER_MS = 1000;

/**
 * Applies `plan` to the directory `state` was loaded from. Must run under the directory
 * lock. Order matters to readers: new key files first, then the manifest (one atomic
 * rename switches every state at once), then deletion of the files it no longer names.
 *
 * The dates the manifest records (createdAt, activatedAt, retiredAt) are taken at commit,
 * after the keys were generated and synced, not when the plan was made: a stall in
 * between would otherwise be subtracted from a next key's publication window and backdate
 * a retirement. Later dates only delay the next promotion or removal, which is safe.
 */
export async function executeRotation(
  state: KeyDirState,
  plan: RotationPlan,
  { clock, generateKey = generatePrivateJwk, beforeCommit, onManifestWritten }: ExecuteOptions,
): Promise<{ keys: KeyMeta[]; created: CreatedKey[]; committedAt: number | undefined }> {
  const { dir } = state;
  // Nothing to do: leave the manifest untouched, so running servers see no change to reload.
  if (plan.steps.length === 0 && state.orphans.length === 0 && state.tempFiles.length === 0) {
    return { keys: [...state.keys], created: [], committedAt: undefined };
  }
  const created: CreatedKey[] = [];
  for (const step of plan.steps) {
    if (step.action !== 'create') continue;
    const jwk = await generateKey(step.alg);
    const kid = await thumbprintOf(createPublicKey(createPrivateKey({ key: jwk, format: 'jwk' })));
    await writeFileAtomic(join(dir, keyFileName(kid)), `${JSON.stringify({ ...jwk, kid, alg: step.alg, use: 'sig' })}\n`, dir);
    created.push({ kid, alg: step.alg, state: step.state });
  }
  const kids = created.map((key) => key.kid);
  // The key files just written are orphans if this throws; the next run removes them.
  await beforeCommit?.();
  let committedAt = clock.now();
  let keys = applyPlan(state.keys, plan.steps, committedAt, kids);
  await writeFileAtomic(join(dir, MANIFEST_FILE), serializeManifest(keys), dir);
  onManifestWritten?.();
  if (clock.now() - committedAt > RESTAMP_AFTER_MS) {
    // The write itself stalled after the dates were taken: the same manifest, dated now.
    await beforeCommit?.();
    committedAt = clock.now();
    keys = applyPlan(state.keys, plan.steps, committedAt, kids);
    await writeFileAtomic(join(dir, MANIFEST_FILE), serializeManifest(keys), dir);
  }

  const kept = new Set(keys.map((key) => key.kid));
  const garbage = [...state.keys.filter((key) => !kept.has(key.kid)).map((key) => key.file), ...state.orphans, ...state.tempFiles];
  for (const file of garbage) await rm(file, { force: true });
  if (garbage.length > 0) await fsyncDir(dir);
  return { keys, created, committedAt };
}

export interface RotateKeysOptions extends RotationOptions, Pick<ExecuteOptions, 'onManifestWritten'> {
  readonly dir: string;
  readonly clock: Clock;
  readonly production: boolean;
  /** Plan and report, change nothing. */
  readonly dryRun?: boolean;
  readonly generateKey?: KeyGenerator;
  readonly lock?: LockOptions;
  /** The user this runs as; default process.getuid(). */
  readonly uid?: number;
}

export interface RotateKeysResult {
  /** The manifest as found (under the lock). */
  readonly before: readonly KeyMeta[];
  readonly plan: RotationPlan;
  /** When the plan was made (ms). */
  readonly plannedAt: number;
  /** The date written into the manifest (ms); undefined when nothing was written. */
  readonly committedAt: number | undefined;
  /** The manifest afterwards; undefined on a dry run. */
  readonly after: readonly KeyMeta[] | undefined;
  readonly created: readonly CreatedKey[];
  /** Loose file modes and similar, outside production. */
  readonly warnings: readonly string[];
}

/** `npm run keys:rotate`: load, plan and execute one step under the directory lock. */
export async function rotateKeys(options: RotateKeysOptions): Promise<RotateKeysResult> {
  const { dir, clock, production } = options;
  if (options.dryRun) {
    const state = await loadKeyDir(dir, { production });
    const plannedAt = clock.now();
    const plan = planRotation(state.keys, plannedAt, options);
    return { before: state.keys, plan, plannedAt, committedAt: undefined, after: undefined, created: [], warnings: state.warnings };
  }
  await ensureDir(dir);
  const owner = await checkOwner(dir, options.uid ?? process.getuid?.());
  return withKeyDirLock(
    dir,
    async (held) => {
      const tightened = await tightenDirMode(dir);
      const state = await loadKeyDir(dir, { production });
      const plannedAt = clock.now();
      const plan = production ? await planReplacingDevKeys(state, plannedAt, options) : planRotation(state.keys, plannedAt, options);
      const { keys, created, committedAt } = await executeRotation(state, plan, { ...options, beforeCommit: held });
      const discarded = plan.steps.flatMap((step) => (step.action === 'remove' && step.reason === 'development' ? [keyFileName(step.kid)] : []));
      if (discarded.length > 0) await clearDevMade(dir, discarded);
      await checkReadableBy(dir, owner, [MANIFEST_FILE, ...keys.map((key) => keyFileName(key.kid))]);
      const warnings = tightened ? [`${dir} was readable by other users: its mode is now 0700`, ...state.warnings] : state.warnings;
      return { before: state.keys, plan, plannedAt, committedAt, after: keys, created, warnings };
    },
    options.lock,
  );
}

/**
 * Dev mode's first start: when KEYS_DIR holds no key, create one active RS256 key (and the
 * directory, mode 0700). Resolves the new kid, or undefined when keys already exist.
 */
export async function ensureDevKey(dir: string, clock: Clock, options: { generateKey?: KeyGenerator; lock?: LockOptions } = {}): Promise<string | undefined> {
  await ensureDir(dir);
  return withKeyDirLock(
    dir,
    async (held) => {
      const state = await loadKeyDir(dir, { production: false });
      if (state.keys.length > 0) return undefined;
      await tightenDirMode(dir);
      const plan: RotationPlan = { steps: [{ action: 'create', state: 'active', alg: DEFAULT_KEY_ALG }], notes: [], promotableAt: undefined };
      const { created } = await executeRotation(state, plan, { clock, generateKey: options.generateKey, beforeCommit: held });
      const kid = created[0]?.kid;
      if (kid !== undefined) await markDevMade(dir, keyFileName(kid));
      return kid;
    },
    options.lock,
  );
}

/**
 * In production, keys a development server made (dev-made.json) go first, all at once: a
 * production server refuses to start while they exist, so none can have published them and
 * nothing waits on a publication window. The rest is planned as if they had never been
 * there, so with a dev key active a fresh key (or a next key production made) signs at once.
 */
async function planReplacingDevKeys(state: KeyDirState, now: number, options: RotationOptions): Promise<RotationPlan> {
  const devMade = new Set(await readDevMade(state.dir));
  const dev = state.keys.filter((key) => devMade.has(keyFileName(key.kid)));
  if (dev.length === 0) return planRotation(state.keys, now, options);
  const rest = planRotation(
    state.keys.filter((key) => !dev.includes(key)),
    now,
    options,
  );
  return {
    ...rest,
    steps: [...dev.map((key): RotationStep => ({ action: 'remove', kid: key.kid, reason: 'development' })), ...rest.steps],
    notes: [`${dev.map((key) => key.kid).join(', ')}: made by a development server, removed; production never published them.`, ...rest.notes],
  };
}

/**
 * Files this script writes are its user's, mode 0600: run by anyone but the owner of
 * KEYS_DIR (root included), they would be unreadable to a server running as that owner,
 * which then keeps signing with the key an emergency rotation meant to remove. Refused
 * before anything is written. Resolves the owner's uid (undefined where uids do not exist).
 */
export async function checkOwner(dir: string, uid: number | undefined): Promise<number | undefined> {
  if (uid === undefined) return undefined;
  const owner = (await stat(dir)).uid;
  if (owner !== uid) {
    throw new KeyRingError(
      `belongs to uid ${owner} but this runs as uid ${uid}: the files it would write could not be read by a server running as ` +
        `the directory's owner; run it as that user (for example \`sudo -u '#${owner}' npm run keys:rotate\`)`,
      dir,
    );
  }
  return owner;
}

/** After a rotation: every file the server will read is its owner's and readable by it, else say which and how to fix it. */
export async function checkReadableBy(dir: string, owner: number | undefined, names: readonly string[]): Promise<void> {
  for (const name of names) {
    const file = join(dir, name);
    const info = await stat(file);
    if ((owner !== undefined && info.uid !== owner) || (info.mode & 0o400) === 0) {
      throw new KeyRingError(
        `is not readable by the owner of ${dir}${owner === undefined ? '' : ` (uid ${owner})`}: the server could not load it; run \`chown ${owner ?? '<owner>'} ${file} && chmod 600 ${file}\``,
        file,
      );
    }
  }
}

/**
 * A checked-out ./keys is 0755 (git keeps no directory modes), which production refuses:
 * the keys about to be written in it are ours to protect. Resolves whether it changed.
 */
async function tightenDirMode(dir: string): Promise<boolean> {
  if (((await stat(dir)).mode & 0o077) === 0) return false;
  await chmod(dir, 0o700);
  return true;
}

/** `90` → `1m 30s`; whole seconds, largest two units. */
export function formatDuration(seconds: number): string {
  let rest = Math.max(0, Math.ceil(seconds));
  const parts: string[] = [];
  for (const [unit, size] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    if (rest >= size || (unit === 's' && parts.length === 0)) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.slice(0, 2).join(' ');
}

const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');
