/**
 * The HTTP server around the Koa app: deliberate timeouts against slow clients, the one
 * JSON error format for requests Node refuses before Koa sees them, and a graceful close
 * that lets in-flight requests finish.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Config } from './config.js';
import type { Logger } from './log.js';

export interface Listening {
  readonly server: Server;
  readonly url: string;
  /** Stops accepting and lets in-flight requests finish (at most `shutdownTimeout`). */
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export async function listen(handler: Handler, config: Pick<Config, 'http' | 'host' | 'port' | 'shutdownTimeout'>, logger: Logger): Promise<Listening> {
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
  const inFlight = new Set<ServerResponse>();
  let stopping = false;
  server.on('request', (_req, res: ServerResponse) => {
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
