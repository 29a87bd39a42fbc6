/**
 * The family suites drive a store through the token layer that production puts in front
 * of it (`createRefreshTokens`): tokens in, tokens out, so each assertion pins the store's
 * rule and what a client sees. `store` is the bare store, for ids and hashes.
 */
import { cryptoRandom } from '../../src/random.js';
import type { FamilyStore } from '../../src/stores/types.js';
import { createRefreshTokens, type RefreshTokens } from '../../src/tokens/refresh-token.js';

export type TokenFamilies = Omit<FamilyStore, 'create' | 'rotate'> & RefreshTokens & { readonly store: FamilyStore };

export function withTokens(store: FamilyStore, secret: string): TokenFamilies {
  const tokens = createRefreshTokens({ secret, random: cryptoRandom, families: store });
  return {
    store,
    ping: () => store.ping(),
    current: (familyId, tokenHash) => store.current(familyId, tokenHash),
    get: (familyId) => store.get(familyId),
    listBySubject: (subject) => store.listBySubject(subject),
    listByClient: (clientId) => store.listByClient(clientId),
    countLive: (sampleKeys) => store.countLive(sampleKeys),
    revoke: (familyId, options) => store.revoke(familyId, options),
    revokeAll: (subject, except) => store.revokeAll(subject, except),
    isRevoked: (familyId) => store.isRevoked(familyId),
    ...tokens,
  };
}
