/**
 * In-process browser sign-in sessions (the embedded dev default). Keeps the hash of each
 * cookie value, never the value. Expiry follows the injected clock; expired sessions are
 * dropped when touched and swept at most once a minute.
 */
import { timingSafeEqual } from 'node:crypto';
import type { Clock } from '../../clock.js';
import { createExpiringMap } from './expiring-map.js';
import {
  assertNewSession,
  assertSessionOptions,
  hashSessionCookie,
  mintSessionCookie,
  sessionIdOf,
  type BrowserSessionStoreOptions,
} from '../shared/authorization.js';
import type { BrowserSession, BrowserSessionStore } from '../types.js';

interface Entry {
  session: BrowserSession;
  readonly hash: string;
  idleExpiresAt: number;
}

export function createMemoryBrowserSessionStore(options: BrowserSessionStoreOptions & { clock: Clock }): BrowserSessionStore {
  assertSessionOptions(options);
  const { clock, random, idleMs, maxMs } = options;
  const sessions = createExpiringMap<Entry>(clock, (entry) => entry.idleExpiresAt);

  function open(cookieValue: string): Entry | undefined {
    const id = sessionIdOf(cookieValue);
    const entry = id === undefined ? undefined : sessions.get(id);
    if (!entry) return undefined;
    const presented = Buffer.from(hashSessionCookie(cookieValue));
    const stored = Buffer.from(entry.hash);
    return presented.length === stored.length && timingSafeEqual(presented, stored) ? entry : undefined;
  }

  const ofUser = (userId: string): Entry[] => sessions.values().filter((entry) => entry.session.userId === userId);

  return {
    async ping() {},

    async create(data) {
      assertNewSession(data);
      const now = clock.now();
      const { id, cookieValue } = mintSessionCookie(random);
      const expiresAt = now + maxMs;
      const session: BrowserSession = Object.freeze({
        id,
        userId: data.userId,
        authTime: data.authTime,
        amr: Object.freeze([...data.amr]),
        createdAt: now,
        lastSeenAt: now,
        expiresAt,
        clientIds: Object.freeze([]),
      });
      sessions.set(id, { session, hash: hashSessionCookie(cookieValue), idleExpiresAt: Math.min(now + idleMs, expiresAt) });
      return { session, cookieValue };
    },

    async get(cookieValue) {
      return open(cookieValue)?.session ?? null;
    },

    async touch(cookieValue) {
      const entry = open(cookieValue);
      const now = sessions.now();
      if (!entry) return null;
      entry.session = Object.freeze({ ...entry.session, lastSeenAt: now });
      entry.idleExpiresAt = Math.min(now + idleMs, entry.session.expiresAt);
      return entry.session;
    },

    async delete(sessionId) {
      return typeof sessionId === 'string' && sessions.delete(sessionId);
    },

    async addClient(sessionId, clientId) {
      const entry = typeof sessionId === 'string' ? sessions.get(sessionId) : undefined;
      if (!entry) return false;
      if (!entry.session.clientIds.includes(clientId))
        entry.session = Object.freeze({ ...entry.session, clientIds: Object.freeze([...entry.session.clientIds, clientId]) });
      return true;
    },

    async removeClient(sessionId, clientId) {
      const entry = typeof sessionId === 'string' ? sessions.get(sessionId) : undefined;
      if (entry) entry.session = Object.freeze({ ...entry.session, clientIds: Object.freeze(entry.session.clientIds.filter((id) => id !== clientId)) });
    },

    async listByUser(userId) {
      return ofUser(userId)
        .map((entry) => entry.session)
        .sort((a, b) => b.lastSeenAt - a.lastSeenAt);
    },

    async deleteAllOfUser(userId, exceptSessionId) {
      const doomed = ofUser(userId).filter((entry) => entry.session.id !== exceptSessionId);
      for (const entry of doomed) sessions.delete(entry.session.id);
      return doomed.length;
    },
  };
}
