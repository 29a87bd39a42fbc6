/**
 * MongoDB wire protocol framing: the message header, OP_MSG (opcode 2013) in both
 * directions, the legacy OP_QUERY (2004) the driver uses for its first handshake, and the
 * OP_REPLY (1) answering it.
 * https://www.mongodb.com/docs/manual/reference/mongodb-wire-protocol/
 */
import { BSON, type Document } from 'bson';

export const OP_REPLY = 1;
export const OP_QUERY = 2004;
export const OP_COMPRESSED = 2012;
export const OP_MSG = 2013;

const HEADER_SIZE = 16;
/** mongod's maxMessageSizeBytes; anything longer is a corrupt stream. */
export const MAX_MESSAGE_SIZE = 48_000_000;

const CHECKSUM_PRESENT = 1 << 0;
const MORE_TO_COME = 1 << 1;

/** Deserialisation used for every request: numbers become JS numbers, as the driver does. */
const READ_OPTIONS = { promoteLongs: true, promoteValues: true, promoteBuffers: false, bsonRegExp: false } as const;

export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

export interface MessageHeader {
  readonly length: number;
  readonly requestId: number;
  readonly responseTo: number;
  readonly opCode: number;
}

export interface OpMsgRequest {
  readonly kind: 'msg';
  readonly header: MessageHeader;
  /** The kind-0 body with every kind-1 document sequence attached under its identifier. */
  readonly command: Document;
  /** The client expects no reply (unacknowledged write). */
  readonly moreToCome: boolean;
}

export interface OpQueryRequest {
  readonly kind: 'query';
  readonly header: MessageHeader;
  readonly collection: string;
  readonly query: Document;
}

export type Request = OpMsgRequest | OpQueryRequest | { readonly kind: 'unsupported'; readonly header: MessageHeader };

/**
 * Splits complete messages off the front of `buffer`. Returns the messages and the
 * unconsumed rest (a partial message waiting for more bytes).
 */
export function splitMessages(buffer: Buffer): { messages: Buffer[]; rest: Buffer } {
  const messages: Buffer[] = [];
  let offset = 0;
  while (buffer.length - offset >= 4) {
    const length = buffer.readInt32LE(offset);
    if (length < HEADER_SIZE || length > MAX_MESSAGE_SIZE) throw new ProtocolError(`invalid message length ${length}`);
    if (buffer.length - offset < length) break;
    messages.push(buffer.subarray(offset, offset + length));
    offset += length;
  }
  return { messages, rest: buffer.subarray(offset) };
}

export function parseRequest(message: Buffer): Request {
  const header: MessageHeader = {
    length: message.readInt32LE(0),
    requestId: message.readInt32LE(4),
    responseTo: message.readInt32LE(8),
    opCode: message.readInt32LE(12),
  };
  switch (header.opCode) {
    case OP_MSG:
      return parseOpMsg(header, message);
    case OP_QUERY:
      return parseOpQuery(header, message);
    default:
      return { kind: 'unsupported', header };
  }
}

