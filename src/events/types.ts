/**
 * Security events: one typed record per thing an operator must be able to see (a login, a
 * replayed refresh token, a key rotation...). Every event has an id, a time, a type, who
 * acted (`actor`), what it was about (`subject`), the request it came from and data of its
 * own. None carries a secret: no password, token, code, client secret or key material, only
 * ids (user ids, family ids, client ids, kids) and where a request came from.
 *
 * The JSON here is the public format: it is logged, appended to the Redis Stream and posted
 * to webhooks as it is (see README, "Security events").
 */

/** Who did it. `operator` is an admin script (keys:rotate, client:create); `anonymous` a request before sign-in. */
export interface Actor {
  readonly type: 'user' | 'client' | 'anonymous' | 'operator';
  /** User id, client id, or the script's name for an operator. */
  readonly id?: string;
  readonly ip?: string;
  readonly user_agent?: string;
}

/** What it was about. A user named only by the email typed into a login form has no `id`. */
export type Subject =
  | { readonly type: 'user'; readonly id?: string; readonly email?: string }
  | { readonly type: 'family'; readonly id: string }
  | { readonly type: 'client'; readonly id: string }
  | { readonly type: 'key'; readonly id: string };

/** Why a refresh family (a session) ended. */
export type FamilyRevocationReason =
  | 'reuse'
  | 'logout'
  | 'logout_all'
  | 'password_change'
  | 'session_ended'
  | 'consent_revoked'
  | 'token_revoked'
  | 'code_reuse'
  | 'disabled_user'
  | 'audience_withdrawn'
  /** A login went over REFRESH_FAMILIES_PER_USER: the user's oldest session made room. */
  | 'session_cap'
  /** The admin API ended it (one session, or all of a user's). */
  | 'admin_ended'
  | 'user_deleted'
  | 'client_deleted';

/** Where one use of a refresh family came from. */
export interface UseOrigin {
  readonly ip: string | null;
  readonly user_agent: string | null;
}

/** The Redis Stream (key) security events are appended to, by the server and the admin scripts alike. */
export const SECURITY_EVENTS_STREAM = 'events:security';

/** Event type → its `data`. */
export interface EventData {
  'login.succeeded': { readonly user_id: string };
  'login.failed': { readonly reason: 'unknown_email' | 'wrong_password' | 'disabled_account' };
  /** Refused before the password was checked: `limits` names every budget that was spent. */
  'login.throttled': { readonly limits: readonly LoginLimit[]; readonly retry_after_seconds: number };
  /** LOGIN_ACCOUNT_RATE_LIMIT spent: every login of this account is refused, from any address, until the window ends. */
  'account.locked': { readonly limit: 'account' };
  /**
   * A rotated refresh token was presented again: the family is revoked. `rotation` is where
   * the family was last used (the rotation that made this token stale, or its creation),
   * `reuse` where the replay came from.
   */
  'refresh.reuse_detected': {
    readonly family_id: string;
    readonly client_id: string;
    readonly user_id: string;
    readonly rotation: UseOrigin & { readonly at: string };
    readonly reuse: UseOrigin;
  };
  /** One family (subject `family`), or every family of a user (subject `user`, `count` of them). */
  'family.revoked': { readonly reason: FamilyRevocationReason; readonly count: number; readonly user_id?: string; readonly client_id?: string };
  'password.changed': { readonly user_id: string; readonly sessions_ended: number };
  'user.registered': { readonly user_id: string };
  /** The admin API disabled the user; `sessions_ended` of their sessions ended with it. */
  'user.disabled': { readonly user_id: string; readonly sessions_ended?: number };
  'client.created': {
    readonly name: string;
    readonly client_type: 'public' | 'confidential';
    readonly first_party: boolean;
    readonly grant_types: readonly string[];
    readonly scopes: readonly string[];
  };
  'key.created': { readonly alg: string; readonly state: string };
  'key.promoted': Record<string, never>;
  'key.retired': Record<string, never>;
  'key.removed': { readonly reason: 'expired' | 'compromised' | 'development' };
  /** `--emergency`: the compromised key left the JWKS; `successor` signs from now on (if it was the active key). */
  'key.emergency_rotated': { readonly successor: string | null };
  'authorization.granted': { readonly client_id: string; readonly scope: string };
  'authorization.denied': { readonly client_id: string; readonly scope: string };
  /**
   * A call of the admin API (`/admin/*`) by an admin client (the actor): `action` names the
   * operation (`client.update`, `user.disable`...), `target` the id it was about (null for a
   * listing), `outcome` whether it was carried out, `status` the HTTP status answered.
   */
  'admin.action': { readonly action: string; readonly target: string | null; readonly outcome: 'ok' | 'refused'; readonly status: number };
}

export type LoginLimit = 'account_ip' | 'ip' | 'account';

export type EventType = keyof EventData;

export const EVENT_TYPES: readonly EventType[] = Object.freeze([
  'login.succeeded',
  'login.failed',
  'login.throttled',
  'account.locked',
  'refresh.reuse_detected',
  'family.revoked',
  'password.changed',
  'user.registered',
  'user.disabled',
  'client.created',
  'key.created',
  'key.promoted',
  'key.retired',
  'key.removed',
  'key.emergency_rotated',
  'authorization.granted',
  'authorization.denied',
  'admin.action',
] satisfies EventType[]);

/** An event as the code that causes it describes it. */
export type NewEvent = {
  [T in EventType]: { readonly type: T; readonly actor: Actor; readonly subject: Subject; readonly data: EventData[T] };
}[EventType];

/** An event as published: with its id, time (ISO 8601) and request id (null outside a request). */
export type SecurityEvent = NewEvent & { readonly id: string; readonly time: string; readonly request_id: string | null };

/** The key deliveries are ordered by: events with the same key reach a webhook in the order they were appended. */
export function orderingKey(subject: Subject): string {
  return subject.type === 'user' ? `user:${subject.email ?? subject.id ?? ''}` : `${subject.type}:${subject.id}`;
}

/** Whatever emits events (the server's emitter, a script's): fire and forget. */
export interface EventSink {
  emit(...events: NewEvent[]): void;
}

/** A user agent as events carry it: a client sends what it likes, an event keeps this many characters. */
export const clipUserAgent = (userAgent: string | undefined): string | undefined => userAgent?.slice(0, 512);

/** Where an event came from, taken from the request in progress when there is one. */
export interface RequestOrigin {
  readonly requestId: string;
  readonly ip: string;
  readonly userAgent: string | undefined;
}
