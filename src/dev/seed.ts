/**
 * Dev mode seed data (CONTRACT.md, `npm start`): a first-party public client, a
 * third-party single-page app (authorization code + PKCE), a confidential service client
 * and an admin user. Secrets come from config when given,
 * else are random; they are returned so the entry point can print them once to the
 * terminal (never to the log).
 */
import { generateClientSecret, hashClientSecret } from '../clients/secrets.js';
import type { Random } from '../random.js';
import { DuplicateKeyError, type ClientStore, type UserStore } from '../stores/types.js';
import type { PasswordHasher } from '../users/passwords.js';

export const DEV_PUBLIC_CLIENT_ID = 'demo-app';
export const DEV_SERVICE_CLIENT_ID = 'demo-service';
export const DEV_SPA_CLIENT_ID = 'demo-spa';
/** The admin API's client in dev: the CLI finds its secret in KEYS_DIR (`dev/admin-credentials.ts`). */
export const DEV_ADMIN_CLIENT_ID = 'demo-admin';
/** The first any loopback port matches (RFC 8252 §7.3); the second is Vite's dev server. */
export const DEV_SPA_REDIRECT_URIS: readonly string[] = ['http://127.0.0.1/callback', 'http://localhost:5173/callback'];
export const DEV_USER_EMAIL = 'demo@example.com';

/** Every scope the seeded clients may ask for, published as `scopes_supported` in dev mode. */
export const DEV_SCOPES: readonly string[] = ['openid', 'profile', 'email', 'read', 'write'];

export interface SeedResult {
  /** Set only when the client was created now; an existing one keeps its unknown secret. */
  readonly clientSecret: string | undefined;
  readonly userPassword: string | undefined;
  /** Set only when the admin client was created now. */
  readonly adminClientSecret?: string | undefined;
}

export async function seedDevData(deps: {
  users: Pick<UserStore, 'create'>;
  clients: Pick<ClientStore, 'create'>;
  hasher: Pick<PasswordHasher, 'hash'>;
  random: Random;
  clientSecret: string | undefined;
  userPassword: string | undefined;
}): Promise<SeedResult> {
  const clientSecret = deps.clientSecret ?? generateClientSecret(deps.random);
  const userPassword = deps.userPassword ?? deps.random.token(12);

  await ignoreDuplicate(
    deps.clients.create({
      clientId: DEV_PUBLIC_CLIENT_ID,
      name: 'Demo first-party app',
      type: 'public',
      firstParty: true,
      grantTypes: ['password', 'refresh_token'],
      scopes: ['profile', 'email'],
      audiences: [],
      permissions: [],
      cookieMode: false,
      secretHash: undefined,
    }),
  );
  await ignoreDuplicate(
    deps.clients.create({
      clientId: DEV_SPA_CLIENT_ID,
      name: 'Demo single-page app',
      type: 'public',
      firstParty: false,
      grantTypes: ['authorization_code', 'refresh_token'],
      scopes: ['openid', 'profile', 'email'],
      audiences: [],
      permissions: [],
      cookieMode: false,
      redirectUris: DEV_SPA_REDIRECT_URIS,
      secretHash: undefined,
    }),
  );
  const serviceCreated = await ignoreDuplicate(
    deps.clients.create({
      clientId: DEV_SERVICE_CLIENT_ID,
      name: 'Demo service',
      type: 'confidential',
      firstParty: false,
      grantTypes: ['client_credentials'],
      scopes: ['read', 'write'],
      audiences: [],
      permissions: ['introspect', 'revoke'],
      cookieMode: false,
      secretHash: hashClientSecret(clientSecret),
    }),
  );
  const adminClientSecret = generateClientSecret(deps.random);
  const adminCreated = await ignoreDuplicate(
    deps.clients.create({
      clientId: DEV_ADMIN_CLIENT_ID,
      name: 'Demo admin (the CLI)',
      type: 'confidential',
      firstParty: false,
      grantTypes: ['client_credentials'],
      scopes: ['admin'],
      audiences: [],
      permissions: ['admin'],
      cookieMode: false,
      secretHash: hashClientSecret(adminClientSecret),
    }),
  );
  const userCreated = await ignoreDuplicate(
    deps.users.create({ email: DEV_USER_EMAIL, name: 'Demo User', passwordHash: await deps.hasher.hash(userPassword), roles: ['admin'], emailVerified: true }),
  );
  return {
    clientSecret: serviceCreated ? clientSecret : undefined,
    userPassword: userCreated ? userPassword : undefined,
    adminClientSecret: adminCreated ? adminClientSecret : undefined,
  };
}

async function ignoreDuplicate(creation: Promise<unknown>): Promise<boolean> {
  try {
    await creation;
    return true;
  } catch (err) {
    if (err instanceof DuplicateKeyError) return false;
    throw err;
  }
}
