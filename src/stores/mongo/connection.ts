/**
 * One MongoDB connection (a mongoose Connection of its own, never the global one) with the
 * user and client models registered on it.
 */
import mongoose from 'mongoose';
import { systemClock, type Clock } from '../../clock.js';
import { StoreUnavailableError, type ClientStore, type ConsentStore, type Pingable, type UserStore } from '../types.js';
import { createMongoClientStore } from './clients.js';
import { createMongoConsentStore } from './consents.js';
import { translate } from './errors.js';
import { registerModels, type MongoModels } from './models.js';
import { createMongoUserStore } from './users.js';

export interface MongoConnectionOptions {
  /** How long an operation waits for a reachable server before failing (ms, default 5000). */
  readonly serverSelectionTimeoutMS?: number;
  /**
   * How long a sent operation may wait for its reply (ms, default 5000): a server that
   * still answers heartbeats but not operations (overloaded, stalled on a lock, waiting for
   * a write majority) must not hold requests, and pool connections, without end.
   */
  readonly operationTimeoutMS?: number;
  /** Source of `createdAt`/`updatedAt`/`passwordChangedAt` (default: the system clock). */
  readonly clock?: Clock;
  /** The grant types a client document may name (the grant registry's `GRANT_TYPES`). */
  readonly grantTypes?: readonly string[];
}

export interface MongoConnection extends Pingable {
  readonly models: MongoModels;
  readonly clock: Clock;
  /** Waits for the first connection and builds the unique indexes the stores rely on. */
  init(): Promise<void>;
  close(): Promise<void>;
}

const STORE = 'mongodb';

export function createMongoConnection(uri: string, options: MongoConnectionOptions = {}): MongoConnection {
  const connection = mongoose.createConnection(uri, {
    serverSelectionTimeoutMS: options.serverSelectionTimeoutMS ?? 5_000,
    connectTimeoutMS: 5_000,
    // A reply later than this closes the connection and fails the operation as a network
    // timeout (StoreUnavailableError → 503). Our operations are single-document reads and
    // writes; the index builds at start-up are on fields that are already indexed after
    // the first start.
    socketTimeoutMS: options.operationTimeoutMS ?? 5_000,
    // Fail fast while disconnected (StoreUnavailableError → 503) instead of queueing
    // operations in mongoose's buffer for 10 s.
    bufferCommands: false,
    autoIndex: false,
    autoCreate: false,
  });
  // Connection failures surface through init(), ping() and each operation as
  // StoreUnavailableError; the event would otherwise crash the process as an unhandled 'error'.
  connection.on('error', () => undefined);
  const clock = options.clock ?? systemClock;
  const models = registerModels(connection, clock, options.grantTypes);

  return {
    models,
    clock,
    async init() {
      await translate(STORE, async () => {
        await connection.asPromise();
        // createIndexes, not syncIndexes: never drop an index someone added by hand.
        await Promise.all([models.User.createIndexes(), models.Client.createIndexes(), models.Consent.createIndexes()]);
      });
    },
    async ping() {
      const db = connection.db;
      if (connection.readyState !== mongoose.ConnectionStates.connected || !db) throw new StoreUnavailableError(STORE);
      await translate(STORE, () => db.admin().command({ ping: 1 }));
    },
    async close() {
      await connection.close();
    },
  };
}

/** The stores backed by `connection`; call `connection.init()` first so the unique indexes exist. */
export function createMongoStores(connection: MongoConnection): { users: UserStore; clients: ClientStore; consents: ConsentStore } {
  return {
    consents: createMongoConsentStore({ models: connection.models, clock: connection.clock, ping: () => connection.ping() }),
    users: createMongoUserStore({ models: connection.models, clock: connection.clock, ping: () => connection.ping() }),
    clients: createMongoClientStore({ models: connection.models, clock: connection.clock, ping: () => connection.ping() }),
  };
}
