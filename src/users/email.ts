/**
 * Email as stored and looked up: trimmed, Unicode NFKC, lower-cased. Accounts are found by
 * this exact form, so it must never change for addresses already stored: it is not a fixed
 * point for the few characters NFKC turns into a space and a combining mark (U+00A8, say),
 * and those, or a fullwidth `＠` that NFKC makes into a second `@`, are why a new address
 * is checked on its normalised form (`looksLikeEmail`) before it is stored.
 */
export function normaliseEmail(email: string): string {
  return email.trim().normalize('NFKC').toLowerCase();
}

/** One `@`, something on each side, no whitespace: checked on the normalised address. */
export function looksLikeEmail(normalised: string): boolean {
  return /^[^\s@]+@[^\s@]+$/.test(normalised);
}
