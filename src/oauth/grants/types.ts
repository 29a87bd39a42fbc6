import type { z } from 'zod';
import type { Clock } from '../../clock.js';
import type { ClientRecord, UseContext } from '../../stores/types.js';
import type { UserService } from '../../users/service.js';
import type { IdTokens } from '../../tokens/id-token.js';
import type { AuthorizationCodes } from '../authorization-codes.js';
import type { TokenResponse, TokenService } from '../token-service.js';

/** What every grant handler may use. */
export interface GrantDeps {
  readonly tokens: TokenService;
  readonly users: Pick<UserService, 'login'>;
  readonly codes: Pick<AuthorizationCodes, 'redeem'>;
  /** OpenID Connect: a refresh of an `openid` family brings a new ID token. */
  readonly idTokens: Pick<IdTokens, 'issue'>;
  /** For when a login checked its user (`issueForUser`'s `signedInAt`). */
  readonly clock: Clock;
}

export interface GrantRequest<P> {
  readonly client: ClientRecord;
  readonly params: P;
  readonly context: UseContext & { readonly ip: string };
}

/**
 * Which clients may hold a grant at all. Checked when a client is created (the admin
 * scripts) and again on every request, so a hand-edited record cannot widen it.
 */
export interface ClientRule {
  allows(client: Pick<ClientRecord, 'type' | 'firstParty' | 'redirectUris'>): boolean;
  /** The `unauthorized_client` description when it does not. */
  readonly refusal: string;
  /** The same, in the terms of `client:create`'s flags. */
  readonly cliRefusal: string;
}

/** One module per grant type, all with the same shape, registered in `index.ts`. */
export interface Grant<S extends z.ZodType = z.ZodType, T extends string = string> {
  readonly grantType: T;
  /** The grant's own parameters (RFC 6749 §4.3.2, §4.4.2, §6). */
  readonly parameters: S;
  readonly clientRule?: ClientRule;
  handle(request: GrantRequest<z.output<S>>, deps: GrantDeps): Promise<TokenResponse>;
}
