/**
 * The grant registry is the one list of grant types: what the token endpoint serves, what a
 * client may be created with, and what a MongoDB client document may name.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { planClient, type NewClientInput } from '../../src/admin/accounts.js';
import { InvalidRequestError } from '../../src/errors.js';
import { GRANT_TYPES, grantFor, isGrantType } from '../../src/oauth/grants/index.js';
import { cryptoRandom } from '../../src/random.js';
import { createMongoConnection, createMongoStores, type MongoConnection } from '../../src/stores/mongo/connection.js';
import { testDatabaseUri } from '../support/mongo.js';

const base: NewClientInput = { name: 'App', grants: [], scopes: [], audiences: [], permissions: [], public: false, firstParty: false, cookieMode: false };

describe('the grant registry', () => {
  it('names each registered grant once and finds its module by grant_type', () => {
    expect(new Set(GRANT_TYPES).size).toBe(GRANT_TYPES.length);
    for (const type of GRANT_TYPES) expect(grantFor(type)?.grantType).toBe(type);
    for (const other of ['implicit', 'authorization_code ', '', 'toString', '__proto__']) {
      expect(grantFor(other)).toBeUndefined();
      expect(isGrantType(other)).toBe(false);
    }
  });

  it("applies each grant's client rule when a client is planned, in the terms of the script's flags", () => {
    expect(() => planClient(cryptoRandom, { ...base, grants: ['password'] })).toThrow(/the password grant needs --first-party/);
    expect(() => planClient(cryptoRandom, { ...base, public: true, firstParty: true, grants: ['client_credentials'] })).toThrow(
      /cannot use client_credentials/,
    );
    expect(() => planClient(cryptoRandom, { ...base, grants: ['implicit'] })).toThrow(InvalidRequestError);
    const planned = planClient(cryptoRandom, { ...base, public: true, firstParty: true });
    expect(planned.record.grantTypes).toEqual(['password', 'refresh_token']);
  });

  it('refuses a client id that could be taken for a user id (RFC 9068 §6)', () => {
    expect(() => planClient(cryptoRandom, { ...base, grants: ['client_credentials'], clientId: '5f8d0d55b54764421b7156c9' })).toThrow(
      /must not look like a user id/,
    );
    expect(planClient(cryptoRandom, { ...base, grants: ['client_credentials'], clientId: '5F8D0D55B54764421B7156C9' }).record.clientId).toBe(
      '5F8D0D55B54764421B7156C9',
    );
  });

  it('keeps the redirect URIs a client registers, each checked', () => {
    const uris = ['https://app.example.com/cb', 'http://127.0.0.1/cb'];
    expect(planClient(cryptoRandom, { ...base, grants: ['client_credentials'], redirectUris: [...uris, uris[0]!], requirePar: true }).record).toMatchObject({
      redirectUris: uris,
      requirePar: true,
    });
    expect(() => planClient(cryptoRandom, { ...base, grants: ['client_credentials'], redirectUris: ['https://app.example.com/*'] })).toThrow(
      /--redirect-uri .* wildcard/,
    );
  });
});

describe('the MongoDB client schema', () => {
  let connection: MongoConnection;
  beforeAll(async () => {
    connection = createMongoConnection(testDatabaseUri(inject('mongoUri'), 'grant-registry'), { grantTypes: GRANT_TYPES });
    await connection.init();
  });
  afterAll(async () => {
    await connection.models.User.db.dropDatabase();
    await connection.close();
  });

  it('accepts the registered grants and refuses a client document naming any other', async () => {
    const { clients } = createMongoStores(connection);
    const record = { ...planClient(cryptoRandom, { ...base, grants: ['client_credentials'] }).record };
    await expect(clients.create({ ...record, grantTypes: [...GRANT_TYPES] })).resolves.toMatchObject({});
    await expect(clients.create({ ...record, clientId: 'other-client', grantTypes: ['implicit' as never] })).rejects.toThrow(/implicit/);
    expect(await clients.findById('other-client')).toBeNull();
  });
});
