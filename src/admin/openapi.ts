/**
 * The admin API's OpenAPI 3.1 document, served at GET /admin/openapi.json. Written by hand
 * beside the routes (http/app.ts `mountAdminRoutes`); a test checks that it is a valid
 * OpenAPI 3.1 document and that it lists exactly the routes the router serves.
 */
import { PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX } from './service.js';
import { ID_TOKEN_SIGNING_ALGS } from '../tokens/id-token.js';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object) => ({ 'application/json': { schema } });
const ok = (description: string, schema: object) => ({ description, content: json(schema) });
const error = (description: string) => ({ description, content: json(ref('Error')) });
const strings = { type: 'array', items: { type: 'string' } } as const;
const dateTime = { type: 'string', format: 'date-time' } as const;
/** How the client's ID tokens and logout tokens are signed (OIDC Registration §2). */
const idTokenAlg = {
  type: 'string',
  enum: [...ID_TOKEN_SIGNING_ALGS],
  description: 'RS256 (default) or PS256; PS256 needs ID_TOKEN_SIGNING_ALGS to include it',
} as const;

/** The answers every authenticated operation may give besides its own. */
const refusals = {
  '400': error('Bad input (`invalid_request`), naming the field'),
  '401': error('No, an invalid, an expired or a revoked access token (`invalid_token`)'),
  '403': error('A token without the `admin` scope, or a user’s token (`insufficient_scope`)'),
};
const notFound = { '404': error('No such client, user or session (`not_found`)') };

const clientId = { name: 'client_id', in: 'path', required: true, schema: { type: 'string' } } as const;
const userId = { name: 'user_id', in: 'path', required: true, schema: { type: 'string' } } as const;
const sessionId = {
  name: 'session_id',
  in: 'path',
  required: true,
  description: 'The `sid` of the session’s access tokens',
  schema: { type: 'string' },
} as const;
const paging = [
  { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: PAGE_LIMIT_MAX, default: PAGE_LIMIT_DEFAULT } },
  { name: 'cursor', in: 'query', description: 'The `next_cursor` of the previous page', schema: { type: 'string' } },
] as const;

function operation(summary: string, responses: Record<string, object>, extra: Record<string, unknown> = {}) {
  return { summary, ...extra, responses: { ...responses, ...refusals } };
}

const clientFields = {
  name: { type: 'string', minLength: 1, maxLength: 100 },
  grant_types: { ...strings, description: 'Grant types: authorization_code, client_credentials, password, refresh_token' },
  scopes: strings,
  audiences: { ...strings, description: 'Allowed `aud` values (http(s) URLs); empty = the default AUDIENCE' },
  redirect_uris: strings,
  post_logout_redirect_uris: strings,
  first_party: { type: 'boolean' },
  require_par: { type: 'boolean' },
} as const;

