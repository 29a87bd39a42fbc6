/**
 * Mongoose schemas of the user and client collections, registered on one connection (never
 * on the global mongoose instance). Indexes are declared here and built by
 * `MongoConnection.init()`, not by mongoose's autoIndex, so a failing build fails start-up.
 */
import { Schema, type Connection, type Model, type Types } from 'mongoose';
import type { Clock } from '../../clock.js';
import type { ClientPermission, ClientRecord } from '../types.js';

export interface UserDocument {
  _id: Types.ObjectId;
  email: string;
  name?: string | undefined;
  /** argon2id; `select: false`, so only an explicit `+passwordHash` query sees it. */
  passwordHash: string;
  roles: string[];
  disabled: boolean;
  emailVerified?: boolean | undefined;
  passwordChangedAt: Date;
  passwordChangedBy?: string | undefined;
  /** Logout-alls so far (absent on documents written before it existed: 0). */
  signOuts?: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface ClientDocument {
  _id: Types.ObjectId;
  clientId: string;
  name: string;
  type: 'public' | 'confidential';
  firstParty: boolean;
  grantTypes: ClientRecord['grantTypes'][number][];
  scopes: string[];
  audiences: string[];
  permissions: ClientPermission[];
  cookieMode: boolean;
  redirectUris: string[];
  requirePar: boolean;
  postLogoutRedirectUris: string[];
  backchannelLogoutUri?: string | undefined;
  idTokenSignedResponseAlg?: string | undefined;
  secretHash?: string | undefined;
  createdAt: Date;
}

export interface ConsentDocument {
  _id: Types.ObjectId;
  userId: string;
  clientId: string;
  scopes: string[];
  createdAt: Date;
  updatedAt: Date;
}

export interface MongoModels {
  readonly User: Model<UserDocument>;
  readonly Client: Model<ClientDocument>;
  readonly Consent: Model<ConsentDocument>;
}

const PERMISSIONS: readonly ClientPermission[] = ['introspect', 'revoke', 'admin'];

/**
 * `grantTypes`: the grant registry's list (`oauth/grants`), passed in by whoever opens the
 * connection so that this layer imports nothing from the protocol layer; a client
 * document naming any other grant is refused on write. Absent (tests), any string passes.
 */
export function registerModels(connection: Connection, clock: Clock, grantTypes?: readonly string[]): MongoModels {
  const currentTime = () => new Date(clock.now());
  // strict 'throw': a field outside the schema is a bug in the adapter, not data to drop.
  const common = { strict: 'throw', strictQuery: true, versionKey: false, autoIndex: false, autoCreate: false } as const;

  const userSchema = new Schema<UserDocument>(
    {
      email: { type: String, required: true },
      name: { type: String },
      passwordHash: { type: String, required: true, select: false },
      roles: { type: [String], default: [] },
      disabled: { type: Boolean, default: false },
      emailVerified: { type: Boolean, default: false },
      passwordChangedAt: { type: Date, required: true },
      passwordChangedBy: { type: String },
      signOuts: { type: Number, default: 0 },
    },
    { ...common, collection: 'users', timestamps: { currentTime } },
  );
  userSchema.index({ email: 1 }, { unique: true, name: 'email_1' });

  const clientSchema = new Schema<ClientDocument>(
    {
      clientId: { type: String, required: true },
      name: { type: String, required: true },
      type: { type: String, enum: ['public', 'confidential'], required: true },
      firstParty: { type: Boolean, default: false },
      grantTypes: { type: [{ type: String, ...(grantTypes ? { enum: [...grantTypes] } : {}) }], default: [] },
      scopes: { type: [String], default: [] },
      audiences: { type: [String], default: [] },
      permissions: { type: [{ type: String, enum: PERMISSIONS }], default: [] },
      cookieMode: { type: Boolean, default: false },
      redirectUris: { type: [String], default: [] },
      requirePar: { type: Boolean, default: false },
      postLogoutRedirectUris: { type: [String], default: [] },
      backchannelLogoutUri: { type: String },
      idTokenSignedResponseAlg: { type: String },
      secretHash: { type: String },
    },
    { ...common, collection: 'clients', timestamps: { createdAt: true, updatedAt: false, currentTime } },
  );
  clientSchema.index({ clientId: 1 }, { unique: true, name: 'clientId_1' });

  const consentSchema = new Schema<ConsentDocument>(
    {
      userId: { type: String, required: true },
      clientId: { type: String, required: true },
      scopes: { type: [String], default: [] },
      createdAt: { type: Date, required: true },
      updatedAt: { type: Date, required: true },
    },
    { ...common, collection: 'consents' },
  );
  consentSchema.index({ userId: 1, clientId: 1 }, { unique: true, name: 'userId_1_clientId_1' });

  return {
    User: connection.model<UserDocument>('User', userSchema),
    Client: connection.model<ClientDocument>('Client', clientSchema),
    Consent: connection.model<ConsentDocument>('Consent', consentSchema),
  };
}
