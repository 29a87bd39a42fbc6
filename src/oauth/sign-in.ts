/**
 * The browser side of the authorization code flow: from an authorization request to a
 * redirect back to the client, through the hosted login and consent pages when they are
 * needed. The HTTP layer parses and renders; every decision is here.
 *
 * A request travels between the pages as a signed transaction: its checked parameters and
 * the time, MACed together with a random value from the browser's own cookie. That MAC is
 * the form's CSRF token: it is worthless in another browser, for another request, or after
 * `TRANSACTION_TTL_MS`, and no parameter can be changed under it. Every step checks the
 * request again, so a client changed in the meantime is judged as it is now.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../clock.js';
import {
  AccessDeniedError,
  ConsentRequiredError,
  EmailNotVerifiedError,
  InvalidGrantError,
  InvalidRequestError,
  LoginRequiredError,
  OAuthError,
  TooManyRequestsError,
} from '../errors.js';
import { authorizationDenied } from '../events/authorization.js';
import type { EventSink } from '../events/types.js';
import type { Random } from '../random.js';
import type { BrowserSession, BrowserSessionStore, ClientRecord, ConsentStore, PushedRequestStore, UserRecord } from '../stores/types.js';
import type { IdTokens } from '../tokens/id-token.js';
import type { UserService } from '../users/service.js';
import type { AuthorizationCodes } from './authorization-codes.js';
import { RedirectableError, UntrustedRequestError, type AuthorizationChecker, type AuthorizationRequest } from './authorization.js';
import { withQuery } from './redirect-uri.js';
import { storedScopeTokens } from './scope.js';

export const REQUEST_URI_PREFIX = 'urn:ietf:params:oauth:request_uri:';
export const PUSHED_REQUEST_TTL_MS = 60_000;
/** How long a user may take on the login and consent pages. */
export const TRANSACTION_TTL_MS = 30 * 60_000;

export interface SignInDeps {
  readonly issuer: string;
  readonly checks: AuthorizationChecker;
  readonly pushed: PushedRequestStore;
  readonly sessions: BrowserSessionStore;
  readonly consents: Pick<ConsentStore, 'find' | 'grant'>;
  readonly codes: Pick<AuthorizationCodes, 'issue'>;
  readonly users: Pick<UserService, 'login' | 'findById'>;
  /** Checks an `id_token_hint` (OIDC Core §3.1.2.1). */
  readonly idTokens: Pick<IdTokens, 'verifyHint'>;
  /** Key of the transaction MACs; the same on every instance. */
  readonly transactionKey: Buffer;
  /** Every client must push its requests (REQUIRE_PAR). */
  readonly requirePar: boolean;
  readonly clock: Clock;
  readonly random: Random;
  /** Security events (authorization denied; granted is emitted where codes are issued). */
  readonly events?: EventSink;
}

/** What the browser sent besides the parameters. */
export interface Browser {
  /** The random value of the browser's transaction cookie. */
  readonly binding: string;
  /** The sign-in session cookie, if any. */
  readonly sessionCookie: string | undefined;
  readonly ip: string;
}

export type SignInOutcome =
  /** Send the browser to the client (a code, or an error). */
  | { readonly kind: 'redirect'; readonly location: string; readonly redirectOrigin: string; readonly sessionCookie?: string }
  | {
      readonly kind: 'login';
      readonly status: number;
      readonly transaction: string;
      readonly client: ClientRecord;
      readonly redirectOrigin: string;
      readonly email: string | undefined;
      readonly error?: string;
      readonly retryAfterMs?: number;
    }
  | {
      readonly kind: 'consent';
      readonly transaction: string;
      readonly client: ClientRecord;
      readonly redirectOrigin: string;
      readonly scopes: readonly string[];
      readonly user: UserRecord;
      readonly sessionCookie?: string;
    }
  /** The client or redirect URI cannot be trusted: our own page, never a redirect. */
  | { readonly kind: 'error'; readonly status: number; readonly description: string };

interface Pending {
  readonly client: ClientRecord;
  readonly request: AuthorizationRequest;
  readonly raw: Readonly<Record<string, unknown>>;
}

