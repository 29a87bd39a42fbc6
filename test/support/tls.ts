/**
 * TLS in front of a test server, as a load balancer or ingress terminates it in production:
 * a self-signed certificate for 127.0.0.1 and localhost, made once per `vitest run` by the
 * global set-up (openssl), and trusted by every test process through NODE_EXTRA_CA_CERTS
 * (read by Node at start-up, so fetch and openid-client verify the chain as they would
 * against a real certificate: no option of theirs is relaxed).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:tls';

/** A self-signed certificate for 127.0.0.1 and localhost (openssl), as PEM strings. */
export function selfSignedCertificate(): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'test-tls-'));
  try {
    const [cert, key] = [join(dir, 'cert.pem'), join(dir, 'key.pem')];
    const subject = ['-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'];
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', ...subject, '-keyout', key, '-out', cert], { stdio: 'ignore' });
    return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Makes the certificate and names it in the environment the test processes inherit; returns its removal. */
export function makeTestCertificate(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'test-tls-'));
  const [cert, key] = [join(dir, 'cert.pem'), join(dir, 'key.pem')];
  const pem = selfSignedCertificate();
  writeFileSync(cert, pem.cert);
  writeFileSync(key, pem.key, { mode: 0o600 });
  process.env.NODE_EXTRA_CA_CERTS = cert;
  process.env.TEST_TLS_CERT = cert;
  process.env.TEST_TLS_KEY = key;
  return () => rmSync(dir, { recursive: true, force: true });
}

export interface TlsTerminator {
  readonly port: number;
  /** Where connections go from now on (the server behind is started after the terminator's port is known). */
  forwardTo(port: number): void;
  close(): Promise<void>;
}

/** A TLS listener on a free loopback port that pipes each connection, decrypted, to `forwardTo`'s port. */
export async function startTlsTerminator(): Promise<TlsTerminator> {
  const { TEST_TLS_CERT: cert, TEST_TLS_KEY: key } = process.env;
  if (!cert || !key) throw new Error('no test certificate: the global set-up makes one (test/support/global-setup.ts)');
  let target = 0;
  const open = new Set<{ destroy(): void }>();
  const server: Server = createServer({ cert: readFileSync(cert), key: readFileSync(key) }, (socket) => {
    const upstream = connect(target, '127.0.0.1');
    open.add(socket).add(upstream);
    socket.pipe(upstream).pipe(socket);
    const end = () => {
      socket.destroy();
      upstream.destroy();
      open.delete(socket);
      open.delete(upstream);
    };
    socket.on('error', end);
    upstream.on('error', end);
    socket.on('close', end);
    upstream.on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    forwardTo(port) {
      target = port;
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        // Kept-alive connections would hold the listener open.
        for (const connection of open) connection.destroy();
      }),
  };
}
