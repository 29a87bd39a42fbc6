import type { z } from 'zod';
import type { ClientRecord, GrantType, UseContext } from '../../stores/types.js';
import type { UserService } from '../../users/service.js';
import type { TokenResponse, TokenService } from '../token-service.js';

/** What every grant handler may use. */
export interface GrantDeps {
  readonly tokens: TokenService;
  readonly users: Pick<UserService, 'login'>;
}

export interface GrantRequest<P> {
  readonly client: ClientRecord;
  readonly params: P;
  readonly context: UseContext & { readonly ip: string };
}

/** One module per grant type, all with the same shape, picked from a Map by `grant_type`. */
export interface Grant<S extends z.ZodType = z.ZodType> {
  readonly grantType: GrantType;
  /** The grant's own parameters (RFC 6749 §4.3.2, §4.4.2, §6). */
  readonly parameters: S;
  handle(request: GrantRequest<z.output<S>>, deps: GrantDeps): Promise<TokenResponse>;
}
