/**
 * RP-Initiated Logout 1.0: a client sends the browser to /oauth/logout to end the user's
 * sign-in session here. With a valid `id_token_hint` naming the signed-in user the session
 * ends at once; otherwise the user confirms on a page first (a CSRF-bound form, so no
 * other site can log the user out). The browser goes back to `post_logout_redirect_uri`
 * only when the client (from the hint or `client_id`) registered it exactly (§3); any
 * other problem is our own page, never a redirect.
 *
 * Ending a session also ends the refresh families it started and tells every client that
 * got tokens in it by back-channel (`SessionEnded`): those the session recorded (every ID
 * token with its `sid`, `clientReceivedTokens`) and those with a family from it, each once.
 */
import { familyRevoked } from '../events/families.js';
import type { EventSink } from '../events/types.js';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { Clock } from '../clock.js';
import type { BrowserSession, BrowserSessionStore, ClientStore, Family, FamilyStore } from '../stores/types.js';
import type { IdTokens } from '../tokens/id-token.js';
import { text } from '../input.js';
import { withQuery } from './redirect-uri.js';

/** How long the confirmation page stays usable. */
export const LOGOUT_TRANSACTION_TTL_MS = 30 * 60_000;

/** A sign-in session that ended, and the clients that received tokens in it. */
export interface SessionEnded {
  readonly sid: string;
  readonly sub: string;
  readonly clientIds: readonly string[];
}

export interface LogoutDeps {
  readonly clients: Pick<ClientStore, 'findById'>;
  readonly idTokens: Pick<IdTokens, 'verifyHint'>;
  readonly sessions: Pick<BrowserSessionStore, 'get' | 'delete' | 'listByUser' | 'addClient' | 'removeClient'>;
  readonly families: Pick<FamilyStore, 'listBySubject' | 'revoke'>;
  /** Told of every session that ends here (back-channel logout). */
  readonly onSessionEnded?: (ended: SessionEnded) => Promise<void>;
  /** Security events: a family.revoked (reason logout) for each family the sign-out ends. */
  readonly events?: EventSink;
  /** MAC key of the confirmation form's CSRF token; the same on every instance. */
  readonly transactionKey: Buffer;
  readonly clock: Clock;
}

export interface LogoutBrowser {
  /** The random value of the browser's transaction cookie. */
  readonly binding: string;
  readonly sessionCookie: string | undefined;
}

export type LogoutOutcome =
  | { readonly kind: 'redirect'; readonly location: string; readonly clearSession: boolean }
  | { readonly kind: 'confirm'; readonly transaction: string; readonly clientName: string | undefined; readonly redirectOrigin: string | undefined }
  | { readonly kind: 'done'; readonly signedOut: boolean; readonly clearSession: boolean }
  | { readonly kind: 'error'; readonly status: number; readonly description: string };

const parameters = z.object({
  id_token_hint: text(16 * 1024).optional(),
  post_logout_redirect_uri: text(2000).optional(),
  state: text(2000).optional(),
  client_id: text(128).optional(),
  logout_hint: text(254).optional(),
  ui_locales: text(200).optional(),
});

/** Where to send the browser afterwards, once checked. */
interface Target {
  readonly uri: string | undefined;
  readonly state: string | undefined;
  readonly clientName: string | undefined;
}

class LogoutRefused extends Error {}

