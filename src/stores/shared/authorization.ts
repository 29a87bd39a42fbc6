/**
 * What the memory and Redis adapters of the authorization-code, pushed-request and
 * browser-session stores share: names, argument checks and the session cookie format. The
 * atomic decisions live in each adapter (TypeScript in one, Lua in the other), and one
 * contract suite (test/stores/authorization.contract.test.ts) holds them to the same behaviour.
 */
import { createHash } from 'node:crypto';
import type { Random } from '../../random.js';
import type { AuthorizationCodeRecord, IssuedFromCode, NewBrowserSession } from '../types.js';

export const CODE_STORE = 'authorization codes';
export const PUSHED_REQUEST_STORE = 'pushed authorization requests';
export const BROWSER_SESSION_STORE = 'browser sessions';

/** Default for `consumedRetentionMs`: how long past its expiry a consumed code still reports reuse. */
export const DEFAULT_CONSUMED_RETENTION_MS = 60_000;

const STORE_ID = /^[A-Za-z0-9_-]{22,128}$/;

/** A code hash or request id: 22 to 128 base64url characters (hex fits). */
export function isStoreId(value: unknown): value is string {
  return typeof value === 'string' && STORE_ID.test(value);
}

export function assertStoreId(value: unknown, what: string): asserts value is string {
  if (!isStoreId(value)) throw new TypeError(`${what} must be 22 to 128 base64url characters`);
}

export function assertTtl(ttlMs: unknown, what = 'ttlMs'): asserts ttlMs is number {
  if (typeof ttlMs !== 'number' || !Number.isInteger(ttlMs) || ttlMs < 1) throw new RangeError(`${what} must be a whole number of ms ≥ 1`);
}

const nonEmpty = (value: unknown): value is string => typeof value === 'string' && value.length > 0;

export function assertCodeRecord(record: AuthorizationCodeRecord): void {
  const { clientId, redirectUri, codeChallenge, userId, scope, audience, authTime } = record;
  if (![clientId, redirectUri, codeChallenge, userId, audience].every(nonEmpty) || typeof scope !== 'string') {
    throw new TypeError('an authorization code needs clientId, redirectUri, codeChallenge, userId, audience and a scope string');
  }
  if (typeof authTime !== 'number' || !Number.isFinite(authTime)) throw new TypeError('authTime must be ms since the epoch');
}

export function assertIssued(issued: IssuedFromCode): void {
  if (!nonEmpty(issued.accessTokenJti) || !Number.isFinite(issued.accessTokenExpiresAt))
    throw new TypeError('issued needs accessTokenJti and accessTokenExpiresAt');
  if (issued.familyId !== undefined && !nonEmpty(issued.familyId)) throw new TypeError('familyId must be a non-empty string when given');
}

/** A copy holding only the contract's fields, in a fixed order (what a store keeps). */
export const codeRecordOf = (record: AuthorizationCodeRecord): AuthorizationCodeRecord =>
  Object.freeze({
    clientId: record.clientId,
    redirectUri: record.redirectUri,
    codeChallenge: record.codeChallenge,
    userId: record.userId,
    scope: record.scope,
    audience: record.audience,
    authTime: record.authTime,
    ...(record.nonce !== undefined && { nonce: record.nonce }),
    ...(record.sid !== undefined && { sid: record.sid }),
    ...(record.amr !== undefined && { amr: [...record.amr] }),
  });

export const issuedOf = (issued: IssuedFromCode): IssuedFromCode =>
  Object.freeze({
    ...(issued.familyId !== undefined ? { familyId: issued.familyId } : {}),
    accessTokenJti: issued.accessTokenJti,
    accessTokenExpiresAt: issued.accessTokenExpiresAt,
  });

export function assertParameters(parameters: Readonly<Record<string, string>>): void {
  if (typeof parameters !== 'object' || parameters === null) throw new TypeError('parameters must be an object of strings');
  for (const value of Object.values(parameters)) if (typeof value !== 'string') throw new TypeError('parameters must be an object of strings');
}

// ---------------------------------------------------------------- browser session cookies

export interface BrowserSessionStoreOptions {
  readonly random: Random;
  /** ms a session lives without use; each `touch` extends it. */
  readonly idleMs: number;
  /** ms a session lives at most, never extended. */
  readonly maxMs: number;
}

export function assertSessionOptions({ idleMs, maxMs }: BrowserSessionStoreOptions): void {
  assertTtl(idleMs, 'idleMs');
  assertTtl(maxMs, 'maxMs');
}

const SESSION_ID_BYTES = 16;
const SESSION_SECRET_BYTES = 32;
const SESSION_COOKIE = /^([A-Za-z0-9_-]{22})\.[A-Za-z0-9_-]{43}$/;

/** A new cookie value `<id>.<secret>` and its public id. */
export function mintSessionCookie(random: Random): { id: string; cookieValue: string } {
  const id = random.token(SESSION_ID_BYTES);
  return { id, cookieValue: `${id}.${random.token(SESSION_SECRET_BYTES)}` };
}

/** The session id a well-formed cookie value names; undefined for anything else. */
export function sessionIdOf(cookieValue: unknown): string | undefined {
  return typeof cookieValue === 'string' ? SESSION_COOKIE.exec(cookieValue)?.[1] : undefined;
}

/** What a store keeps instead of the cookie value: SHA-256, base64url. */
export const hashSessionCookie = (cookieValue: string): string => createHash('sha256').update(cookieValue).digest('base64url');

export function assertNewSession(session: NewBrowserSession): void {
  if (!nonEmpty(session.userId)) throw new TypeError('a browser session needs a userId');
  if (typeof session.authTime !== 'number' || !Number.isFinite(session.authTime)) throw new TypeError('authTime must be ms since the epoch');
  if (!Array.isArray(session.amr) || !session.amr.every(nonEmpty)) throw new TypeError('amr must be an array of method names');
}
