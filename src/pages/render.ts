/**
 * Hosted pages (sign-in, consent, error) rendered on the server from the eta templates in
 * `templates/`, one layout for all. Every `<%= %>` is HTML-escaped (autoEscape); the one
 * raw output is the layout's `body`, which is the already-escaped page. No script, no
 * inline style: the pages' CSP (headers.ts) forbids both, and the forms work without
 * JavaScript. No Koa here: a page handler in src/http calls these and writes the string
 * with `pageHeaders()`.
 *
 * The templates and the stylesheet are files next to this module; `npm run build` copies
 * them beside the compiled module (scripts/build.mjs), so both `src` (tsx,
 * vitest) and `dist` find them the same way.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';

const TEMPLATES_DIR = fileURLToPath(new URL('./templates/', import.meta.url));
const STYLESHEET_FILE = fileURLToPath(new URL('./assets/pages.css', import.meta.url));

/** Where the app serves `pageStylesheet()`; the pages link it unless `stylesheetUrl` says otherwise. */
export const PAGES_STYLESHEET_PATH = '/assets/pages.css';
/** Where the app serves the operator's logo (PAGES_LOGO), when there is one. */
export const PAGES_LOGO_PATH = '/assets/logo';

/** What the app serves beside the pages: the stylesheet's text and the optional logo. */
export interface PageAssets {
  readonly stylesheet: string;
  readonly logo?: { readonly body: Buffer; readonly type: string };
}

/** The default stylesheet's text (read from disk each call: serve it with a cache header, read it once at start-up). */
export function pageStylesheet(): string {
  return readFileSync(STYLESHEET_FILE, 'utf8');
}

export interface PageOptions {
  /** Shown in the header (as the logo's alt text when there is a logo) and every title. */
  readonly productName: string;
  /** Path of a logo on the authority's own origin (the CSP allows images from 'self' only). */
  readonly logoUrl?: string | undefined;
  /** Path of the stylesheet on the authority's own origin; default PAGES_STYLESHEET_PATH. */
  readonly stylesheetUrl?: string | undefined;
  /** Human descriptions of scopes for the consent page, over DEFAULT_SCOPE_DESCRIPTIONS. */
  readonly scopeDescriptions?: Readonly<Record<string, string>> | undefined;
}

export const DEFAULT_SCOPE_DESCRIPTIONS: Readonly<Record<string, string>> = Object.freeze({
  openid: 'Confirm who you are',
  profile: 'See your name',
  email: 'See your email address',
  offline_access: 'Stay connected when you are not using it',
});

export interface LoginPage {
  /** Where the form posts: a path on the authority (or its absolute http(s) URL). */
  readonly action: string;
  readonly csrfToken: string;
  /** The client the user signs in for, when known. */
  readonly clientName?: string | undefined;
  /** Prefill of the email field (`login_hint`, or what the user typed). */
  readonly email?: string | undefined;
  /** A failed attempt: tied to one field, or to the form when `field` is absent. */
  readonly error?: { readonly field?: 'email' | 'password'; readonly message: string } | undefined;
  /** Throttled (429): how long until the next attempt may be made. */
  readonly throttle?: { readonly retryAfterMs: number } | undefined;
}

export interface ConsentPage {
  readonly action: string;
  readonly csrfToken: string;
  readonly clientName: string;
  /** The scopes asked for; each is shown by its description (the scope name when it has none). */
  readonly scopes: readonly string[];
  /** The signed-in user, so that someone on a shared device sees whose account it is. */
  readonly userEmail?: string | undefined;
}

export interface ErrorPage {
  readonly title: string;
  readonly description: string;
}

/** RP-Initiated Logout §2: asking the user before ending the sign-in session. */
export interface LogoutPage {
  readonly action: string;
  readonly csrfToken: string;
  /** The client that asked, when it is known. */
  readonly clientName?: string | undefined;
}

/** A plain outcome that is not an error: signed out, or still signed in. */
export interface NoticePage {
  readonly title: string;
  readonly message: string;
}

/** A link under a page's form or message: a path on the authority. */
export interface PageLink {
  readonly href: string;
  readonly text: string;
}

/** One input of an account form. */
export interface AccountField {
  readonly name: string;
  readonly label: string;
  readonly type: 'email' | 'password';
  readonly autocomplete: 'email' | 'username' | 'new-password';
  readonly value?: string | undefined;
  /** Shown under the input and tied to it (aria-describedby). */
  readonly hint?: string | undefined;
  readonly error?: string | undefined;
}

/** The account pages' forms (forgot password, reset password, confirm an address). */
export interface AccountFormPage {
  readonly title: string;
  readonly lead?: string | undefined;
  readonly action: string;
  readonly csrfToken: string;
  readonly hidden?: readonly { readonly name: string; readonly value: string }[];
  /** A hidden `autocomplete="username"` field, so password managers file a new password under the right account. */
  readonly username?: string | undefined;
  readonly fields: readonly AccountField[];
  readonly submit: string;
  /** About the whole form (a throttle, a link that stopped working). */
  readonly alert?: string | undefined;
  readonly links?: readonly PageLink[];
}

/** An outcome: done (`status`) or not (`alert`). */
export interface MessagePage {
  readonly title: string;
  readonly description: string;
  readonly tone: 'success' | 'error';
  readonly links?: readonly PageLink[];
}

