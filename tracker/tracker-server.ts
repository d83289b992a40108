// The tracker's HTTP server: an open pixel and click redirects, each behind a signed token.
// Nothing unsigned is ever followed: a token that does not verify gets 404, so the tracker is no
// open redirect. Answers do not wait for Kafka: an event is handed over after the answer.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { BlockList } from 'node:net';
import type { Logger } from 'pino';
import { verifyToken, type TrackingKeyRing } from '../shared/tracking/tokens.ts';
import { clientAddress } from './client-address.ts';
import type { TrackerMetrics } from './metrics.ts';
import { trackEvent, type TrackEvent } from './track-events.ts';
import { closeHttp, listenHttp } from '../shared/ops/http.ts';

/** A transparent 1×1 GIF. */
export const PIXEL = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');
const NO_CACHE = { 'cache-control': 'no-cache, no-store, must-revalidate, private', pragma: 'no-cache', expires: '0' };
const ROUTE = /^\/(o|c)\/([A-Za-z0-9_.-]+?)(\.gif)?$/;

export interface TrackerServerOptions {
  keys: () => TrackingKeyRing;
  publish: (event: TrackEvent) => void;
  metrics: TrackerMetrics;
  logger: Logger;
  /** Proxies whose X-Forwarded-For is believed (see client-address.ts). */
  trustedProxies?: BlockList;
}

export class TrackerServer {
  readonly #o: TrackerServerOptions;
  readonly #server: Server;

  constructor(options: TrackerServerOptions) {
    this.#o = options;
    this.#server = createServer((request, response) => this.#handle(request, response));
    this.#server.keepAliveTimeout = 5000;
  }

  listen(port: number, host: string): Promise<number> {
    return listenHttp(this.#server, port, host);
  }

  /** Stops taking connections and waits for the requests in progress. */
  close(): Promise<void> {
    return closeHttp(this.#server);
  }

  #handle(request: IncomingMessage, response: ServerResponse): void {
    const { metrics } = this.#o;
    // URL.parse gives null for what new URL() would throw on: a bad request line is a 404, not a crash.
    const match = ROUTE.exec(URL.parse(request.url ?? '/', 'http://tracker')?.pathname ?? '');
    const route = match?.[1] === 'o' && match[3] ? 'open' : match?.[1] === 'c' && !match[3] ? 'click' : 'other';
    if (route === 'other' || (request.method !== 'GET' && request.method !== 'HEAD')) {
      metrics.requests.inc({ route, result: 'not_found' });
      this.#notFound(response);
      return;
    }
    const verified = verifyToken(this.#o.keys(), match![2]!);
    const kindFits = verified.ok && (route === 'click' ? verified.claims.kind === 'click' : verified.claims.kind !== 'click');
    if (!verified.ok || !kindFits) {
      metrics.requests.inc({ route, result: verified.ok ? 'wrong_kind' : verified.reason });
      this.#notFound(response);
      return;
    }
    metrics.requests.inc({ route, result: 'ok' });
    if (route === 'open') response.writeHead(200, { 'content-type': 'image/gif', 'content-length': PIXEL.length, ...NO_CACHE }).end(request.method === 'HEAD' ? undefined : PIXEL);
    else response.writeHead(302, { location: verified.claims.target!, 'content-length': 0, ...NO_CACHE }).end();
    // A HEAD request is a scanner or a prefetch looking, not a reader: no event.
    if (request.method === 'GET') {
      const ip = clientAddress(request.socket.remoteAddress ?? '', request.headers['x-forwarded-for'], this.#o.trustedProxies);
      this.#o.publish(trackEvent(verified.claims, { ip, userAgent: request.headers['user-agent'] ?? '' }));
    }
  }

  #notFound(response: ServerResponse): void {
    response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', ...NO_CACHE }).end('Not found\n');
  }
}
