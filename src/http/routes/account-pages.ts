/**
 * The hosted account pages a mailed link opens, and the forgot-password form: each GET shows
 * a form (a link is never used up by a GET, which mail scanners fetch on their own), each
 * POST checks the form's CSRF token, calls the recovery service and shows the outcome. They
 * work without JavaScript, under the hosted pages' CSP and headers.
 */
import type { Context, Middleware } from 'koa';
import type { Logger } from '../../log.js';
import { email as emailSchema, newPassword } from '../../input.js';
import { InvalidGrantError, InvalidRequestError, OAuthError, StoreUnavailableError, TooManyRequestsError, toOAuthError } from '../../errors.js';
import { pageHeaders, waitText, type AccountFormPage, type MessagePage, type PageRenderer } from '../../pages/index.js';
import type { Random } from '../../random.js';
import type { AccountRecovery } from '../../users/recovery.js';
import type { FormTokens } from '../form-tokens.js';
import { requestBody } from '../request.js';

export const ACCOUNT_PAGE_PATHS = Object.freeze({
  forgotPassword: '/account/forgot-password',
  resetPassword: '/account/reset-password',
  verifyEmail: '/account/verify-email',
  confirmEmail: '/account/confirm-email',
});

export interface AccountPageDeps {
  readonly recovery: AccountRecovery;
  readonly pages: PageRenderer;
  readonly forms: FormTokens;
  readonly random: Random;
  readonly logger: Logger;
  readonly https: boolean;
}

const P = ACCOUNT_PAGE_PATHS;
const FORGOT_LINK = { href: P.forgotPassword, text: 'Ask for a new link' };
const DEAD_LINK = 'This link is not valid any more: it has expired, was already used, or a newer one was sent. Please ask for a new one.';
const PASSWORD_HINT = 'At least 8 characters. Avoid common passwords and your email address.';

