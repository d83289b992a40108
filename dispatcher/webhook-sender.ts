// One POST of one batch to one webhook: JSON body, the batch id (SparkPost's header, for the
// receiver to drop a batch it already has), the signature, and the webhook's authentication.
// Any answer but 2xx, a redirect included, is a failure the queue retries; so is no answer
// within the timeout.
import { fetch, type Agent } from 'undici';
import type { CompiledWebhook } from '../shared/config/types.ts';
import { checkLiteralHost, PrivateAddressError } from './outbound.ts';
import { signatureHeader, SIGNATURE_HEADER } from './signature.ts';
import type { SparkPostEvent } from './sparkpost-shape.ts';

export const BATCH_ID_HEADER = 'x-messagesystems-batch-id';
export const REQUEST_TIMEOUT_MS = 10_000;

export type SendResult = { ok: true; status: number } | { ok: false; reason: string; status?: number };

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** How posts go out: the HTTP agent (address checks, keep-alive), and whether private addresses are allowed. */
export interface Outbound {
  agent: Agent;
  allowPrivate: boolean;
}

/** OAuth 2.0 client credentials (RFC 6749 4.4): tokens cached per client until shortly before they expire. */
export class OAuth2Tokens {
  readonly #cache = new Map<string, CachedToken>();
  readonly #outbound: Outbound;

  constructor(outbound: Outbound) {
    this.#outbound = outbound;
  }

  async token(auth: Extract<CompiledWebhook['auth'], { type: 'oauth2' }>, now = Date.now()): Promise<string> {
    const key = `${auth.tokenUrl}\u0000${auth.clientId}\u0000${auth.scope ?? ''}`;
    const cached = this.#cache.get(key);
    if (cached && cached.expiresAt > now) return cached.token;
    const form = new URLSearchParams({ grant_type: 'client_credentials', ...(auth.scope ? { scope: auth.scope } : {}) });
    // Client id and secret in HTTP Basic, as RFC 6749 2.3.1 asks servers to support.
    const basic = Buffer.from(`${encodeURIComponent(auth.clientId)}:${encodeURIComponent(auth.clientSecret)}`).toString('base64');
    checkLiteralHost(auth.tokenUrl, this.#outbound.allowPrivate);
    const response = await fetch(auth.tokenUrl, {
      method: 'POST', body: form, redirect: 'manual', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS), dispatcher: this.#outbound.agent,
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    });
    const body = (await response.json().catch(() => ({}))) as { access_token?: unknown; expires_in?: unknown; error?: unknown };
    if (!response.ok || typeof body.access_token !== 'string') {
      throw new Error(`token endpoint ${auth.tokenUrl} answered ${response.status}${typeof body.error === 'string' ? ` (${body.error})` : ''}`);
    }
    const lifetime = typeof body.expires_in === 'number' ? body.expires_in * 1000 : 3_600_000;
    this.#cache.set(key, { token: body.access_token, expiresAt: now + Math.max(0, lifetime - 30_000) });
    return body.access_token;
  }

  forget(auth: Extract<CompiledWebhook['auth'], { type: 'oauth2' }>): void {
    this.#cache.delete(`${auth.tokenUrl}\u0000${auth.clientId}\u0000${auth.scope ?? ''}`);
  }
}

async function authorization(webhook: CompiledWebhook, tokens: OAuth2Tokens): Promise<Record<string, string>> {
  const { auth } = webhook;
  if (auth.type === 'basic') return { authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}` };
  if (auth.type === 'bearer') return { authorization: `Bearer ${auth.token}` };
  if (auth.type === 'oauth2') return { authorization: `Bearer ${await tokens.token(auth)}` };
  return {};
}

export async function sendBatch(webhook: CompiledWebhook, batchId: string, events: SparkPostEvent[], tokens: OAuth2Tokens, outbound: Outbound): Promise<SendResult> {
  const body = JSON.stringify(events);
  try {
    checkLiteralHost(webhook.url, outbound.allowPrivate);
    const response = await fetch(webhook.url, {
      method: 'POST', body, redirect: 'manual', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS), dispatcher: outbound.agent,
      headers: {
        'content-type': 'application/json', 'user-agent': 'mtrelay-webhooks/1', [BATCH_ID_HEADER]: batchId,
        ...(webhook.signingSecret ? { [SIGNATURE_HEADER]: signatureHeader(webhook.signingSecret, body) } : {}),
        ...(await authorization(webhook, tokens)),
      },
    });
    await response.arrayBuffer().catch(() => undefined); // free the connection for keep-alive
    if (response.status >= 200 && response.status < 300) return { ok: true, status: response.status };
    // A rejected token may have been revoked early: the next attempt asks for a new one.
    if (response.status === 401 && webhook.auth.type === 'oauth2') tokens.forget(webhook.auth);
    return { ok: false, status: response.status, reason: `HTTP ${response.status}` };
  } catch (error) {
    const err = error as Error & { cause?: unknown };
    const refused = [err, err.cause].find((e) => e instanceof PrivateAddressError);
    const reason = refused ? refused.message : err.name === 'TimeoutError' ? `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`
      : (err.cause as { code?: string } | undefined)?.code ?? err.message;
    return { ok: false, reason };
  }
}