function parseOpMsg(header: MessageHeader, message: Buffer): OpMsgRequest {
  const flags = readUInt32(message, HEADER_SIZE);
  // The CRC-32C trailer is tolerated but not verified: TCP on loopback does not corrupt.
  const end = flags & CHECKSUM_PRESENT ? message.length - 4 : message.length;
  let offset = HEADER_SIZE + 4;
  let body: Document | undefined;
  const sequences: [string, Document[]][] = [];
  while (offset < end) {
    const kind = message[offset];
    offset += 1;
    if (kind === 0) {
      const size = readDocumentSize(message, offset, end);
      if (body) throw new ProtocolError('OP_MSG has more than one kind-0 section');
      body = deserialize(message.subarray(offset, offset + size));
      offset += size;
    } else if (kind === 1) {
      const size = readInt32(message, offset);
      const sectionEnd = offset + size;
      if (size < 5 || sectionEnd > end) throw new ProtocolError('OP_MSG document sequence overruns the message');
      const nameEnd = message.indexOf(0, offset + 4);
      if (nameEnd < 0 || nameEnd >= sectionEnd) throw new ProtocolError('OP_MSG document sequence has no identifier');
      const identifier = message.toString('utf8', offset + 4, nameEnd);
      const documents: Document[] = [];
      let cursor = nameEnd + 1;
      while (cursor < sectionEnd) {
        const docSize = readDocumentSize(message, cursor, sectionEnd);
        documents.push(deserialize(message.subarray(cursor, cursor + docSize)));
        cursor += docSize;
      }
      sequences.push([identifier, documents]);
      offset = sectionEnd;
    } else {
      throw new ProtocolError(`unknown OP_MSG section kind ${String(kind)}`);
    }
  }
  if (!body) throw new ProtocolError('OP_MSG has no kind-0 section');
  for (const [identifier, documents] of sequences) {
    if (identifier in body) throw new ProtocolError(`OP_MSG field '${identifier}' appears in the body and as a document sequence`);
    body[identifier] = documents;
  }
  return { kind: 'msg', header, command: body, moreToCome: (flags & MORE_TO_COME) !== 0 };
}

function parseOpQuery(header: MessageHeader, message: Buffer): OpQueryRequest {
  const nameStart = HEADER_SIZE + 4;
  const nameEnd = message.indexOf(0, nameStart);
  if (nameEnd < 0) throw new ProtocolError('OP_QUERY has no collection name');
  const collection = message.toString('utf8', nameStart, nameEnd);
  const queryStart = nameEnd + 1 + 8;
  const size = readDocumentSize(message, queryStart, message.length);
  return { kind: 'query', header, collection, query: deserialize(message.subarray(queryStart, queryStart + size)) };
}

/** An OP_MSG reply with one kind-0 section and no flags. */
export function encodeOpMsg(responseTo: number, requestId: number, document: Document): Buffer {
  const body = serialize(document);
  const header = Buffer.alloc(HEADER_SIZE + 4 + 1);
  header.writeInt32LE(header.length + body.length, 0);
  header.writeInt32LE(requestId, 4);
  header.writeInt32LE(responseTo, 8);
  header.writeInt32LE(OP_MSG, 12);
  header.writeUInt32LE(0, 16);
  header.writeUInt8(0, 20);
  return Buffer.concat([header, body]);
}

/** An OP_REPLY carrying one document, as mongod answers a legacy OP_QUERY command. */
export function encodeOpReply(responseTo: number, requestId: number, document: Document): Buffer {
  const body = serialize(document);
  const header = Buffer.alloc(HEADER_SIZE + 20);
  header.writeInt32LE(header.length + body.length, 0);
  header.writeInt32LE(requestId, 4);
  header.writeInt32LE(responseTo, 8);
  header.writeInt32LE(OP_REPLY, 12);
  header.writeInt32LE(0, 16); // responseFlags
  header.writeBigInt64LE(0n, 20); // cursorID
  header.writeInt32LE(0, 28); // startingFrom
  header.writeInt32LE(1, 32); // numberReturned
  return Buffer.concat([header, body]);
}

export function serialize(document: Document): Buffer {
  return Buffer.from(BSON.serialize(document, { ignoreUndefined: true }));
}

export function deserialize(bytes: Uint8Array): Document {
  try {
    return BSON.deserialize(bytes, READ_OPTIONS);
  } catch (err) {
    throw new ProtocolError(`invalid BSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function readDocumentSize(message: Buffer, offset: number, end: number): number {
  const size = readInt32(message, offset);
  if (size < 5 || offset + size > end) throw new ProtocolError('BSON document overruns the message');
  return size;
}

function readInt32(message: Buffer, offset: number): number {
  if (offset + 4 > message.length) throw new ProtocolError('message truncated');
  return message.readInt32LE(offset);
}

function readUInt32(message: Buffer, offset: number): number {
  if (offset + 4 > message.length) throw new ProtocolError('message truncated');
  return message.readUInt32LE(offset);
}