export function createSignIn(deps: SignInDeps) {
  const { checks, sessions, consents, users, clock } = deps;

  const mac = (binding: string, payload: string) => createHmac('sha256', deps.transactionKey).update(`${binding}.${payload}`).digest('base64url');

  function transaction(raw: Readonly<Record<string, unknown>>, browser: Browser): string {
    const payload = Buffer.from(JSON.stringify({ p: raw, t: clock.now() })).toString('base64url');
    return `${payload}.${mac(browser.binding, payload)}`;
  }

  /** The parameters a transaction token carries, if it is this browser's, intact and recent. */
  function openTransaction(token: string, browser: Browser): Record<string, unknown> {
    const [payload = '', tag = ''] = token.split('.');
    const expected = Buffer.from(mac(browser.binding, payload));
    const given = Buffer.from(tag);
    if (!browser.binding || expected.length !== given.length || !timingSafeEqual(expected, given)) {
      throw new UntrustedRequestError('this form was not issued to this browser, or it was changed; please start signing in again from the application');
    }
    const { p, t } = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { p: Record<string, unknown>; t: number };
    if (clock.now() - t > TRANSACTION_TTL_MS) throw new UntrustedRequestError('this sign-in page has expired; please start again from the application');
    return p;
  }

  /** The request behind `raw`: pushed parameters resolved, PAR enforced, everything checked. */
  async function resolve(raw: Record<string, unknown>): Promise<Pending> {
    let params = raw;
    // RFC 9126 §4: with a request_uri, the pushed parameters are the whole request.
    if (raw.request_uri !== undefined) params = await pushedParameters(raw);
    const { client, redirectUri, state } = await checks.trustedClient(params);
    if (params === raw && (deps.requirePar || client.requirePar)) {
      throw new RedirectableError(new InvalidRequestError('this client must push its authorization requests (RFC 9126)'), redirectUri, state);
    }
    try {
      return { client, request: checks.checkRequest(client, redirectUri, state, params), raw: params };
    } catch (err) {
      if (err instanceof OAuthError) throw new RedirectableError(err, redirectUri, state);
      throw err;
    }
  }

  async function pushedParameters(raw: Record<string, unknown>): Promise<Record<string, unknown>> {
    const clientId = typeof raw.client_id === 'string' ? raw.client_id : '';
    const requestUri = typeof raw.request_uri === 'string' ? raw.request_uri : '';
    const id = requestUri.startsWith(REQUEST_URI_PREFIX) ? requestUri.slice(REQUEST_URI_PREFIX.length) : '';
    const pushed = id && clientId ? await deps.pushed.take(id, clientId) : null;
    if (!pushed) throw new UntrustedRequestError('this sign-in link has expired or was already used; please start again from the application');
    return { ...pushed, client_id: clientId };
  }

  /** The signed-in user of this browser, if the session is live and the account unchanged since. */
  async function signedIn(browser: Browser): Promise<{ user: UserRecord; session: BrowserSession } | undefined> {
    if (!browser.sessionCookie) return undefined;
    const session = await sessions.touch(browser.sessionCookie);
    if (!session) return undefined;
    const user = await users.findById(session.userId);
    if (!user || user.disabled || user.passwordChangedAt.getTime() > session.authTime) return undefined;
    return { user, session };
  }

  /** The user an `id_token_hint` names; one we did not issue is refused (expired ones are fine). */
  async function hintedUser({ request }: Pending): Promise<string | undefined> {
    if (request.idTokenHint === undefined) return undefined;
    const hint = await deps.idTokens.verifyHint(request.idTokenHint);
    if (!hint) throw new RedirectableError(new InvalidRequestError('id_token_hint is not an ID token this server issued'), request.redirectUri, request.state);
    return hint.sub;
  }

  const redirectOrigin = (pending: Pending) => new URL(pending.request.redirectUri).origin;

  function redirect(pending: Pending, params: Record<string, string | undefined>, sessionCookie?: string): SignInOutcome {
    const location = withQuery(pending.request.redirectUri, { ...params, state: pending.request.state, iss: deps.issuer });
    return { kind: 'redirect', location, redirectOrigin: redirectOrigin(pending), ...(sessionCookie ? { sessionCookie } : {}) };
  }

  function loginPage(
    pending: Pending,
    browser: Browser,
    extra: { status?: number; email?: string | undefined; error?: string; retryAfterMs?: number } = {},
  ): SignInOutcome {
    return {
      kind: 'login',
      status: extra.status ?? 200,
      transaction: transaction(pending.raw, browser),
      client: pending.client,
      redirectOrigin: redirectOrigin(pending),
      email: extra.email ?? pending.request.loginHint,
      ...(extra.error !== undefined && { error: extra.error }),
      ...(extra.retryAfterMs !== undefined && { retryAfterMs: extra.retryAfterMs }),
    };
  }

  /** After a sign-in (now, or an earlier one of this browser): consent if needed, else a code. */
  async function afterSignIn(pending: Pending, browser: Browser, user: UserRecord, session: BrowserSession, sessionCookie?: string): Promise<SignInOutcome> {
    const { client, request } = pending;
    const wanted = storedScopeTokens(request.scope);
    const consent = client.firstParty ? undefined : await consents.find(user.id, client.clientId);
    const needsConsent = !client.firstParty && (request.prompt.includes('consent') || !wanted.every((scope) => consent?.scopes.includes(scope)));
    if (needsConsent) {
      if (request.prompt.includes('none'))
        return redirect(pending, toParams(new ConsentRequiredError('the user has not allowed this application yet')), sessionCookie);
      return {
        kind: 'consent',
        transaction: transaction(pending.raw, browser),
        client,
        redirectOrigin: redirectOrigin(pending),
        scopes: wanted,
        user,
        ...(sessionCookie ? { sessionCookie } : {}),
      };
    }
    const code = await deps.codes.issue(request, user, codeSignIn(session));
    return redirect(pending, { code }, sessionCookie);
  }

  /** Runs a step; a problem for the client becomes a redirect, an untrusted request our page. */
  async function step(run: () => Promise<SignInOutcome>): Promise<SignInOutcome> {
    try {
      return await run();
    } catch (err) {
      if (err instanceof UntrustedRequestError) return { kind: 'error', status: 400, description: err.description };
      if (err instanceof RedirectableError) {
        const location = withQuery(err.redirectUri, { ...toParams(err.error), state: err.state, iss: deps.issuer });
        return { kind: 'redirect', location, redirectOrigin: new URL(err.redirectUri).origin };
      }
      throw err;
    }
  }

  return {
    /** GET or POST /oauth/authorize. */
    authorize: (raw: Record<string, unknown>, browser: Browser) =>
      step(async () => {
        const pending = await resolve(raw);
        const { request } = pending;
        const hinted = await hintedUser(pending);
        let current = await signedIn(browser);
        // The client expects another user than the one signed in here: that one must sign in.
        if (current && hinted !== undefined && current.user.id !== hinted) current = undefined;
        const tooOld = (session: BrowserSession) => request.maxAge !== undefined && clock.now() - session.authTime > request.maxAge * 1000;
        if (!current || request.prompt.includes('login') || tooOld(current.session)) {
          if (request.prompt.includes('none')) return redirect(pending, toParams(new LoginRequiredError('the user is not signed in')));
          return loginPage(pending, browser);
        }
        return afterSignIn(pending, browser, current.user, current.session);
      }),

    /** The login form: the same throttles and answers as /auth/login. */
    login: (input: { transaction: string; email: string; password: string }, browser: Browser) =>
      step(async () => {
        const pending = await resolve(openTransaction(input.transaction, browser));
        let user: UserRecord;
        try {
          user = await users.login({ email: input.email, password: input.password, ip: browser.ip });
        } catch (err) {
          if (err instanceof TooManyRequestsError)
            return loginPage(pending, browser, { status: 429, email: input.email, retryAfterMs: Number(err.headers['Retry-After'] ?? 60) * 1000 });
          if (err instanceof InvalidGrantError)
            return loginPage(pending, browser, { status: 400, email: input.email, error: 'The email address or password is not right.' });
          // REQUIRE_VERIFIED_EMAIL, and the password was right.
          if (err instanceof EmailNotVerifiedError)
            return loginPage(pending, browser, {
              status: 403,
              email: input.email,
              error: 'Please confirm your email address first: open the link we mailed to it.',
            });
          throw err;
        }
        const authTime = clock.now();
        const { session, cookieValue } = await sessions.create({ userId: user.id, authTime, amr: ['pwd'] });
        return afterSignIn(pending, browser, user, session, cookieValue);
      }),

    /** The consent form: `allow` remembers the scopes and issues a code, `deny` tells the client. */
    consent: (input: { transaction: string; decision: string }, browser: Browser) =>
      step(async () => {
        const pending = await resolve(openTransaction(input.transaction, browser));
        const current = await signedIn(browser);
        if (!current) return loginPage(pending, browser);
        if (input.decision !== 'allow') {
          deps.events?.emit(authorizationDenied(current.user, pending.client.clientId, pending.request.scope));
          return redirect(pending, toParams(new AccessDeniedError('the user did not allow the request')));
        }
        await consents.grant(current.user.id, pending.client.clientId, storedScopeTokens(pending.request.scope));
        const code = await deps.codes.issue(pending.request, current.user, codeSignIn(current.session));
        return redirect(pending, { code });
      }),

    /** POST /oauth/par (RFC 9126 §2): the client is authenticated; the request is checked now, used later. */
    async push(client: ClientRecord, raw: Record<string, unknown>): Promise<{ request_uri: string; expires_in: number }> {
      if (raw.request_uri !== undefined) throw new InvalidRequestError('request_uri must not be pushed (RFC 9126 §2.1)');
      const params = { ...raw, client_id: client.clientId };
      let trusted;
      try {
        trusted = await checks.trustedClient(params);
      } catch (err) {
        if (err instanceof UntrustedRequestError) throw new InvalidRequestError('redirect_uri is missing or not registered for this client');
        throw err;
      }
      checks.checkRequest(client, trusted.redirectUri, trusted.state, params);
      const id = deps.random.token(32);
      const stored = Object.fromEntries(Object.entries(params).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
      await deps.pushed.save(id, client.clientId, stored, PUSHED_REQUEST_TTL_MS);
      return { request_uri: `${REQUEST_URI_PREFIX}${id}`, expires_in: PUSHED_REQUEST_TTL_MS / 1000 };
    },
  };
}

const codeSignIn = (session: BrowserSession) => ({ authTime: session.authTime, sid: session.id, amr: session.amr });

function toParams(error: OAuthError): Record<string, string> {
  return { error: error.code, error_description: error.description };
}

export type SignIn = ReturnType<typeof createSignIn>;
