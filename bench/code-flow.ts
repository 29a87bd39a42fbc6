/**
 * The authorization code flow as a browser and a client drive it, without a browser:
 * `signIns` runs full sign-ins (GET /oauth/authorize, the login form's POST, the code
 * exchange at /oauth/token) from `users` virtual users at once, each with a cookie jar of
 * its own and a new PKCE pair per sign-in. For the code exchange alone, `authorityCodes`
 * mints codes through the authority's SSO session (no password) and `seededCodes` through a
 * peer's own models; bench/run.ts exchanges them under the same load generator as every
 * other endpoint.
 */
import { createHash, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';

export interface FlowStats {
  readonly rate: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly errors: number;
  readonly samples: string[];
}

export interface FlowTarget {
  readonly url: string;
  readonly clientId: string;
  readonly redirectUri: string;
  readonly email: string;
  readonly password: string;
}

interface Pkce {
  readonly verifier: string;
  readonly challenge: string;
}

const pkce = (): Pkce => {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
};

function authorizeUrl(target: FlowTarget, { challenge }: Pkce): string {
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: target.clientId,
    redirect_uri: target.redirectUri,
    scope: 'profile',
    state: 'bench',
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  return `${target.url}/oauth/authorize?${query}`;
}

/** Cookies of one virtual browser. */
class Jar {
  private readonly cookies = new Map<string, string>();
  header(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }
  take(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const at = pair.indexOf('=');
      this.cookies.set(pair.slice(0, at), pair.slice(at + 1));
    }
  }
}

async function codeFrom(res: Response): Promise<string> {
  await res.arrayBuffer();
  const location = res.headers.get('location');
  const code = location ? new URL(location).searchParams.get('code') : null;
  if (!code) throw new Error(`no code: ${res.status} ${location ?? ''}`);
  return code;
}

/** One full sign-in in `jar`'s browser: the login page, the form post, the code exchange. */
async function signIn(target: FlowTarget, jar: Jar): Promise<void> {
  const pair = pkce();
  const page = await fetch(authorizeUrl(target, pair), { headers: { cookie: jar.header() }, redirect: 'manual' });
  jar.take(page);
  const csrf = /name="csrf" value="([^"]+)"/.exec(await page.text())?.[1];
  if (!csrf) throw new Error(`no login form: ${page.status}`);
  const posted = await fetch(`${target.url}/oauth/authorize/login`, {
    method: 'POST',
    headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf, email: target.email, password: target.password }),
    redirect: 'manual',
  });
  jar.take(posted);
  await exchange({ tokenUrl: `${target.url}/oauth/token`, ...target }, await codeFrom(posted), pair.verifier);
}

/** The form body of a code exchange by a public client (RFC 6749 §4.1.3, RFC 7636 §4.5). */
export function exchangeBody(target: Pick<ExchangeTarget, 'clientId' | 'redirectUri'>, code: string, verifier: string): string {
  return new URLSearchParams({
    grant_type: 'authorization_code',
    client_id: target.clientId,
    redirect_uri: target.redirectUri,
    code,
    code_verifier: verifier,
  }).toString();
}

async function exchange(target: Pick<ExchangeTarget, 'tokenUrl' | 'clientId' | 'redirectUri'>, code: string, verifier: string): Promise<void> {
  const res = await fetch(target.tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: exchangeBody(target, code, verifier),
  });
  const body = (await res.json()) as { access_token?: unknown };
  if (res.status !== 200 || typeof body.access_token !== 'string') throw new Error(`exchange ${res.status}: ${JSON.stringify(body).slice(0, 200)}`);
}

/** Runs `task` from `concurrency` loops for `seconds`; latencies of each call. */
async function closedLoop(concurrency: number, seconds: number, task: (loop: number) => Promise<void>): Promise<FlowStats> {
  const latencies: number[] = [];
  const samples: string[] = [];
  let errors = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, loop) => {
      while (performance.now() < deadline) {
        const at = performance.now();
        try {
          await task(loop);
          latencies.push(performance.now() - at);
        } catch (err) {
          errors += 1;
          if (samples.length < 3) samples.push(err instanceof Error ? err.message : String(err));
        }
      }
    }),
  );
  return stats(latencies, errors, samples, (performance.now() - started) / 1000);
}

function stats(latencies: number[], errors: number, samples: string[], seconds: number): FlowStats {
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return { rate: latencies.length / seconds, p50: at(0.5), p95: at(0.95), p99: at(0.99), errors, samples };
}

export async function signIns(target: FlowTarget, users: number, seconds: number): Promise<FlowStats> {
  return closedLoop(users, seconds, () => signIn(target, new Jar()));
}

/** Where codes are exchanged, and how a batch of them is obtained beforehand. */
export interface ExchangeTarget {
  readonly tokenUrl: string;
  readonly clientId: string;
  readonly redirectUri: string;
  /** `count` fresh codes, each with the PKCE verifier that redeems it. */
  readonly mint: (count: number) => Promise<{ code: string; verifier: string }[]>;
}

const MINT_CONCURRENCY = 32;

/** Codes minted through the authority's SSO session (no password), one PKCE pair each. */
export async function authorityCodes(target: FlowTarget): Promise<ExchangeTarget> {
  const jar = new Jar();
  await signIn(target, jar);
  const mintOne = async () => {
    const pair = pkce();
    const res = await fetch(authorizeUrl(target, pair), { headers: { cookie: jar.header() }, redirect: 'manual' });
    return { code: await codeFrom(res), verifier: pair.verifier };
  };
  return {
    tokenUrl: `${target.url}/oauth/token`,
    clientId: target.clientId,
    redirectUri: target.redirectUri,
    async mint(count) {
      // MINT_CONCURRENCY browsers' worth at once: thousands of requests in flight would only queue.
      const minted: { code: string; verifier: string }[] = [];
      let begun = 0;
      await Promise.all(
        Array.from({ length: MINT_CONCURRENCY }, async () => {
          while (begun < count) {
            begun += 1;
            minted.push(await mintOne());
          }
        }),
      );
      return minted;
    },
  };
}

/** Codes from another server's `seed(count, challenge)`, all redeemed by one verifier. */
export function seededCodes(
  tokenUrl: string,
  clientId: string,
  redirectUri: string,
  seed: (count: number, challenge: string) => Promise<string[]>,
): ExchangeTarget {
  return {
    tokenUrl,
    clientId,
    redirectUri,
    mint: async (count) => {
      const pair = pkce();
      return (await seed(count, pair.challenge)).map((code) => ({ code, verifier: pair.verifier }));
    },
  };
}