export const ADMIN_OPENAPI = {
  openapi: '3.1.0',
  info: {
    title: 'Token authority admin API',
    version: '1.0.0',
    description:
      'Manages clients, users, their sessions and lists the signing keys. Every operation needs an access token of this authority carrying the `admin` scope, ' +
      'obtained by `client_credentials` by a client with the `admin` permission. Every call is audited (a log line and an `admin.action` security event). ' +
      'Errors are JSON `{"error": "<code>", "error_description": "<text>"}`.',
  },
  servers: [{ url: '/' }],
  security: [{ adminToken: [] }],
  paths: {
    '/admin/openapi.json': {
      get: { summary: 'This document', security: [], responses: { '200': ok('The OpenAPI 3.1 document', { type: 'object' }) } },
    },
    '/admin/clients': {
      get: operation('List clients, in client_id order', { '200': ok('One page of clients', ref('ClientPage')) }, { parameters: paging }),
      post: operation(
        'Create a client; a confidential client’s secret is answered once',
        { '201': ok('The client (and its secret)', ref('ClientWithSecret')), '409': error('The client_id is taken (`conflict`)') },
        { requestBody: { required: true, content: json(ref('NewClient')) } },
      ),
    },
    '/admin/clients/{client_id}': {
      get: operation('Show a client', { '200': ok('The client', ref('ClientEnvelope')), ...notFound }, { parameters: [clientId] }),
      patch: operation(
        'Change a client, checked as creation checks it; takes effect at once on the instance answering, within CLIENT_CACHE_TTL on others',
        { '200': ok('The client as changed', ref('ClientEnvelope')), ...notFound },
        { parameters: [clientId], requestBody: { required: true, content: json(ref('ClientChanges')) } },
      ),
      delete: operation(
        'Delete a client and end its refresh-token families',
        { '200': ok('Deleted', ref('Deleted')), ...notFound },
        { parameters: [clientId] },
      ),
    },
    '/admin/clients/{client_id}/secret': {
      post: operation(
        'Rotate a confidential client’s secret: the new one is answered once, the old one stops working',
        { '200': ok('The client and its new secret', ref('ClientWithSecret')), ...notFound },
        { parameters: [clientId] },
      ),
    },
    '/admin/users': {
      get: operation(
        'List users whose email starts with a prefix, in email order',
        { '200': ok('One page of users', ref('UserPage')) },
        { parameters: [{ name: 'email_prefix', in: 'query', schema: { type: 'string', maxLength: 254, default: '' } }, ...paging] },
      ),
      post: operation(
        'Create a user',
        { '201': ok('The user', ref('UserEnvelope')), '409': error('The email is taken (`conflict`)') },
        { requestBody: { required: true, content: json(ref('NewUser')) } },
      ),
    },
    '/admin/users/{user_id}': {
      get: operation('Show a user', { '200': ok('The user', ref('UserEnvelope')), ...notFound }, { parameters: [userId] }),
      delete: operation('Delete a user and end all of their sessions', { '200': ok('Deleted', ref('Deleted')), ...notFound }, { parameters: [userId] }),
    },
    '/admin/users/{user_id}/roles': {
      put: operation(
        'Replace a user’s roles',
        { '200': ok('The user', ref('UserEnvelope')), ...notFound },
        { parameters: [userId], requestBody: { required: true, content: json(ref('Roles')) } },
      ),
    },
    '/admin/users/{user_id}/disable': {
      post: operation(
        'Disable a user: no login or refresh from now on, every session ended (back-channel logout, security events)',
        { '200': ok('The user and how many sessions ended', ref('UserSessionsEnded')), ...notFound },
        { parameters: [userId] },
      ),
    },
    '/admin/users/{user_id}/enable': {
      post: operation('Enable a disabled user', { '200': ok('The user', ref('UserEnvelope')), ...notFound }, { parameters: [userId] }),
    },
    '/admin/users/{user_id}/sessions': {
      get: operation('List a user’s sessions (refresh-token families)', { '200': ok('The sessions', ref('Sessions')), ...notFound }, { parameters: [userId] }),
      delete: operation('End every session of a user', { '200': ok('How many ended', ref('SessionsEnded')), ...notFound }, { parameters: [userId] }),
    },
    '/admin/users/{user_id}/sessions/{session_id}': {
      delete: operation('End one session of a user', { '200': ok('Ended', ref('SessionsEnded')), ...notFound }, { parameters: [userId, sessionId] }),
    },
    '/admin/keys': {
      get: operation('List the signing keys with their states and dates', { '200': ok('The keys', ref('Keys')) }),
    },
  },
  components: {
    securitySchemes: {
      adminToken: {
        type: 'http',
        scheme: 'bearer',
        bearerFormat: 'JWT',
        description: 'An access token of this authority with the `admin` scope (client_credentials of a client with the `admin` permission)',
      },
    },
    schemas: {
      Error: {
        type: 'object',
        required: ['error', 'error_description'],
        properties: { error: { type: 'string' }, error_description: { type: 'string' } },
      },
      Client: {
        type: 'object',
        required: [
          'client_id',
          'name',
          'type',
          'first_party',
          'grant_types',
          'scopes',
          'audiences',
          'permissions',
          'redirect_uris',
          'id_token_signed_response_alg',
          'created_at',
        ],
        properties: {
          client_id: { type: 'string' },
          type: { type: 'string', enum: ['public', 'confidential'] },
          ...clientFields,
          permissions: { type: 'array', items: { type: 'string', enum: ['introspect', 'revoke', 'admin'] } },
          cookie_mode: { type: 'boolean' },
          backchannel_logout_uri: { type: ['string', 'null'] },
          id_token_signed_response_alg: idTokenAlg,
          created_at: dateTime,
        },
      },
      ClientEnvelope: { type: 'object', required: ['client'], properties: { client: ref('Client') } },
      ClientWithSecret: {
        type: 'object',
        required: ['client'],
        properties: { client: ref('Client'), client_secret: { type: 'string', description: 'Shown this once; only a hash is kept' } },
      },
      ClientPage: {
        type: 'object',
        required: ['clients', 'next_cursor'],
        properties: { clients: { type: 'array', items: ref('Client') }, next_cursor: { type: ['string', 'null'] } },
      },
      NewClient: {
        type: 'object',
        required: ['name'],
        properties: {
          ...clientFields,
          client_id: { type: 'string', pattern: '^[A-Za-z0-9._~-]{3,128}$' },
          permissions: { type: 'array', items: { type: 'string', enum: ['introspect', 'revoke', 'admin'] } },
          public: { type: 'boolean', default: false },
          cookie_mode: { type: 'boolean', default: false },
          backchannel_logout_uri: { type: 'string' },
          id_token_signed_response_alg: idTokenAlg,
        },
      },
      ClientChanges: { type: 'object', additionalProperties: false, minProperties: 1, properties: clientFields },
      User: {
        type: 'object',
        required: ['id', 'email', 'email_verified', 'name', 'roles', 'disabled', 'created_at', 'updated_at'],
        properties: {
          id: { type: 'string' },
          email: { type: 'string' },
          email_verified: { type: 'boolean' },
          name: { type: ['string', 'null'] },
          roles: strings,
          disabled: { type: 'boolean' },
          created_at: dateTime,
          updated_at: dateTime,
        },
      },
      UserEnvelope: { type: 'object', required: ['user'], properties: { user: ref('User') } },
      UserPage: {
        type: 'object',
        required: ['users', 'next_cursor'],
        properties: { users: { type: 'array', items: ref('User') }, next_cursor: { type: ['string', 'null'] } },
      },
      NewUser: {
        type: 'object',
        required: ['email', 'password'],
        properties: { email: { type: 'string' }, password: { type: 'string', writeOnly: true }, roles: strings, name: { type: 'string' } },
      },
      Roles: { type: 'object', required: ['roles'], properties: { roles: strings } },
      UserSessionsEnded: {
        type: 'object',
        required: ['user', 'sessions_ended'],
        properties: { user: ref('User'), sessions_ended: { type: 'integer', minimum: 0 } },
      },
      Session: {
        type: 'object',
        required: ['id', 'client_id', 'created_at', 'last_used_at', 'user_agent'],
        properties: {
          id: { type: 'string' },
          client_id: { type: 'string' },
          created_at: dateTime,
          last_used_at: dateTime,
          user_agent: { type: ['string', 'null'] },
        },
      },
      Sessions: { type: 'object', required: ['sessions'], properties: { sessions: { type: 'array', items: ref('Session') } } },
      SessionsEnded: { type: 'object', required: ['sessions_ended'], properties: { sessions_ended: { type: 'integer', minimum: 0 } } },
      Deleted: {
        type: 'object',
        required: ['deleted', 'sessions_ended'],
        properties: { deleted: { const: true }, sessions_ended: { type: 'integer', minimum: 0 } },
      },
      Keys: {
        type: 'object',
        required: ['keys'],
        properties: {
          keys: {
            type: 'array',
            items: {
              type: 'object',
              required: ['kid', 'alg', 'state', 'created_at', 'activated_at', 'retired_at'],
              properties: {
                kid: { type: 'string' },
                alg: { type: 'string' },
                state: { type: 'string', enum: ['next', 'active', 'retired'] },
                created_at: { type: ['string', 'null'], format: 'date-time' },
                activated_at: { type: ['string', 'null'], format: 'date-time' },
                retired_at: { type: ['string', 'null'], format: 'date-time' },
              },
            },
          },
        },
      },
    },
  },
} as const;