export function createLogout(deps: LogoutDeps) {
  const { clock } = deps;
  const mac = (binding: string, payload: string) => createHmac('sha256', deps.transactionKey).update(`logout.${binding}.${payload}`).digest('base64url');

  /** The checked target, and the user the hint names (undefined without a hint). */
  async function check(raw: Record<string, unknown>): Promise<{ target: Target; hintedSub: string | undefined }> {
    const parsed = parameters.safeParse(raw);
    if (!parsed.success) throw new LogoutRefused('the sign-out request is malformed');
    const params = parsed.data;
    const hint = params.id_token_hint === undefined ? undefined : await deps.idTokens.verifyHint(params.id_token_hint);
    if (params.id_token_hint !== undefined && !hint) throw new LogoutRefused('the application sent an ID token that this service did not issue');
    if (hint && params.client_id !== undefined && hint.aud !== params.client_id) throw new LogoutRefused('the ID token was issued to another application');
    const clientId = params.client_id ?? hint?.aud;
    const client = clientId === undefined ? null : await deps.clients.findById(clientId);
    const uri = params.post_logout_redirect_uri;
    if (uri !== undefined) {
      if (!client) throw new LogoutRefused('the application to return to is not known (send id_token_hint or client_id)');
      // §3: exact match with a registered value; otherwise no redirect at all.
      if (!client.postLogoutRedirectUris.includes(uri)) throw new LogoutRefused('the application asked to send you to an address it has not registered');
    }
    return { target: { uri, state: uri === undefined ? undefined : params.state, clientName: client?.name }, hintedSub: hint?.sub };
  }

  /** Ends the session, the families it started, and tells the clients that had tokens in it. */
  async function end(session: BrowserSession): Promise<void> {
    const families = (await deps.families.listBySubject(session.userId)).filter((family) => family.signIn?.sid === session.id);
    const revoked = await Promise.all(families.map((family) => deps.families.revoke(family.id)));
    deps.events?.emit(...families.filter((_, index) => revoked[index]).map((family) => familyRevoked('logout', family)));
    await deps.sessions.delete(session.id);
    await deps.onSessionEnded?.({ sid: session.id, sub: session.userId, clientIds: clientsOf(session, families) });
  }

  function finish(target: Target, signedOut: boolean, hadCookie: boolean): LogoutOutcome {
    const clearSession = signedOut && hadCookie;
    if (target.uri !== undefined) {
      const location = target.state === undefined ? target.uri : withQuery(target.uri, { state: target.state });
      return { kind: 'redirect', location, clearSession };
    }
    return { kind: 'done', signedOut, clearSession };
  }

  async function guarded(run: () => Promise<LogoutOutcome>): Promise<LogoutOutcome> {
    try {
      return await run();
    } catch (err) {
      if (err instanceof LogoutRefused) return { kind: 'error', status: 400, description: err.message };
      throw err;
    }
  }

  const currentSession = async (browser: LogoutBrowser) => (browser.sessionCookie ? deps.sessions.get(browser.sessionCookie) : null);

  return {
    /**
     * For the other ways sign-in sessions end (logout-all, a password change, ending one
     * from the sessions list): reads the user's sessions (all, or `only`) and the clients
     * that got tokens in each while they still exist; the returned function, called once
     * they have ended, tells those clients by back-channel.
     */
    async beforeEnding(userId: string, only?: string): Promise<() => Promise<void>> {
      const notify = deps.onSessionEnded;
      if (!notify) return async () => undefined;
      const [sessions, families] = await Promise.all([deps.sessions.listByUser(userId), deps.families.listBySubject(userId)]);
      const ending = sessions.filter((session) => only === undefined || session.id === only);
      return async () => {
        for (const session of ending) {
          const clientIds = clientsOf(session, families);
          if (clientIds.length > 0) await notify({ sid: session.id, sub: userId, clientIds });
        }
      };
    },

    /**
     * A client received an ID token with `sid` (the code exchange): the session records it,
     * so that its end reaches the client even without a refresh token. A session that has
     * already ended (a sign-out between the code and its exchange) is told to the client now.
     */
    async clientReceivedTokens(input: { sid: string; sub: string; clientId: string }): Promise<void> {
      if (await deps.sessions.addClient(input.sid, input.clientId)) return;
      await deps.onSessionEnded?.({ sid: input.sid, sub: input.sub, clientIds: [input.clientId] });
    },

    /**
     * A family ended by reuse has told its client that the session is over (back-channel
     * `familyEnded`): the session forgets that client, so that its own end does not tell it twice.
     */
    async familyEnded(family: Family): Promise<void> {
      if (family.signIn) await deps.sessions.removeClient(family.signIn.sid, family.clientId);
    },

    /** GET or POST /oauth/logout. */
    request: (raw: Record<string, unknown>, browser: LogoutBrowser) =>
      guarded(async () => {
        const { target, hintedSub } = await check(raw);
        const session = await currentSession(browser);
        if (!session) return finish(target, true, browser.sessionCookie !== undefined);
        if (hintedSub !== undefined && hintedSub === session.userId) {
          await end(session);
          return finish(target, true, true);
        }
        const payload = Buffer.from(JSON.stringify({ p: raw, t: clock.now() })).toString('base64url');
        const redirectOrigin = target.uri === undefined ? undefined : new URL(target.uri).origin;
        return { kind: 'confirm', transaction: `${payload}.${mac(browser.binding, payload)}`, clientName: target.clientName, redirectOrigin };
      }),

    /** The confirmation form: `logout` ends the session, anything else keeps it. */
    confirm: (input: { transaction: string; decision: string }, browser: LogoutBrowser) =>
      guarded(async () => {
        const [payload = '', tag = ''] = input.transaction.split('.');
        const expected = Buffer.from(mac(browser.binding, payload));
        const given = Buffer.from(tag);
        if (!browser.binding || expected.length !== given.length || !timingSafeEqual(expected, given))
          throw new LogoutRefused('this form was not issued to this browser, or it was changed; please sign out again from the application');
        const { p, t } = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { p: Record<string, unknown>; t: number };
        if (clock.now() - t > LOGOUT_TRANSACTION_TTL_MS) throw new LogoutRefused('this page has expired; please sign out again from the application');
        const { target } = await check(p);
        if (input.decision !== 'logout') return { kind: 'done', signedOut: false, clearSession: false };
        const session = await currentSession(browser);
        if (session) await end(session);
        return finish(target, true, browser.sessionCookie !== undefined);
      }),
  };
}

export type Logout = ReturnType<typeof createLogout>;

/** Who got tokens in `session`: recorded by it, or holding a family it started; each client once. */
function clientsOf(session: BrowserSession, families: readonly Family[]): string[] {
  const fromFamilies = families.filter((family) => family.signIn?.sid === session.id).map((family) => family.clientId);
  return [...new Set([...session.clientIds, ...fromFamilies])];
}