export function createAccountPages(deps: AccountPageDeps) {
  const { recovery, pages, forms } = deps;
  const cookieName = `${deps.https ? '__Host-' : ''}account_form`;
  const cookieAttributes = ['Path=/', 'HttpOnly', 'SameSite=Lax', ...(deps.https ? ['Secure'] : [])].join('; ');

  /** This browser's form binding: its cookie, made on first sight. */
  function binding(ctx: Context): string {
    const found = ctx
      .get('Cookie')
      .split(';')
      .map((part) => part.trim().split('='))
      .find(([name]) => name === cookieName)?.[1];
    if (found) return found;
    const made = deps.random.token(32);
    ctx.append('Set-Cookie', `${cookieName}=${made}; ${cookieAttributes}`);
    return made;
  }

  function show(ctx: Context, status: number, html: string): void {
    ctx.status = status;
    ctx.set(pageHeaders());
    ctx.body = html;
  }
  const message = (ctx: Context, status: number, page: MessagePage) => show(ctx, status, pages.message(page));
  const form = (ctx: Context, status: number, name: string, page: Omit<AccountFormPage, 'csrfToken' | 'action'>) =>
    show(ctx, status, pages.accountForm({ ...page, action: name, csrfToken: forms.issue(binding(ctx), name) }));

  const field = (body: Record<string, unknown>, name: string) => (typeof body[name] === 'string' ? (body[name] as string) : '');
  const queryToken = (ctx: Context) => (typeof ctx.query.token === 'string' ? ctx.query.token.slice(0, 200) : '');

  /** The posted form's fields, once its CSRF token is this browser's for this form. */
  function posted(ctx: Context, name: string): Record<string, unknown> {
    const body = requestBody(ctx);
    if (!forms.verify(binding(ctx), name, field(body, 'csrf'))) {
      throw new InvalidRequestError('This form has expired or was not issued to this browser. Please open the page again and resubmit.');
    }
    return body;
  }

  /** Any failure becomes an accessible page; 5xx causes are logged, never shown. */
  const pageErrors: Middleware = async function accountPageErrors(ctx, next) {
    try {
      await next();
    } catch (thrown) {
      const err =
        thrown instanceof StoreUnavailableError
          ? { status: 503, description: 'The service is briefly unavailable. Please try again in a moment.' }
          : toOAuthError(thrown);
      if (err.status >= 500) deps.logger.error({ reqId: ctx.state.requestId, err: thrown }, 'request failed');
      if (err.status === 503) ctx.set('Retry-After', '1');
      const description =
        err.status >= 500 && !(thrown instanceof StoreUnavailableError) ? 'Something went wrong on our side. Please try again in a moment.' : err.description;
      message(ctx, err.status, { title: 'This did not work', description, tone: 'error' });
    }
  };

  const forgotForm = (ctx: Context, status: number, extra: { email?: string; error?: string; alert?: string } = {}) =>
    form(ctx, status, P.forgotPassword, {
      title: 'Reset your password',
      lead: 'Enter the email address of your account. If it has one, we will send it a link to choose a new password.',
      alert: extra.alert,
      fields: [{ name: 'email', label: 'Email address', type: 'email', autocomplete: 'username', value: extra.email, error: extra.error }],
      submit: 'Send me a link',
    });

  const resetForm = (ctx: Context, status: number, token: string, username: string, error?: string) =>
    form(ctx, status, P.resetPassword, {
      title: 'Choose a new password',
      lead: 'Every device signed in to your account will be signed out.',
      hidden: [{ name: 'token', value: token }],
      username,
      fields: [{ name: 'new_password', label: 'New password', type: 'password', autocomplete: 'new-password', hint: PASSWORD_HINT, error }],
      submit: 'Set new password',
    });

  /** A link's confirmation page: one button, the token carried in a hidden field. */
  function confirmPage(
    kind: 'email-verify' | 'email-change',
    path: string,
    title: string,
    lead: string,
    submit: string,
  ): { show: Middleware; submit: Middleware } {
    return {
      show: async function showConfirm(ctx) {
        const token = queryToken(ctx);
        const address = token ? await recovery.peek(kind, token) : null;
        if (!address) return message(ctx, 400, { title, description: DEAD_LINK, tone: 'error' });
        form(ctx, 200, path, { title, lead, hidden: [{ name: 'token', value: token }], fields: [], submit });
      },
      submit: async function submitConfirm(ctx) {
        const body = posted(ctx as Context, path);
        try {
          const user = kind === 'email-verify' ? await recovery.verifyEmail(field(body, 'token')) : await recovery.confirmEmailChange(field(body, 'token'));
          message(ctx as Context, 200, { title, description: `Thank you: ${user.email} is confirmed as the address of your account.`, tone: 'success' });
        } catch (err) {
          if (!(err instanceof InvalidGrantError)) throw err;
          message(ctx as Context, 400, { title, description: DEAD_LINK, tone: 'error' });
        }
      },
    };
  }

  return {
    pageErrors,
    forgotPassword: (async (ctx) => forgotForm(ctx as Context, 200)) satisfies Middleware,

    submitForgotPassword: async function submitForgotPassword(ctx) {
      const body = posted(ctx as Context, P.forgotPassword);
      const email = field(body, 'email');
      const parsed = emailSchema.safeParse(email);
      if (!parsed.success) return forgotForm(ctx as Context, 400, { email, error: 'Enter an email address, like name@example.com.' });
      try {
        await recovery.forgotPassword({ email: parsed.data, ip: ctx.ip });
      } catch (err) {
        if (!(err instanceof TooManyRequestsError)) throw err;
        ctx.set('Retry-After', err.headers['Retry-After'] ?? '60');
        return forgotForm(ctx as Context, 429, {
          email,
          alert: `Too many requests. Please wait ${waitText(Number(err.headers['Retry-After'] ?? 60) * 1000)} before trying again.`,
        });
      }
      message(ctx as Context, 202, {
        title: 'Check your inbox',
        description: 'If an account has this address, a link to choose a new password is on its way to it. The link works once, for 30 minutes.',
        tone: 'success',
      });
    } satisfies Middleware,

    resetPassword: async function resetPassword(ctx) {
      const token = queryToken(ctx as Context);
      const address = token ? await recovery.peek('password-reset', token) : null;
      if (!address) return message(ctx as Context, 400, { title: 'Choose a new password', description: DEAD_LINK, tone: 'error', links: [FORGOT_LINK] });
      resetForm(ctx as Context, 200, token, address);
    } satisfies Middleware,

    submitResetPassword: async function submitResetPassword(ctx) {
      const body = posted(ctx as Context, P.resetPassword);
      const token = field(body, 'token');
      const password = field(body, 'new_password');
      const rejectWith = async (error: string) => {
        const address = await recovery.peek('password-reset', token);
        if (!address) return message(ctx as Context, 400, { title: 'Choose a new password', description: DEAD_LINK, tone: 'error', links: [FORGOT_LINK] });
        resetForm(ctx as Context, 400, token, address, error);
      };
      const parsed = newPassword.safeParse(password);
      if (!parsed.success) return rejectWith(`The new password ${parsed.error.issues[0]!.message}.`);
      try {
        await recovery.resetPassword({ token, newPassword: parsed.data });
      } catch (err) {
        if (err instanceof InvalidGrantError)
          return message(ctx as Context, 400, { title: 'Choose a new password', description: DEAD_LINK, tone: 'error', links: [FORGOT_LINK] });
        if (err instanceof InvalidRequestError) return rejectWith(sentence(err));
        throw err;
      }
      message(ctx as Context, 200, {
        title: 'Your password was changed',
        description: 'You can now sign in with your new password. Every device that was signed in has been signed out.',
        tone: 'success',
      });
    } satisfies Middleware,

    verifyEmail: confirmPage('email-verify', P.verifyEmail, 'Confirm your email address', 'Confirm that this address is yours.', 'Confirm my email address'),
    confirmEmail: confirmPage(
      'email-change',
      P.confirmEmail,
      'Confirm your new email address',
      'Make this address the one of your account.',
      'Confirm the new address',
    ),
  };
}

/** A service's refusal (`new_password: is too common`) as a sentence for a page. */
function sentence(err: OAuthError): string {
  const text = err.description.replace(/^new_password: /, 'The new password ');
  return text.endsWith('.') ? text : `${text}.`;
}
