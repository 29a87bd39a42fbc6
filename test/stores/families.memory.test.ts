/**
 * What only the memory adapter can show: it decides the grace window by its own clock,
 * so a clock that goes back must not turn a rotated token into a retry.
 */
import { describe, expect, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { createMemoryFamilyStore } from '../../src/stores/memory/families.js';
import { withTokens } from './families.helpers.js';

const SECRET = 'memory-suite-refresh-token-secret-0123456789ab';
const grant = { subject: 'user-1', clientId: 'app', scope: 'openid', audience: 'https://api.example' };

describe('memory family store', () => {
  it('a presentation stamped before the rotation (the clock went back) is reuse, even inside the grace window', async () => {
    const clock = manualClock(Date.now());
    const families = withTokens(createMemoryFamilyStore({ clock, refreshTokenTtl: 3600, familyMaxTtl: 7200, reuseGrace: 10, revokedMarkerTtl: 960 }), SECRET);
    const { family, refreshToken } = await families.create(grant, {});
    expect((await families.rotate(refreshToken, {})).outcome).toBe('rotated');
    clock.advance(-1);
    expect(await families.rotate(refreshToken, {})).toMatchObject({ outcome: 'reused', familyId: family.id, family: { id: family.id } });
  });
});
