/**
 * Email as stored and looked up: Unicode NFKC, lower-cased (and NFKC again, since lower
 * casing can leave a string NFKC would change), then trimmed. In that order the result is
 * a fixed point, so normalising a stored address finds the same account: trimming first
 * missed what NFKC turns into spaces, and NFKC can make `@` out of `＠`, which is why the
 * shape of an address is checked on this result, not on what was sent.
 */
export function normaliseEmail(email: string): string {
  return email.normalize('NFKC').toLowerCase().normalize('NFKC').trim();
}

/** One `@`, something on each side, no whitespace: checked on the normalised address. */
export function looksLikeEmail(normalised: string): boolean {
  return /^[^\s@]+@[^\s@]+$/.test(normalised);
}
