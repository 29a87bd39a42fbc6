/**
 * One writer at a time in KEYS_DIR: two cron jobs, or a cron job and a dev server creating
 * its first key, must not both plan from the same state. The lock is a file created with
 * O_EXCL (atomic on local file systems and NFSv3+); its content names the holder so a stale
 * lock left by a crash can be recognised and broken.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { systemClock, type Clock } from '../clock.js';
import { KeyRingError } from './errors.js';
import { LOCK_FILE } from './key-files.js';

export interface LockOptions {
  /** How long to wait for another holder before giving up. */
  readonly timeoutMs?: number;
  /** A lock older than this is stale whatever its holder (a rotation takes well under a second). */
  readonly staleMs?: number;
  /**
   * Lock ages are compared with file mtimes, which the OS stamps in real time, so this is
   * the real clock even when the caller plans rotations with a test clock.
   */
  readonly clock?: Clock;
}

interface LockContent {
  readonly pid: number;
  readonly host: string;
  readonly token: string;
  readonly createdAt: string;
}

/**
 * Runs `fn` while holding KEYS_DIR's lock; waits up to `timeoutMs` for another holder.
 * `fn` gets `held`, which throws unless the lock file still holds our token: call it just
 * before committing (the manifest rename), so that a holder whose lock was taken from it
 * (broken as stale by mistake, say) gives up instead of committing beside the new holder.
 */
export async function withKeyDirLock<T>(dir: string, fn: (held: () => Promise<void>) => Promise<T>, options: LockOptions = {}): Promise<T> {
  const lock = await acquire(dir, options);
  try {
    return await fn(lock.held);
  } finally {
    await lock.release();
  }
}

async function acquire(
  dir: string,
  { timeoutMs = 15_000, staleMs = 60_000, clock = systemClock }: LockOptions,
): Promise<{ held(): Promise<void>; release(): Promise<void> }> {
  const path = join(dir, LOCK_FILE);
  const content: LockContent = { pid: process.pid, host: hostname(), token: randomBytes(16).toString('hex'), createdAt: new Date(clock.now()).toISOString() };
  const deadline = clock.now() + timeoutMs;
  let delay = 20;
  for (;;) {
    try {
      const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      try {
        await handle.writeFile(JSON.stringify(content));
        await handle.sync();
      } finally {
        await handle.close();
      }
      return {
        async held() {
          if ((await holderToken(path)) !== content.token)
            throw new KeyRingError('lost the key directory lock to another rotation; nothing was committed, run again', path);
        },
        release: () => release(path, content.token),
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new KeyRingError(`cannot create the lock file (${(err as NodeJS.ErrnoException).code ?? 'unknown error'})`, path);
      }
    }
    const holder = await inspect(path, staleMs, clock);
    if (holder.stale) {
      await breakStale(path, holder.seen);
      continue;
    }
    if (clock.now() >= deadline) {
      const who = holder.content ? `pid ${holder.content.pid} on ${holder.content.host} since ${holder.content.createdAt}` : 'an unknown process';
      throw new KeyRingError(`another key rotation holds the lock (${who}); if none is running, delete this file`, path);
    }
    await new Promise((resolve) => setTimeout(resolve, delay + Math.floor(Math.random() * delay)));
    delay = Math.min(delay * 2, 250);
  }
}

/** The lock as it was judged stale: its inode and its bytes (which hold a random token). */
export interface SeenLock {
  readonly ino: number;
  readonly text: string;
}

async function inspect(path: string, staleMs: number, clock: Clock): Promise<{ stale: boolean; seen?: SeenLock; content?: LockContent }> {
  let ino: number;
  let ageMs: number;
  let text: string;
  try {
    const info = await stat(path);
    ino = info.ino;
    ageMs = clock.now() - info.mtimeMs;
    text = await readFile(path, 'utf8');
  } catch {
    return { stale: false }; // released meanwhile: just retry
  }
  let content: LockContent | undefined;
  try {
    content = JSON.parse(text) as LockContent;
  } catch {
    // The holder may be between create and write; a half-written lock only goes stale by age.
    return { stale: ageMs > Math.min(staleMs, 5_000), seen: { ino, text } };
  }
  if (ageMs > staleMs) return { stale: true, seen: { ino, text }, content };
  if (content.host === hostname() && typeof content.pid === 'number' && !isAlive(content.pid)) return { stale: true, seen: { ino, text }, content };
  return { stale: false, content };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Moves the stale lock aside before deleting it: the rename is atomic, so of several
 * processes that judged the same lock stale only one takes it. If the file we moved is not
 * the one we judged (a live holder re-created it meanwhile), put it back. "The one we
 * judged" means the same bytes, not only the same inode: a file system may hand a deleted
 * lock's inode number straight to the next lock created, and a live lock mistaken for the
 * stale one would let two rotations run at once.
 */
export async function breakStale(path: string, seen: SeenLock | undefined): Promise<void> {
  const aside = `${path}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await rename(path, aside);
  } catch {
    return;
  }
  try {
    const moved = await Promise.all([stat(aside), readFile(aside, 'utf8')]).catch(() => undefined);
    if (!moved || seen === undefined || moved[0].ino !== seen.ino || moved[1] !== seen.text) await link(aside, path).catch(() => undefined);
  } finally {
    await rm(aside, { force: true });
  }
}

async function holderToken(path: string): Promise<string | undefined> {
  try {
    return (JSON.parse(await readFile(path, 'utf8')) as LockContent).token;
  } catch {
    return undefined; // gone, or a holder between create and write
  }
}

async function release(path: string, token: string): Promise<void> {
  // Already gone (broken as stale), or someone else's now: nothing of ours to release.
  if ((await holderToken(path)) === token) await rm(path, { force: true });
}
