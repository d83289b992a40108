// A real HTTP server playing a customer's webhook endpoint: it keeps every request (headers,
// raw body, parsed batch, time), answers with the status the test sets (200 by default, or a
// failure until told otherwise), and can play an OAuth 2.0 token endpoint.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedBatch {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  events: { msys: Record<string, Record<string, unknown>> }[];
  at: number;
  status: number;
}

export class WebhookReceiver {
  readonly batches: ReceivedBatch[] = [];
  /** The status posts to the webhook path are answered with. */
  status = 200;
  /** OAuth 2.0: the client credentials accepted (as `id:secret`) and tokens issued. */
  oauth = { credentials: '', issued: [] as string[] };
  #server: Server;
  #port = 0;

  constructor() {
    this.#server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (c: Buffer) => chunks.push(c));
      request.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (request.url === '/token') {
          const basic = Buffer.from((request.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString();
          if (basic !== this.oauth.credentials || !/grant_type=client_credentials/.test(body)) {
            response.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"invalid_client"}');
            return;
          }
          const token = `tok-${this.oauth.issued.length + 1}`;
          this.oauth.issued.push(token);
          response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: token, token_type: 'Bearer', expires_in: 3600 }));
          return;
        }
        let events: ReceivedBatch['events'] = [];
        try {
          events = JSON.parse(body) as ReceivedBatch['events'];
        } catch { /* kept as the raw body */ }
        this.batches.push({ path: request.url ?? '', headers: request.headers, body, events, at: Date.now(), status: this.status });
        response.writeHead(this.status).end();
      });
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.#port = (this.#server.address() as AddressInfo).port;
    return this.url('');
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.#port}${path}`;
  }

  /** Batches answered 2xx (what the receiver keeps), without test batches. */
  accepted(): ReceivedBatch[] {
    return this.batches.filter((b) => b.status < 300 && !String(b.headers['x-messagesystems-batch-id']).startsWith('test-'));
  }

  /** The events of accepted batches, in the order they arrived. */
  events(): Record<string, unknown>[] {
    return this.accepted().flatMap((b) => b.events.map((e) => Object.values(e.msys)[0]!));
  }

  async waitFor(predicate: (r: this) => boolean, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this)) {
      if (Date.now() > deadline) throw new Error(`webhook receiver: condition not met; have ${this.batches.length} batches: ${JSON.stringify(this.batches.map((b) => [b.status, b.events.length]))}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}