export interface PageRenderer {
  login(page: LoginPage): string;
  consent(page: ConsentPage): string;
  error(page: ErrorPage): string;
  logout(page: LogoutPage): string;
  notice(page: NoticePage): string;
  accountForm(page: AccountFormPage): string;
  message(page: MessagePage): string;
}

const TEMPLATES = ['layout', 'login', 'consent', 'error', 'logout', 'notice', 'account-form', 'message'] as const;

export function createPageRenderer(options: PageOptions): PageRenderer {
  if (typeof options.productName !== 'string' || options.productName.trim() === '') throw new TypeError('productName is required');
  const logoUrl = options.logoUrl === undefined ? undefined : assertOwnPath(options.logoUrl, 'logoUrl');
  const stylesheetUrl = assertOwnPath(options.stylesheetUrl ?? PAGES_STYLESHEET_PATH, 'stylesheetUrl');
  const descriptions = { ...DEFAULT_SCOPE_DESCRIPTIONS, ...options.scopeDescriptions };
  // A build that lost its templates fails here, at start-up, not at the first sign-in.
  for (const name of TEMPLATES) {
    if (!existsSync(`${TEMPLATES_DIR}${name}.eta`)) throw new Error(`page template ${name}.eta missing from ${TEMPLATES_DIR}`);
  }
  const eta = new Eta({ views: TEMPLATES_DIR, autoEscape: true, autoTrim: [false, 'nl'], cache: true });
  const shared = { lang: 'en', productName: options.productName, logoUrl, stylesheetUrl };
  const render = (name: string, data: object): string => eta.render(name, { ...shared, ...data });

  return {
    login: (page) => render('login', loginView(page)),
    consent: (page) =>
      render('consent', {
        action: assertAction(page.action),
        csrfToken: page.csrfToken,
        clientName: page.clientName,
        userEmail: page.userEmail,
        scopes: page.scopes.map((scope) => ({ name: scope, description: descriptions[scope] ?? scope })),
      }),
    error: (page) => render('error', { title: page.title, description: page.description }),
    logout: (page) => render('logout', { action: assertAction(page.action), csrfToken: page.csrfToken, clientName: page.clientName }),
    notice: (page) => render('notice', { title: page.title, message: page.message }),
    accountForm: (page) => render('account-form', accountFormView(page)),
    message: (page) => render('message', { title: page.title, description: page.description, tone: page.tone, links: ownLinks(page.links) }),
  };
}

const ownLinks = (links: readonly PageLink[] = []) => links.map((link) => ({ href: assertOwnPath(link.href, 'a link'), text: link.text }));

/** Each field with what describes it: its hint and error, or the form's alert when no field has an error. */
function accountFormView(page: AccountFormPage): object {
  const fieldError = page.fields.some((field) => field.error);
  return {
    title: page.title,
    lead: page.lead,
    action: assertAction(page.action),
    csrfToken: page.csrfToken,
    hidden: page.hidden ?? [],
    username: page.username,
    alert: page.alert,
    submit: page.submit,
    links: ownLinks(page.links),
    fields: page.fields.map((field) => {
      const ids = [field.hint && `${field.name}-hint`, field.error && `${field.name}-error`, !fieldError && page.alert && 'form-error'].filter(Boolean);
      return { ...field, describedBy: ids.length > 0 ? ids.join(' ') : undefined };
    }),
  };
}

/** What the login template shows: the alert, and each field with its value, error and description. */
function loginView(page: LoginPage): object {
  const { error, throttle } = page;
  const alert = throttle ? `Too many sign-in attempts. Please wait ${waitText(throttle.retryAfterMs)} before trying again.` : error?.message;
  const field = (name: 'email' | 'password') => {
    const fieldError = !throttle && error?.field === name ? error.message : undefined;
    // The alert describes a field only when it is about no field in particular.
    const formWide = alert !== undefined && (throttle !== undefined || error?.field === undefined);
    return { name, error: fieldError, describedBy: fieldError ? `${name}-error` : formWide ? 'form-error' : undefined };
  };
  return {
    action: assertAction(page.action),
    csrfToken: page.csrfToken,
    clientName: page.clientName,
    alert,
    fields: [
      { ...field('email'), label: 'Email address', type: 'email', autocomplete: 'username', value: page.email ?? '' },
      { ...field('password'), label: 'Password', type: 'password', autocomplete: 'current-password', value: '' },
    ],
  };
}

/** "45 seconds", "1 minute", "15 minutes": rounded up, so the user never retries too early. */
export function waitText(retryAfterMs: number): string {
  const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  if (seconds < 60) return seconds === 1 ? '1 second' : `${seconds} seconds`;
  const minutes = Math.ceil(seconds / 60);
  return minutes === 1 ? '1 minute' : `${minutes} minutes`;
}

/** A path on this origin: `/…` but not `//…` (another host) nor `/\…` (which browsers read as `//`). */
function assertOwnPath(value: string, what: string): string {
  if (typeof value !== 'string' || !/^\/(?![/\\])[^\s]*$/.test(value))
    throw new TypeError(`${what} must be a path on the authority's own origin, like /assets/logo.svg`);
  return value;
}

/** A form action is a path on the authority, or an absolute http(s) URL: never `javascript:` or the like. */
function assertAction(action: string): string {
  if (typeof action === 'string' && /^\/(?![/\\])/.test(action)) return action;
  try {
    const url = new URL(action);
    if (url.protocol === 'https:' || url.protocol === 'http:') return action;
  } catch {
    // fall through
  }
  throw new TypeError('a form action must be a path or an http(s) URL');
}
