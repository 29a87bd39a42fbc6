/**
 * An in-process MongoDB server for tests on machines without `mongod`: a TCP listener on
 * 127.0.0.1 speaking the wire protocol to the real driver (through mongoose), with
 * in-memory storage. What it does not implement it refuses with a MongoDB error, so
 * a test never passes on a feature it lacks; see `implementedCommands()`.
 */
import { createServer, type Socket } from 'node:net';
import { CursorRegistry } from './cursors.js';
import { runCommand, type ServerState } from './commands.js';
import { CommandFailure } from './errors.js';
import { Storage } from './storage.js';
import { ProtocolError, encodeOpMsg, encodeOpReply, parseRequest, splitMessages, type Request } from './wire.js';

export { implementedCommands } from './commands.js';

export interface MongoEmulator {
  /** `mongodb://127.0.0.1:<port>`, without a database name. */
  readonly uri: string;
  readonly port: number;
  /** Closes every connection and the listener, and forgets all data. */
  stop(): Promise<void>;
  /** Stall tests: requests are held unanswered (as by a SIGSTOP of mongod) until `resume`, then answered in order. */
  pause(): void;
  resume(): void;
}

/** Commands the legacy OP_QUERY path serves: only the handshake, as in mongod ≥ 5.1. */
const OP_QUERY_COMMANDS = new Set(['hello', 'isMaster', 'ismaster']);

export async function startMongoEmulator(): Promise<MongoEmulator> {
  const state: ServerState = { storage: new Storage(), cursors: new CursorRegistry() };
  const sockets = new Set<Socket>();
  let connectionCount = 0;
  let requestCount = 0;
  let held: (() => void)[] | undefined;

  const server = createServer((socket) => {
    sockets.add(socket);
    const connectionId = ++connectionCount;
    let pending = Buffer.alloc(0);
    socket.setNoDelay(true);
    socket.on('close', () => sockets.delete(socket));
    // A client vanishing mid-write is normal in tests (killed workers): nothing to report.
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => (held ? held.push(() => receive(chunk)) : receive(chunk)));
    const receive = (chunk: Buffer) => {
      // Never throws: this runs in the test runner's own process.
      try {
        const { messages, rest } = splitMessages(pending.length === 0 ? chunk : Buffer.concat([pending, chunk]));
        pending = Buffer.from(rest);
        for (const message of messages) {
          const reply = answer(parseRequest(message), state, connectionId, ++requestCount);
          if (reply && !socket.destroyed) socket.write(reply);
        }
      } catch {
        // A corrupt stream (ProtocolError) cannot be resynchronised, and a reply that cannot
        // be encoded leaves the client waiting: mongod closes the connection in both cases.
        socket.destroy();
      }
    };
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (!address || typeof address !== 'object') throw new Error('mongo emulator: no listening address');
  const port = address.port;

  return {
    uri: `mongodb://127.0.0.1:${port}`,
    port,
    pause() {
      held ??= [];
    },
    resume() {
      const run = held ?? [];
      held = undefined;
      for (const receive of run) receive();
    },
    async stop() {
      held = undefined;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
      state.cursors.clear();
      state.storage.clear();
    },
  };
}

function answer(request: Request, state: ServerState, connectionId: number, requestId: number): Buffer | undefined {
  switch (request.kind) {
    case 'msg': {
      const reply = runCommand(request.command, state, connectionId);
      // moreToCome: an unacknowledged (w: 0) write; the client reads no reply.
      return request.moreToCome ? undefined : encodeOpMsg(request.header.requestId, requestId, reply);
    }
    case 'query': {
      const command = unwrapLegacyQuery(request.query);
      const name = Object.keys(command)[0] ?? '';
      const reply =
        request.collection.endsWith('.$cmd') && OP_QUERY_COMMANDS.has(name)
          ? runCommand({ ...command, $db: request.collection.slice(0, -'.$cmd'.length) }, state, connectionId)
          : new CommandFailure(352, `Unsupported OP_QUERY command: ${name}. The client driver may require an upgrade.`).toReply();
      return encodeOpReply(request.header.requestId, requestId, reply);
    }
    case 'unsupported':
      // OP_COMPRESSED is never negotiated and the legacy write opcodes are gone since 5.1.
      throw new ProtocolError(`unsupported opcode ${request.header.opCode}`);
  }
}

/** Legacy commands may wrap the command as `{ $query: {...}, $readPreference: ... }`. */
function unwrapLegacyQuery(query: Record<string, unknown>): Record<string, unknown> {
  const inner = query.$query;
  return inner && typeof inner === 'object' && !Array.isArray(inner) ? (inner as Record<string, unknown>) : query;
}
