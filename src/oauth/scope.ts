import { InvalidScopeError } from '../errors.js';

/** RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), space-delimited. */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/**
 * Parses a scope (RFC 6749 §3.3: `scope-token *( SP scope-token )`) into its distinct
 * tokens, in order. Anything else is invalid_scope, including a value of spaces only, which
 * would otherwise read as "nothing asked for" and so as the client's whole default scope.
 */
export function parseScope(text: string | undefined): string[] {
  if (text === undefined) return [];
  const tokens = text.split(' ');
  if (tokens.some((token) => token === '')) {
    throw new InvalidScopeError('scope must be scope tokens separated by single spaces (RFC 6749 section 3.3)');
  }
  for (const token of tokens) {
    if (!SCOPE_TOKEN.test(token)) throw new InvalidScopeError('scope contains a character RFC 6749 section 3.3 does not allow');
  }
  return [...new Set(tokens)];
}

/** The tokens of a scope this server wrote itself (a family's): `''` is no scope, never an error. */
export function storedScopeTokens(scope: string): string[] {
  return scope === '' ? [] : scope.split(' ');
}

/**
 * The scope to grant: the requested one when every token is allowed, else invalid_scope
 * naming the first token that is not; the whole allowed set when nothing was requested
 * (RFC 6749 §3.3 lets the server pick a default).
 */
export function grantScope(requested: string | undefined, allowed: readonly string[]): string {
  const tokens = parseScope(requested);
  if (tokens.length === 0) return allowed.join(' ');
  const forbidden = tokens.find((token) => !allowed.includes(token));
  if (forbidden !== undefined) throw new InvalidScopeError(`scope "${forbidden}" is not allowed for this client`);
  return tokens.join(' ');
}
