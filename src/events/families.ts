/** Events about refresh families (sessions), built from what the call sites have at hand. */
import type { Family, UseContext } from '../stores/types.js';
import { clipUserAgent, type Actor, type FamilyRevocationReason, type NewEvent } from './types.js';

type FamilyRef = Pick<Family, 'id' | 'subject' | 'clientId'>;

/** One family ended. The actor defaults to the family's user. */
export function familyRevoked(reason: FamilyRevocationReason, family: FamilyRef, actor: Actor = { type: 'user', id: family.subject }): NewEvent {
  return {
    type: 'family.revoked',
    actor,
    subject: { type: 'family', id: family.id },
    data: { reason, count: 1, user_id: family.subject, client_id: family.clientId },
  };
}

/**
 * Families a new one ended to stay within the per-user cap (FamilyStore.create's
 * `endedByCap`): one event each, the user's own doing (their newest login).
 */
export function cappedFamilies(userId: string, familyIds: readonly string[]): NewEvent[] {
  return familyIds.map((id) => ({
    type: 'family.revoked',
    actor: { type: 'user', id: userId },
    subject: { type: 'family', id },
    data: { reason: 'session_cap', count: 1, user_id: userId },
  }));
}

/** A user's families ended together (`count` of them; none = no event). */
export function familiesRevoked(
  reason: FamilyRevocationReason,
  user: { id: string; email?: string },
  count: number,
  actor: Actor = { type: 'user', id: user.id },
): NewEvent[] {
  if (count <= 0) return [];
  return [
    {
      type: 'family.revoked',
      actor,
      subject: { type: 'user', id: user.id, ...(user.email !== undefined && { email: user.email }) },
      data: { reason, count, user_id: user.id },
    },
  ];
}

/**
 * A rotated token presented again: `family` as read just before the rotation that found
 * the reuse (its last use is the rotation that made the token stale), `reuse` where the
 * replay came from. The family is revoked by the same step: both events.
 */
export function reuseDetected(family: Family, reuse: UseContext): NewEvent[] {
  const presenter: Actor = { type: 'client', id: family.clientId };
  return [
    {
      type: 'refresh.reuse_detected',
      actor: presenter,
      subject: { type: 'family', id: family.id },
      data: {
        family_id: family.id,
        client_id: family.clientId,
        user_id: family.subject,
        rotation: { ip: family.ip ?? null, user_agent: family.userAgent ?? null, at: new Date(family.lastUsedAt).toISOString() },
        reuse: { ip: reuse.ip ?? null, user_agent: clipUserAgent(reuse.userAgent) ?? null },
      },
    },
    familyRevoked('reuse', family, presenter),
  ];
}
