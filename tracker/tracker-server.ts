// The tracker's HTTP server: an open pixel, click redirects and unsubscribe links, each behind a
// signed token. Nothing unsigned is ever followed: a token that does not verify gets 404, so the
// tracker is no open redirect. Opens and clicks do not wait for Kafka: an event is handed over
// after the answer. An unsubscribe is answered once its suppression and event are stored.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { BlockList } from 'node:net';
import type { Logger } from 'pino';
import { verifyToken, type TrackingKeyRing } from '../shared/tracking/tokens.ts';
import { clientAddress } from './client-address.ts';
import type { TrackerMetrics } from './metrics.ts';
import { trackEvent, type TrackEvent } from './track-events.ts';
import { PAGE_HEADERS, confirmPage, donePage, unsubscribeOutcome, unsubscribeRequest, type UnsubscribeEvent } from './unsubscribe.ts';
import type { SuppressionEntry } from '../deliverer/suppression-list.ts';
import { closeHttp, listenHttp, readBody } from '../shared/ops/http.ts';

/** A transparent 1×1 GIF. */
export const PIXEL = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');
const NO_CACHE = { 'cache-control': 'no-cache, no-store, must-revalidate, private', pragma: 'no-cache', expires: '0' };
const ROUTE = /^\/(o|c|u)\/([A-Za-z0-9_.-]+?)(\.gif)?$/;
/** Larger than any one-click or form body; more is refused. */
const MAX_UNSUBSCRIBE_BODY = 4096;

export interface TrackerServerOptions {
  keys: () => TrackingKeyRing;
  publish: (event: TrackEvent) => void;
  metrics: TrackerMetrics;
  logger: Logger;
  /** Proxies whose X-Forwarded-For is believed (see client-address.ts). */
  trustedProxies?: BlockList;
  /** Stores an unsubscribe (the suppression and its event) before the answer; absent: unsubscribe links get 404. */
  unsubscribe?: (event: UnsubscribeEvent, suppression: SuppressionEntry) => Promise<void>;
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
    const route = match?.[1] === 'o' && match[3] ? 'open' : match?.[1] === 'c' && !match[3] ? 'click' : match?.[1] === 'u' && !match[3] && this.#o.unsubscribe ? 'unsubscribe' : 'other';
    if (route === 'unsubscribe') {
      void this.#unsubscribe(request, response, match![2]!);
      return;
    }
    if (route === 'other' || (request.method !== 'GET' && request.method !== 'HEAD')) {
      metrics.requests.inc({ route, result: 'not_found' });
      this.#notFound(response);
      return;
    }
    const verified = verifyToken(this.#o.keys(), match![2]!);
    const kindFits = verified.ok && (route === 'click' ? verified.claims.kind === 'click' : verified.claims.kind === 'open' || verified.claims.kind === 'initial_open');
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

  /** GET: the page that asks; POST: a one-click request or the page's button, stored before the answer. */
  async #unsubscribe(request: IncomingMessage, response: ServerResponse, token: string): Promise<void> {
    const { metrics } = this.#o;
    const verified = verifyToken(this.#o.keys(), token);
    if (!verified.ok || verified.claims.kind !== 'unsubscribe') {
      metrics.requests.inc({ route: 'unsubscribe', result: verified.ok ? 'wrong_kind' : verified.reason });
      this.#notFound(response);
      return;
    }
    const claims = verified.claims;
    if (request.method === 'GET' || request.method === 'HEAD') {
      metrics.requests.inc({ route: 'unsubscribe', result: 'ok' });
      response.writeHead(200, PAGE_HEADERS).end(request.method === 'HEAD' ? undefined : confirmPage(claims));
      return;
    }
    if (request.method !== 'POST') {
      metrics.requests.inc({ route: 'unsubscribe', result: 'not_found' });
      response.writeHead(405, { allow: 'GET, HEAD, POST', 'content-type': 'text/plain; charset=utf-8' }).end('Use GET for the page or POST to unsubscribe\n');
      return;
    }
    let body: string;
    try {
      body = await readBody(request, MAX_UNSUBSCRIBE_BODY);
    } catch {
      metrics.requests.inc({ route: 'unsubscribe', result: 'bad_request' });
      response.writeHead(413, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' }).end('Request body too large\n');
      return;
    }
    const how = unsubscribeRequest(request.headers['content-type'], body);
    if (!how) {
      metrics.requests.inc({ route: 'unsubscribe', result: 'bad_request' });
      response.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' }).end('The body asks for nothing: send List-Unsubscribe=One-Click (RFC 8058)\n');
      return;
    }
    const ip = clientAddress(request.socket.remoteAddress ?? '', request.headers['x-forwarded-for'], this.#o.trustedProxies);
    const { event, suppression } = unsubscribeOutcome(claims, how, { ip, userAgent: request.headers['user-agent'] ?? '' });
    try {
      await this.#o.unsubscribe!(event, suppression);
    } catch (error) {
      metrics.requests.inc({ route: 'unsubscribe', result: 'unavailable' });
      this.#o.logger.error({ err: error, rcpt: claims.rcptTo, namespace: claims.namespace }, 'unsubscribe not stored; the client is asked to try again');
      response.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '60' }).end('The unsubscribe could not be stored; please try again in a minute\n');
      return;
    }
    metrics.requests.inc({ route: 'unsubscribe', result: 'ok' });
    metrics.unsubscribes.inc({ type: event.type });
    response.writeHead(200, PAGE_HEADERS).end(donePage(claims));
  }

  #notFound(response: ServerResponse): void {
    response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', ...NO_CACHE }).end('Not found\n');
  }
}
