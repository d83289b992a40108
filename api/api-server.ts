// The HTTP API of `mtrelay api` (and of standalone): the suppression list, the events search,
// the message trace and its page. JSON in SparkPost's shapes, every request authenticated by an
// API key with the route's permission and kept to the key's account (the page itself is static).
// Answers: {"results": …} on success, {"errors": [{"message": …}]} otherwise, with the status
// that says what to do (400 fix the request, 401 the key, 403 its permissions, 404, 413, 503).
import http from 'node:http';
import type { Logger } from 'pino';
import type { ConfigStore } from '../shared/config/store.ts';
import { authenticate } from './auth.ts';
import type { ApiMetrics } from './metrics.ts';
import { QueryError, decodeCursor, parseEventQuery, type EventQuery } from './events-query.ts';
import type { EventSearch, IndexedEvent } from './event-rows.ts';
import { buildTrace } from './trace.ts';
import { TRACE_PAGE_HEADERS, TRACE_PAGE_HTML } from './trace-page.ts';
import { InputError, manualEntries, page, parseRecipients, publicEntry, type SuppressionStore } from './suppressions.ts';
import { BodyTooLargeError, closeHttp, listenHttp, readBody } from '../shared/ops/http.ts';

export interface ApiServerOptions {
  store: ConfigStore;
  suppressions: SuppressionStore;
  /** Absent: this role serves no events search (404). */
  events?: EventSearch;
  metrics: ApiMetrics;
  logger: Logger;
  /** Largest request body (a CSV import), in bytes. */
  maxBodyBytes: number;
}

class HttpError extends Error {
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

const SUPPRESSIONS = '/api/v1/suppression-list';
const EVENTS = '/api/v1/events/message';
const TRACE = '/api/v1/events/trace/';
const TRACE_PAGE = '/trace';
/** A trace reads at most this many events of a transmission (10 pages). */
const TRACE_MAX_EVENTS = 10_000;

export class ApiServer {
  readonly #o: ApiServerOptions;
  readonly #server: http.Server;

  constructor(options: ApiServerOptions) {
    this.#o = options;
    this.#server = http.createServer((request, response) => void this.#handle(request, response));
  }

  listen(port: number, host: string): Promise<number> {
    return listenHttp(this.#server, port, host);
  }

  /** Stops accepting; requests in progress are answered. */
  close(): Promise<void> {
    return closeHttp(this.#server);
  }

  async #handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://api');
    let route = 'other';
    let status = 500;
    let body: unknown;
    try {
      if (url.pathname === SUPPRESSIONS || url.pathname.startsWith(`${SUPPRESSIONS}/`)) {
        route = 'suppressions';
        [status, body] = await this.#suppressions(request, url);
      } else if (url.pathname === EVENTS && this.#o.events) {
        route = 'events';
        [status, body] = await this.#events(request, url, this.#o.events);
      } else if (url.pathname.startsWith(TRACE) && this.#o.events) {
        route = 'trace';
        [status, body] = await this.#trace(request, url, this.#o.events);
      } else if (url.pathname === TRACE_PAGE && this.#o.events && request.method === 'GET') {
        this.#o.metrics.requests.inc({ route: 'trace_page', method: 'GET', status: '200' });
        response.writeHead(200, TRACE_PAGE_HEADERS).end(TRACE_PAGE_HTML);
        return;
      } else {
        throw new HttpError(404, `No such endpoint: ${request.method ?? ''} ${url.pathname}`);
      }
    } catch (error) {
      const known = error instanceof HttpError ? error : error instanceof InputError || error instanceof QueryError ? new HttpError(400, error.message) : undefined;
      if (!known) this.#o.logger.error({ err: error, path: url.pathname }, 'API request failed');
      status = known?.status ?? 503;
      body = { errors: [{ message: known?.message ?? 'The request could not be completed; try again' }] };
    }
    this.#o.metrics.requests.inc({ route, method: request.method ?? '', status: String(status) });
    if (status === 204) response.writeHead(204).end();
    else response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  }

  #caller(request: http.IncomingMessage, permission: 'suppressions/manage' | 'events/read'): string {
    const caller = authenticate(request, this.#o.store, permission);
    if (!caller.ok) throw new HttpError(caller.status, caller.message);
    return caller.namespace;
  }

  /** One page of the account's events, newest first; links.next repeats the search from where the page ended. */
  async #events(request: http.IncomingMessage, url: URL, events: EventSearch): Promise<[number, unknown]> {
    const namespace = this.#caller(request, 'events/read');
    if (request.method !== 'GET') throw new HttpError(405, `${request.method ?? ''} is not allowed on ${url.pathname}`);
    const page = await events.search(namespace, parseEventQuery(url.searchParams));
    const next = new URLSearchParams(url.searchParams);
    if (page.next) next.set('cursor', page.next);
    return [200, { results: page.results, ...(page.next ? { links: { next: `${EVENTS}?${next.toString()}` } } : {}) }];
  }

