import { createServer } from 'node:http';
import { Webhook } from 'standardwebhooks';

// The same whsec_… secret as the authority's WEBHOOK_SECRET.
const webhook = new Webhook(process.env.WEBHOOK_SECRET!);
const handled = new Set<string>();

createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk: string) => (body += chunk));
  req.on('end', () => {
    let event: { id: string; type: string; subject: unknown; data: unknown };
    try {
      // The raw body as received (parsing and re-serialising would change the signed bytes).
      // Throws on a wrong signature, or a webhook-timestamp more than 5 minutes off.
      event = webhook.verify(body, req.headers as Record<string, string>) as typeof event;
    } catch {
      res.writeHead(400).end();
      return;
    }
    // At least once: an event may come again (same webhook-id = event id); handle it once.
    if (!handled.has(event.id)) {
      handled.add(event.id);
      console.log(event.type, event.id, JSON.stringify(event.subject));
    }
    res.writeHead(204).end(); // any 2xx acknowledges; anything else is retried with backoff
  });
}).listen(Number(process.env.PORT ?? 4100), '127.0.0.1');
