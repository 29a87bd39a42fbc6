/**
 * The authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3, RFC 9126): checked the same
 * way whether it arrives at /oauth/authorize or is pushed to /oauth/par first. The client
 * and its redirect URI are checked first: until both are trusted, nothing may be sent to
 * the redirect URI (§4.1.2.1), so their problems are `UntrustedRequestError`s (an HTML page
 * at /oauth/authorize). Every later problem is an OAuthError the caller sends back to the
 * client (a redirect, or JSON at /oauth/par).
 */
import { z } from 'zod';
import { InvalidRequestError, OAuthError, RequestNotSupportedError, UnauthorizedClientError, UnsupportedResponseTypeError } from '../errors.js';
import { parseInput, text } from '../input.js';
import type { ClientRecord } from '../stores/types.js';
import { requestedAudience, resolveAudience, targetParameters } from './grants/target.js';
import { matchRedirectUri } from './redirect-uri.js';
import { grantScope } from './scope.js';

export type Prompt = 'none' | 'login' | 'consent';

/** A checked authorization request: what a code will be bound to. */
export interface AuthorizationRequest {
  readonly clientId: string;
  readonly redirectUri: string;
  readonly state: string | undefined;
  readonly scope: string;
  readonly audience: string;
  /** RFC 7636 S256 challenge: BASE64URL(SHA-256(code_verifier)). */
  readonly codeChallenge: string;
  readonly prompt: readonly Prompt[];
  readonly loginHint: string | undefined;
  readonly nonce: string | undefined;
  /** Seconds; a sign-in older than this must be repeated. */
  readonly maxAge: number | undefined;
  /** OIDC Core §3.1.2.1: an ID token we issued, naming the user the client expects. */
  readonly idTokenHint: string | undefined;
}

/** The client or its redirect URI cannot be trusted: answered on our own page, never by a redirect. */
export class UntrustedRequestError extends Error {
  constructor(readonly description: string) {
    super(description);
    this.name = 'UntrustedRequestError';
  }
}

/** An error to report to the client at its (checked) redirect URI. */
export class RedirectableError extends Error {
  constructor(
    readonly error: OAuthError,
    readonly redirectUri: string,
    readonly state: string | undefined,
  ) {
    super(error.description);
    this.name = 'RedirectableError';
  }
}

/** RFC 7636 §4.2: S256 gives 43 base64url characters. */
const S256_CHALLENGE = /^[A-Za-z0-9_-]{43}$/;

const parameters = z.object({
  response_type: text(100),
  scope: text(1000).optional(),
  code_challenge: text(128),
  code_challenge_method: text(20).optional(),
  prompt: text(100).optional(),
  login_hint: text(254).optional(),
  nonce: text(500).optional(),
  max_age: z
    .string()
    .regex(/^\d{1,9}$/, 'must be a whole number of seconds')
    .optional(),
  id_token_hint: text(16 * 1024).optional(),
  // OIDC Core §3.1.2.1: a preference; the pages are in English (ui_locales_supported).
  ui_locales: text(200).optional(),
  ...targetParameters,
});

const clientParameters = z.object({ client_id: text(128), redirect_uri: text(2000), state: text(2000).optional() });

export interface AuthorizationChecks {
  readonly clients: { findById(clientId: string): Promise<ClientRecord | null> };
  /** Default `aud` (AUDIENCE). */
  readonly audience: string;
}

export function createAuthorizationChecks(deps: AuthorizationChecks) {
  /** The client and the redirect URI, or UntrustedRequestError. */
  async function trustedClient(raw: Record<string, unknown>): Promise<{ client: ClientRecord; redirectUri: string; state: string | undefined }> {
    const parsed = clientParameters.safeParse(raw);
    if (!parsed.success) throw new UntrustedRequestError('the request does not name an application and a return address (client_id, redirect_uri)');
    const { client_id: clientId, redirect_uri: presented, state } = parsed.data;
    const client = await deps.clients.findById(clientId);
    if (!client) throw new UntrustedRequestError('the application that sent you here is not registered');
    const redirectUri = matchRedirectUri(client.redirectUris, presented);
    if (redirectUri === undefined) throw new UntrustedRequestError('the application asked to send you to an address it has not registered');
    // The redirect goes to the URI as presented: for a loopback one, with the app's port.
    return { client, redirectUri: presented, state };
  }

  /** Everything after the client and redirect URI: OAuthErrors, to be sent back to the client. */
  function checkRequest(client: ClientRecord, redirectUri: string, state: string | undefined, raw: Record<string, unknown>): AuthorizationRequest {
    const params = parseInput(parameters, raw);
    if (params.response_type !== 'code') throw new UnsupportedResponseTypeError('only response_type=code is supported');
    if (!client.grantTypes.includes('authorization_code')) throw new UnauthorizedClientError('this client may not use the authorization code flow');
    // RFC 9700 §2.1.1: PKCE for every client, and only S256 (plain would expose the verifier).
    if (params.code_challenge_method !== 'S256') throw new InvalidRequestError('code_challenge_method must be S256');
    if (!S256_CHALLENGE.test(params.code_challenge)) throw new InvalidRequestError('code_challenge must be 43 base64url characters (RFC 7636 S256)');
    // OIDC Core §5.5: not supported, and said so rather than silently ignored (claims_parameter_supported: false).
    if (raw.claims !== undefined) throw new InvalidRequestError('the claims parameter is not supported; ask for claims with the profile and email scopes');
    // OIDC Core §6: request objects are not supported (request_parameter_supported: false).
    if (raw.request !== undefined) throw new RequestNotSupportedError('request objects are not supported; push the request to the PAR endpoint instead');
    const prompt = parsePrompt(params.prompt);
    const scope = grantScope(params.scope, client.scopes);
    return {
      clientId: client.clientId,
      redirectUri,
      state,
      scope,
      audience: resolveAudience(client.audiences, requestedAudience(params), deps.audience),
      codeChallenge: params.code_challenge,
      prompt,
      loginHint: params.login_hint,
      nonce: params.nonce,
      maxAge: params.max_age === undefined ? undefined : Number(params.max_age),
      idTokenHint: params.id_token_hint,
    };
  }

  return {
    trustedClient,
    checkRequest,
    /** Both steps, with every later problem wrapped for a redirect. */
    async check(raw: Record<string, unknown>): Promise<{ client: ClientRecord; request: AuthorizationRequest }> {
      const { client, redirectUri, state } = await trustedClient(raw);
      try {
        return { client, request: checkRequest(client, redirectUri, state, raw) };
      } catch (err) {
        if (err instanceof OAuthError) throw new RedirectableError(err, redirectUri, state);
        throw err;
      }
    },
  };
}

function parsePrompt(value: string | undefined): Prompt[] {
  if (value === undefined) return [];
  const prompts = value.split(' ');
  for (const prompt of prompts) {
    if (prompt !== 'none' && prompt !== 'login' && prompt !== 'consent' && prompt !== 'select_account')
      throw new InvalidRequestError(`prompt "${prompt.slice(0, 20)}" is not supported`);
  }
  // OpenID Connect Core §3.1.2.1: none with any other value is an error.
  if (prompts.includes('none') && prompts.length > 1) throw new InvalidRequestError('prompt=none cannot be combined with other values');
  // One account per browser session: choosing an account is signing in again.
  return [...new Set(prompts.map((prompt) => (prompt === 'select_account' ? 'login' : prompt)))] as Prompt[];
}

export type AuthorizationChecker = ReturnType<typeof createAuthorizationChecks>;
