import type { Middleware } from 'koa';
import bodyParser from 'koa-bodyparser';
import { InvalidRequestError, UnsupportedMediaTypeError } from '../../errors.js';

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export type RequestBody = Record<string, unknown>;

/**
 * Parses JSON and form bodies up to `limit` bytes into `ctx.request.body` (an object with
 * no prototype). Other media types on a request that has a body get 415. Form bodies are
 * re-parsed from the raw text with URLSearchParams: flat, no `a[b]` nesting, a repeated
 * parameter is `invalid_request` (RFC 6749 §3.1, §3.2: parameters MUST NOT be included
 * more than once; RFC 8707's `resource` excepted) and one without a value is left out.
 */
export function parseBody({ limit, maxParameters = 100, maxDepth = 16 }: { limit: number; maxParameters?: number; maxDepth?: number }): Middleware {
  // Form bodies are read as text and parsed once, by parseForm below: koa-bodyparser's own
  // form parsing (qs) would build an object that is thrown away.
  const parser = bodyParser({
    enableTypes: ['json', 'text'],
    extendTypes: { text: ['application/x-www-form-urlencoded'] },
    jsonLimit: `${limit}b`,
    textLimit: `${limit}b`,
    strict: true,
    onerror: (err) => {
      throw err;
    },
  });
  return async function readBody(ctx, next) {
    if (!BODY_METHODS.has(ctx.method) || !hasBody(ctx.req.headers)) {
      ctx.request.body = Object.create(null);
      return next();
    }
    const type = ctx.is('application/json', 'application/x-www-form-urlencoded');
    if (!type) throw new UnsupportedMediaTypeError('send application/x-www-form-urlencoded or application/json');
    await parser(ctx, async () => undefined);
    if (type === 'application/x-www-form-urlencoded') {
      ctx.request.body = parseForm(String(ctx.request.rawBody ?? ''), maxParameters);
    } else if (ctx.request.body === null || typeof ctx.request.body !== 'object' || Array.isArray(ctx.request.body)) {
      throw new InvalidRequestError('the JSON body must be an object');
    } else if (depthExceeds(ctx.request.body, maxDepth)) {
      throw new InvalidRequestError(`the JSON body is nested deeper than ${maxDepth} levels`);
    } else if (Object.keys(ctx.request.body).length > maxParameters) {
      throw new InvalidRequestError(`too many parameters (at most ${maxParameters})`);
    } else {
      const repeated = repeatedMember(String(ctx.request.rawBody ?? ''));
      if (repeated !== undefined) throw repeatedParameter(repeated);
    }
    return next();
  };
}

/**
 * The first member name that an object in `json` (already known to parse) holds twice.
 * JSON.parse keeps the last silently, while a proxy or WAF in front may read the first:
 * the two would then judge different requests. A form repeating a parameter is refused
 * (RFC 6749 §3.1); this holds JSON bodies to the same rule. One linear pass.
 */
export function repeatedMember(json: string): string | undefined {
  const objects: (Set<string> | null)[] = [];
  for (let index = 0; index < json.length; index++) {
    const char = json[index];
    if (char === '{') objects.push(new Set());
    else if (char === '[') objects.push(null);
    else if (char === '}' || char === ']') objects.pop();
    else if (char === '"') {
      let end = index + 1;
      let escaped = false;
      while (end < json.length && json[end] !== '"') {
        if (json[end] === '\\') {
          escaped = true;
          end += 2;
        } else {
          end += 1;
        }
      }
      const literal = json.slice(index, end + 1);
      index = end;
      let next = end + 1;
      while (next < json.length && (json[next] === ' ' || json[next] === '\t' || json[next] === '\n' || json[next] === '\r')) next += 1;
      const members = objects.at(-1);
      if (json[next] !== ':' || !members) continue;
      // Escapes are decoded, so "a" and "\u0061" are one name, as JSON.parse sees them.
      const name = escaped ? (JSON.parse(literal) as string) : literal.slice(1, -1);
      if (members.has(name)) return name;
      members.add(name);
    }
  }
  return undefined;
}

/** Iterative, so a hostile nesting depth cannot overflow the stack while being measured. */
function depthExceeds(root: unknown, maxDepth: number): boolean {
  const stack: [unknown, number][] = [[root, 1]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (depth > maxDepth) return true;
    if (value !== null && typeof value === 'object') {
      for (const inner of Object.values(value)) if (inner !== null && typeof inner === 'object') stack.push([inner, depth + 1]);
    }
  }
  return false;
}

function hasBody(headers: Record<string, string | string[] | undefined>): boolean {
  return headers['transfer-encoding'] !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0');
}

/**
 * RFC 6749 §3.1 and §3.2: "Parameters sent without a value MUST be treated as if they were
 * omitted from the request", so `scope=` is no scope asked for, not a malformed one. Such
 * a parameter still counts as present when repeated.
 */
export function parseForm(text: string, maxParameters: number): RequestBody {
  const body: RequestBody = Object.create(null);
  const seen = new Set<string>();
  let count = 0;
  for (const [key, value] of new URLSearchParams(text)) {
    if (++count > maxParameters) throw new InvalidRequestError(`too many parameters (at most ${maxParameters})`);
    if (seen.has(key) && !MULTI_VALUED.has(key)) throw repeatedParameter(key);
    seen.add(key);
    if (value === '') continue;
    const earlier = body[key];
    body[key] = earlier === undefined ? value : [earlier, value].flat();
  }
  return body;
}

const repeatedParameter = (name: string) => new InvalidRequestError(`parameter "${name.slice(0, 64)}" is repeated`);

/** RFC 8707 §2: `resource` may be sent more than once; it arrives as an array then. */
const MULTI_VALUED = new Set(['resource']);
