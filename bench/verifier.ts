/**
 * The verifier kit's hot path, in this process: `verifier.verify()` against bare jose
 * `jwtVerify` with a local key (imported once), on the same RS256 tokens, CONCURRENCY
 * calls in flight, the sides taking turns in the same rounds.
 *
 *  - distinct: every token is seen once by its verifier;
 *  - repeated: each token is seen 20 times, the presentations shuffled together (an API
 *    whose clients call it many times per token lifetime).
 *
 * A pass is one sequence of tokens given to a new verifier (a new API process with an
 * empty cache: its key set comes from an in-process `fetch`, no network), so that every
 * token is seen exactly as often as the workload says however long the run. Bare jose
 * keeps no state and runs the same sequences.
 */
import { generateKeyPairSync, randomBytes, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { importJWK, jwtVerify, type JWK } from 'jose';
import { createVerifier, type Verifier } from '../packages/verifier/src/index.js';
import { percentile } from './stats.js';

const ISSUER = 'https://auth.bench.test';
const AUDIENCE = 'https://api.bench.test';
/** Distinct tokens signed for the run; the repeated sequence uses them 20 times each. */
const TOKENS = 2000;
export const REPEATS = 20;

export interface SideResult {
  readonly name: string;
  readonly ops: number;
  readonly seconds: number;
  readonly rate: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
}

export interface VerifierBench {
  readonly distinct: { readonly kit: SideResult; readonly jose: SideResult };
  readonly repeated: { readonly kit: SideResult; readonly jose: SideResult };
  readonly tokens: number;
  readonly tokenBytes: number;
}

interface Side {
  readonly name: string;
  /** Runs for `seconds`, returns ops done and their latencies (ms). */
  part(seconds: number): Promise<{ ops: number; seconds: number; latencies: number[]; errors: number }>;
}

export interface Timing {
  readonly rounds: number;
  readonly roundSeconds: number;
  readonly warmupSeconds: number;
  readonly concurrency: number;
  readonly progress: (line: string) => void;
}

export async function benchVerifier(options: Timing): Promise<VerifierBench> {
  const { concurrency } = options;
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...(publicKey.export({ format: 'jwk' }) as JWK), kid: 'bench-key', alg: 'RS256', use: 'sig' };
  const tokens = await signTokens(privateKey, jwk.kid, TOKENS);
  const repeated = shuffled(tokens.flatMap((token) => Array.from({ length: REPEATS }, () => token)));

  const jwksBody = JSON.stringify({ keys: [jwk] });
  const newVerifier = (): Verifier =>
    createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUri: `${ISSUER}/jwks`,
      algorithms: ['RS256'],
      fetch: async () => new Response(jwksBody, { headers: { 'content-type': 'application/json', 'cache-control': 'max-age=3600' } }),
    });
  const joseKey = await importJWK(jwk, 'RS256');
  const joseVerify = (token: string) =>
    jwtVerify(token, joseKey, {
      algorithms: ['RS256'],
      issuer: ISSUER,
      audience: AUDIENCE,
      typ: 'at+jwt',
      requiredClaims: ['sub', 'client_id', 'jti', 'exp', 'iat'],
    });

  /** `concurrency` callers walking `sequence` in order; a new pass (and, for the kit, a new verifier) at its end. */
  const side = (name: string, sequence: readonly string[], verifyWith: () => (token: string) => Promise<unknown>): Side => ({
    name,
    async part(seconds) {
      let verify = verifyWith();
      let next = 0;
      let ops = 0;
      let errors = 0;
      const latencies: number[] = [];
      const started = performance.now();
      const end = started + seconds * 1000;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (performance.now() < end) {
            if (next === sequence.length) {
              next = 0;
              verify = verifyWith();
            }
            const token = sequence[next++]!;
            const at = performance.now();
            try {
              await verify(token);
              ops += 1;
            } catch {
              errors += 1;
            }
            latencies.push(performance.now() - at);
          }
        }),
      );
      return { ops, seconds: (performance.now() - started) / 1000, latencies, errors };
    },
  });

  const kit = () => {
    const verifier = newVerifier();
    return (token: string) => verifier.verify(token);
  };
  const jose = () => joseVerify;

  const [distinctKit, distinctJose] = await together(options, [
    side('verifier.verify, distinct tokens', tokens, kit),
    side('bare jose jwtVerify, distinct tokens', tokens, jose),
  ]);
  const [repeatedKit, repeatedJose] = await together(options, [
    side(`verifier.verify, each token ${REPEATS}×`, repeated, kit),
    side(`bare jose jwtVerify, each token ${REPEATS}×`, repeated, jose),
  ]);
  return {
    distinct: { kit: distinctKit!, jose: distinctJose! },
    repeated: { kit: repeatedKit!, jose: repeatedJose! },
    tokens: TOKENS,
    tokenBytes: tokens[0]!.length,
  };
}

/** Each side warms up, then they take turns for `rounds` runs, so a slow stretch of the machine falls on both. */
async function together(options: Timing, sides: readonly Side[]): Promise<SideResult[]> {
  const { rounds, roundSeconds, warmupSeconds } = options;
  for (const entry of sides) if (warmupSeconds > 0) await entry.part(warmupSeconds);
  const parts = sides.map(() => ({ ops: 0, seconds: 0, errors: 0, latencies: [] as number[] }));
  for (let round = 0; round < rounds; round += 1) {
    for (const [index, entry] of sides.entries()) {
      const part = await entry.part(roundSeconds);
      const total = parts[index]!;
      total.ops += part.ops;
      total.seconds += part.seconds;
      total.errors += part.errors;
      for (const latency of part.latencies) total.latencies.push(latency);
    }
  }
  return sides.map((entry, index) => {
    const { ops, seconds, errors, latencies } = parts[index]!;
    latencies.sort((a, b) => a - b);
    const result = { name: entry.name, ops, seconds, rate: ops / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99), errors };
    options.progress(
      `  ${result.name}: ${result.rate.toFixed(0)} /s, p50 ${result.p50.toFixed(3)} ms, p99 ${result.p99.toFixed(3)} ms${errors ? `, ${errors} ERRORS` : ''}`,
    );
    return result;
  });
}

/** Tokens as the authority issues them to users (src/tokens/access-token.ts), valid for an hour. */
function signTokens(privateKey: KeyObject, kid: string, count: number): Promise<string[]> {
  const header = Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'at+jwt', kid })).toString('base64url');
  const iat = Math.floor(Date.now() / 1000);
  const one = (): Promise<string> => {
    const claims = {
      iss: ISSUER,
      sub: randomBytes(12).toString('hex'),
      aud: AUDIENCE,
      exp: iat + 3600,
      iat,
      nbf: iat,
      jti: randomBytes(16).toString('base64url'),
      client_id: 'bench-app',
      scope: 'profile email',
      email: 'bench@example.com',
      roles: ['user'],
      sid: randomBytes(16).toString('base64url'),
    };
    const input = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
    return new Promise((resolve, reject) => {
      cryptoSign('sha256', Buffer.from(input), privateKey, (err, signature) => (err ? reject(err) : resolve(`${input}.${signature.toString('base64url')}`)));
    });
  };
  return Promise.all(Array.from({ length: count }, one));
}

/** Fisher–Yates with a fixed seed: the same order every run. */
function shuffled<T>(items: T[]): T[] {
  let seed = 42;
  for (let index = items.length - 1; index > 0; index -= 1) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const other = seed % (index + 1);
    [items[index], items[other]] = [items[other]!, items[index]!];
  }
  return items;
}
