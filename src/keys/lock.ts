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

/** Runs `fn` while holding KEYS_DIR's lock; waits up to `timeoutMs` for another holder. */
export async function withKeyDirLock<T>(dir: string, fn: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const release = await acquire(dir, options);
  try {
    return await fn();
  } finally {
    await release();
  }
}

async function acquire(dir: string, { timeoutMs = 15_000, staleMs = 60_000, clock = systemClock }: LockOptions): Promise<() => Promise<void>> {
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
      return () => release(path, content.token);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new KeyRingError(`cannot create the lock file (${(err as NodeJS.ErrnoException).code ?? 'unknown error'})`, path);
      }
    }
    const holder = await inspect(path, staleMs, clock);
    if (holder.stale) {
      await breakStale(path, holder.ino);
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

async function inspect(path: string, staleMs: number, clock: Clock): Promise<{ stale: boolean; ino?: number; content?: LockContent }> {
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
    return { stale: ageMs > Math.min(staleMs, 5_000), ino };
  }
  if (ageMs > staleMs) return { stale: true, ino, content };
  if (content.host === hostname() && typeof content.pid === 'number' && !isAlive(content.pid)) return { stale: true, ino, content };
  return { stale: false, ino, content };
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
 * the one we judged (a live holder re-created it meanwhile), put it back.
 */
async function breakStale(path: string, ino: number | undefined): Promise<void> {
  const aside = `${path}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await rename(path, aside);
  } catch {
    return;
  }
  try {
    if ((await stat(aside)).ino !== ino) await link(aside, path).catch(() => undefined);
  } finally {
    await rm(aside, { force: true });
  }
}

async function release(path: string, token: string): Promise<void> {
  try {
    const content = JSON.parse(await readFile(path, 'utf8')) as LockContent;
    if (content.token === token) await rm(path, { force: true });
  } catch {
    // Already gone (broken as stale): nothing to release.
  }
}
