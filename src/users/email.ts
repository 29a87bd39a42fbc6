/** Email as stored and looked up: trimmed, Unicode NFKC, lower-cased. */
export function normaliseEmail(email: string): string {
  return email.trim().normalize('NFKC').toLowerCase();
}
