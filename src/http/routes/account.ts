/**
 * The account API of the mailed-link flows (`/auth/email/*`, `/auth/password/forgot|reset`):
 * each handler parses, calls the recovery service, answers. Requests that name an address
 * answer 202 with one fixed body whatever the address.
 */
import type { Middleware, ParameterizedContext } from 'koa';
import { z } from 'zod';
import { email, newPassword, parseInput, password, text } from '../../input.js';
import type { Caller } from '../../sessions/service.js';
import type { AccountRecovery } from '../../users/recovery.js';
import { publicUser } from '../../users/service.js';
import { requestBody } from '../request.js';

type AuthState = { -readonly [K in keyof Caller]: Caller[K] };

/** The one answer to every request that names an address. */
export const MAIL_ACCEPTED = Object.freeze({
  status: 'accepted',
  message: 'If an account matches, a message is on its way to its address.',
});

const token = text(200);
const addressBody = z.object({ email });
const tokenBody = z.object({ token });
const resetBody = z.object({ token, new_password: newPassword });
const changeBody = z.object({ current_password: password, new_email: email });

export function createAccountRoutes({ recovery }: { recovery: AccountRecovery }) {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const accepted = (ctx: ParameterizedContext<any>) => {
    ctx.status = 202;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = MAIL_ACCEPTED;
  };

  return {
    resendVerification: async function resendVerification(ctx) {
      const body = parseInput(addressBody, requestBody(ctx));
      await recovery.resendVerification({ email: body.email, ip: ctx.ip });
      accepted(ctx);
    } satisfies Middleware,

    verifyEmail: async function verifyEmail(ctx) {
      const body = parseInput(tokenBody, requestBody(ctx));
      const user = await recovery.verifyEmail(body.token);
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { user: publicUser(user) };
    } satisfies Middleware,

    forgotPassword: async function forgotPassword(ctx) {
      const body = parseInput(addressBody, requestBody(ctx));
      await recovery.forgotPassword({ email: body.email, ip: ctx.ip });
      accepted(ctx);
    } satisfies Middleware,

    resetPassword: async function resetPassword(ctx) {
      const body = parseInput(resetBody, requestBody(ctx));
      const ended = await recovery.resetPassword({ token: body.token, newPassword: body.new_password });
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { sessions_ended: ended };
    } satisfies Middleware,

    requestEmailChange: async function requestEmailChange(ctx) {
      const body = parseInput(changeBody, requestBody(ctx));
      await recovery.requestEmailChange({ user: ctx.state.user, currentPassword: body.current_password, newEmail: body.new_email, ip: ctx.ip });
      accepted(ctx);
    } satisfies Middleware<AuthState>,

    confirmEmailChange: async function confirmEmailChange(ctx) {
      const body = parseInput(tokenBody, requestBody(ctx));
      const user = await recovery.confirmEmailChange(body.token);
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { user: publicUser(user) };
    } satisfies Middleware,
  };
}
