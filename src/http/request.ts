/** Reading what every route reads from a Koa request. */
import type { ParameterizedContext } from 'koa';
import { InvalidRequestError } from '../errors.js';

/** The parsed body (`middleware/body.ts`) as an object; anything else is invalid_request. */
export function requestBody(ctx: ParameterizedContext<unknown>): Record<string, unknown> {
  const body = ctx.request.body;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new InvalidRequestError('a request body is required');
  return body as Record<string, unknown>;
}

/** Where a request came from, for throttles and the sessions list. */
export function useContext(ctx: ParameterizedContext<unknown>): { readonly ip: string; readonly userAgent: string | undefined } {
  return { ip: ctx.ip, userAgent: ctx.get('User-Agent') || undefined };
}
