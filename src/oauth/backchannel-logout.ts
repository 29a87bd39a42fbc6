/**
 * OpenID Connect Back-Channel Logout 1.0: when a sign-in session ends, every client that
 * received tokens in it and registered a `backchannel_logout_uri` gets a logout token
 * (§2.4) by POST (§2.5). Deliveries go through a durable queue (`LogoutQueue`) and are
 * retried with exponential backoff until the client answers 200 (or 204), so an outage at
 * the client loses nothing; after `maxAttempts` a delivery is dropped and logged.
 */
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import type { Random } from '../random.js';
import type { ClientStore, Family, LogoutDelivery, LogoutQueue } from '../stores/types.js';
import type { IdTokens } from '../tokens/id-token.js';
import type { SessionEnded } from './logout.js';

export interface BackchannelLogoutDeps {
  readonly queue: LogoutQueue;
  readonly clients: Pick<ClientStore, 'findById'>;
  readonly idTokens: Pick<IdTokens, 'logoutToken'>;
  readonly clock: Clock;
  readonly random: Pick<Random, 'token'>;
  readonly logger: Logger;
  /** First retry after this long, doubling each time up to `maxDelayMs`. */
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  readonly maxAttempts?: number;
  /** How often the queue is polled for due retries. */
  readonly pollMs?: number;
  /** Per request. */
  readonly timeoutMs?: number;
  readonly fetch?: typeof fetch;
}

export function createBackchannelLogout(deps: BackchannelLogoutDeps) {
  const { queue, clock, logger } = deps;
  const baseDelayMs = deps.baseDelayMs ?? 1000;
  const maxDelayMs = deps.maxDelayMs ?? 10 * 60_000;
  const maxAttempts = deps.maxAttempts ?? 12;
  const pollMs = deps.pollMs ?? 1000;
  const timeoutMs = deps.timeoutMs ?? 5000;
  const leaseMs = timeoutMs * 2 + 1000;
  const send = deps.fetch ?? fetch;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = true;

  /** One POST; true when the client took it (§2.8: 200, or 204 as RPs commonly answer). */
  async function deliver(delivery: LogoutDelivery): Promise<boolean | 'gone'> {
    const client = await deps.clients.findById(delivery.clientId);
    if (!client?.backchannelLogoutUri) return 'gone';
    const token = await deps.idTokens.logoutToken({ clientId: delivery.clientId, alg: client.idTokenSignedResponseAlg, sub: delivery.sub, sid: delivery.sid });
    try {
      const res = await send(client.backchannelLogoutUri, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ logout_token: token }),
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
      });
      await res.body?.cancel();
      return res.status === 200 || res.status === 204;
    } catch {
      return false;
    }
  }

  async function settle(delivery: LogoutDelivery, outcome: boolean | 'gone'): Promise<void> {
    if (outcome === true || outcome === 'gone') {
      await queue.ack(delivery.id);
      return;
    }
    const attempt = delivery.attempt + 1;
    if (attempt >= maxAttempts) {
      logger.warn({ clientId: delivery.clientId, attempts: attempt }, 'back-channel logout: client never accepted the logout token; giving up');
      await queue.ack(delivery.id);
      return;
    }
    const delay = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
    logger.info({ clientId: delivery.clientId, attempt, retryInMs: delay }, 'back-channel logout: delivery failed; will retry');
    await queue.retry({ ...delivery, attempt }, clock.now() + delay);
  }

  /** Delivers everything due now, in batches. */
  async function drain(): Promise<void> {
    for (;;) {
      const due = await queue.take(clock.now(), 20, leaseMs);
      if (due.length === 0) return;
      await Promise.all(due.map(async (delivery) => settle(delivery, await deliver(delivery))));
    }
  }

  function tick(): void {
    if (running) return;
    running = drain()
      .catch((err: unknown) => logger.warn({ err }, 'back-channel logout: queue unavailable; will retry'))
      .finally(() => {
        running = undefined;
      });
  }

  /** Queues a logout token for each client of the ended session that registered a back-channel URI. */
  async function sessionEnded(ended: SessionEnded): Promise<void> {
    const clients = await Promise.all(ended.clientIds.map((clientId) => deps.clients.findById(clientId)));
    const now = clock.now();
    for (const client of clients) {
      if (!client?.backchannelLogoutUri) continue;
      await queue.push({ id: deps.random.token(16), clientId: client.clientId, sid: ended.sid, sub: ended.sub, attempt: 0 }, now);
    }
    if (!stopped) tick();
  }

  return {
    sessionEnded,

    /** A refresh family ended by reuse: its client's sign-in session is over too (if it came from one). */
    async familyEnded(family: Family): Promise<void> {
      if (family.signIn) await sessionEnded({ sid: family.signIn.sid, sub: family.subject, clientIds: [family.clientId] });
    },

    /** Starts polling the queue (deliveries of every instance, retries included). */
    start(): void {
      if (!stopped) return;
      stopped = false;
      timer = setInterval(tick, pollMs);
      timer.unref();
      tick();
    },

    /** Stops polling and waits for the batch in flight. */
    async stop(): Promise<void> {
      stopped = true;
      if (timer) clearInterval(timer);
      await running;
    },
  };
}

export type BackchannelLogout = ReturnType<typeof createBackchannelLogout>;