  /** One transmission's events of the caller's account, as a timeline per recipient. */
  async #trace(request: http.IncomingMessage, url: URL, events: EventSearch): Promise<[number, unknown]> {
    const namespace = this.#caller(request, 'events/read');
    if (request.method !== 'GET') throw new HttpError(405, `${request.method ?? ''} is not allowed on ${url.pathname}`);
    const id = decodeURIComponent(url.pathname.slice(TRACE.length));
    if (!/^\d{1,20}$/.test(id)) throw new HttpError(400, `"${id.slice(0, 40)}" is not a transmission id: the digits of the 250 reply to DATA (or of the X-MT-Transmission field)`);
    const found: IndexedEvent[] = [];
    let after: EventQuery['after'];
    for (;;) {
      const query: EventQuery = { recipients: [], transmissions: [id], campaigns: [], events: [], bounceClasses: [], from: 0, to: Date.now() + 24 * 3600_000, perPage: 1000, ...(after ? { after } : {}) };
      const page = await events.search(namespace, query);
      found.push(...page.results);
      if (!page.next || found.length >= TRACE_MAX_EVENTS) return [200, { results: buildTrace(id, found, Boolean(page.next)) }];
      after = decodeCursor(page.next);
    }
  }

  async #suppressions(request: http.IncomingMessage, url: URL): Promise<[number, unknown]> {
    const namespace = this.#caller(request, 'suppressions/manage');
    const store = this.#o.suppressions;
    const recipient = decodeURIComponent(url.pathname.slice(SUPPRESSIONS.length + 1)).toLowerCase();
    const method = request.method ?? 'GET';
    if (!recipient && method === 'GET') {
      const limit = Number(url.searchParams.get('limit') ?? 1000);
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new HttpError(400, 'limit must be a whole number from 1 to 10000');
      return [200, page(store.entries(namespace), limit, url.searchParams.get('cursor') ?? undefined)];
    }
    if (!recipient && (method === 'PUT' || method === 'POST')) {
      const entries = manualEntries(namespace, await parseRecipients(await this.#body(request), request.headers['content-type'] ?? 'application/json'));
      await store.put(entries);
      return [200, { results: { message: 'Suppression List successfully updated', count: entries.length } }];
    }
    if (recipient && method === 'GET') {
      const found = store.lookup(namespace, recipient);
      if (!found.length) throw new HttpError(404, `${recipient} is not on the suppression list`);
      return [200, { results: found.map(publicEntry) }];
    }
    if (recipient && method === 'DELETE') {
      const type = url.searchParams.get('type');
      if (type !== null && type !== 'all' && type !== 'non_transactional') throw new HttpError(400, 'type must be all or non_transactional');
      const found = store.lookup(namespace, recipient).filter((e) => type === null || (e.type ?? 'all') === type);
      if (!found.length) throw new HttpError(404, `${recipient} is not on the suppression list${type ? ` for ${type} mail` : ''}`);
      await store.remove(found);
      return [204, undefined];
    }
    throw new HttpError(405, `${method} is not allowed on ${url.pathname}`);
  }

  #body(request: http.IncomingMessage): Promise<string> {
    return readBody(request, this.#o.maxBodyBytes).catch((error: Error) => {
      throw error instanceof BodyTooLargeError ? new HttpError(413, `The request body is larger than ${error.maxBytes} bytes; send the list in parts`) : error;
    });
  }
}
