/**
 * The HTTP server around the Koa app: deliberate timeouts against slow clients, the one
 * JSON error format for requests Node refuses before Koa sees them, and a graceful close
 * that lets in-flight requests finish.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Config } from './config.js';
import type { Logger } from './log.js';

export interface Listening {
  readonly server: Server;
  readonly url: string;
  /** Stops accepting and lets in-flight requests finish (at most `shutdownTimeout`). */
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export async function listen(
  handler: Handler,
  config: Pick<Config, 'http' | 'host' | 'port' | 'shutdownTimeout'>,
  logger: Logger,
  options: { linger?: Linger } = {},
): Promise<Listening> {
  const linger = options.linger ?? LINGER;
  const server = createServer(
    {
      // Slow clients (slow-loris) are cut off: headers and the whole request each have a
      // deadline, checked every half second rather than Node's default 30 s.
      headersTimeout: config.http.headersTimeout * 1000,
      requestTimeout: config.http.requestTimeout * 1000,
      keepAliveTimeout: config.http.keepAliveTimeout * 1000,
      connectionsCheckingInterval: 500,
      maxHeaderSize: 16 * 1024,
    },
    handler,
  );
  server.on('clientError', answerClientError);
  server.on('connection', (socket: Socket) => lingerOnClose(socket, linger));
  const inFlight = new Set<ServerResponse>();
  let stopping = false;
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    currentRequest.set(req.socket, req);
    inFlight.add(res);
    res.once('close', () => inFlight.delete(res));
    if (stopping) res.shouldKeepAlive = false;
  });

  await new Promise<void>((resolve, reject) => {
    // Name the variables to change: "EADDRINUSE" or "ENOTFOUND" alone does not.
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(new Error(`HOST/PORT: cannot listen on ${config.host}:${config.port} (${err.code ?? err.message})`, { cause: err }));
    });
    server.listen(config.port, config.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;

  let closed: Promise<void> | undefined;
  return {
    server,
    url,
    close() {
      closed ??= (async () => {
        stopping = true;
        for (const res of inFlight) res.shouldKeepAlive = false;
        const done = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const deadline = setTimeout(() => {
          logger.warn({ inFlight: inFlight.size }, 'shutdown deadline reached; closing remaining connections');
          server.closeAllConnections();
        }, config.shutdownTimeout * 1000);
        await done;
        clearTimeout(deadline);
      })();
      return closed;
    },
  };
}

/** How long, and how many body bytes, a refused upload is still read (and discarded) after its answer. */
export interface Linger {
  readonly ms: number;
  readonly bytes: number;
}
/** Longer than an 8 MiB upload takes on a slow link's last second, far less than a request timeout. */
export const LINGER: Linger = { ms: 5_000, bytes: 16 * 1024 * 1024 };

const currentRequest = new WeakMap<Socket, IncomingMessage>();

/**
 * A lingering close, as nginx's `lingering_close` and Go's net/http do it. When an answer
 * ends its connection while the request body is still arriving (a chunked body outgrew
 * BODY_LIMIT), Node would destroy the socket as soon as the answer is flushed; the
 * client's next bytes then meet a closed socket, its kernel gets a reset and throws away
 * the answer it had not read yet, so a client that writes before it reads never sees its
 * 413. Instead the write side is closed (FIN after the answer) and the rest of the body is
 * read and discarded until it ends, or for at most `LINGER.ms` and `LINGER.bytes`.
 *
 * Node ends a `Connection: close` response through `socket.destroySoon()` (every version
 * from 0.x to 24), falling back to `socket.end()` where that does not exist; the override
 * below takes the first path and a timer bounds the second.
 */
function lingerOnClose(socket: Socket, linger: Linger): void {
  const target = socket as unknown as { destroySoon?: () => void };
  const destroySoon = target.destroySoon;
  if (typeof destroySoon !== 'function') return;
  target.destroySoon = () => {
    const req = currentRequest.get(socket);
    if (!req || req.complete || socket.destroyed) return destroySoon.call(socket);
    socket.end();
    discardBody(req, socket, linger);
  };
}

function discardBody(req: IncomingMessage, socket: Socket, linger: Linger): void {
  let bytes = 0;
  const stop = () => {
    clearTimeout(timer);
    socket.destroy();
  };
  const timer = setTimeout(stop, linger.ms);
  timer.unref();
  req.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes > linger.bytes) stop();
  });
  // The whole body read: nothing more is coming that could reset the connection, so it
  // closes as Node would have, once the answer is flushed.
  req.once('end', () => {
    clearTimeout(timer);
    if (socket.writableFinished) socket.destroy();
    else socket.once('finish', () => socket.destroy());
  });
  socket.once('close', () => clearTimeout(timer));
  req.resume();
}

const CLIENT_ERRORS: Record<string, readonly [number, string, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large', 'request headers too large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout', 'request timed out'],
};

/**
 * Malformed requests that never reach Koa (oversized headers, bad framing) still get the
 * one JSON error format, and the socket is closed.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: import('node:stream').Duplex): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const [status, reason, description] = CLIENT_ERRORS[err.code ?? ''] ?? [400, 'Bad Request', 'malformed HTTP request'];
  const body = JSON.stringify({ error: 'invalid_request', error_description: description });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
