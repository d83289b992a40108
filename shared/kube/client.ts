// A small REST client for the Kubernetes API. @kubernetes/client-node loads the kubeconfig
// (file, KUBECONFIG, ~/.kube/config or the pod's service account) and supplies TLS and
// credentials; requests go through node:https so that server-side apply, subresources and
// optimistic concurrency are plain, visible HTTP.
import { MtrelayError } from '../errors.ts';
import https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';

export { KubeConfig };

/** A kubeconfig file when given, otherwise KUBECONFIG, ~/.kube/config or the in-cluster service account. */
export function loadKubeConfig(file?: string): KubeConfig {
  const config = new KubeConfig();
  if (file) config.loadFromFile(file);
  else config.loadFromDefault();
  if (!config.getCurrentCluster()) throw new Error('no Kubernetes cluster configured (give --kubeconfig, set KUBECONFIG, or run in a pod)');
  return config;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    creationTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }[];
    /** Set while finalizers or foreground deletion hold a deleted object. */
    deletionTimestamp?: string;
  };
}

/** Any object to send: the common fields plus whatever its kind has (spec, status, data, …). */
export type WritableObject = KubeObject & Record<string, unknown>;

/** The API server refused a request; `reason` is Kubernetes' own (NotFound, Conflict, Forbidden, …). */
export class KubeApiError extends MtrelayError {
  readonly status: number;
  readonly reason: string;
  constructor(method: string, path: string, status: number, body: string) {
    let reason = '';
    let message = body.slice(0, 500);
    try {
      const parsed = JSON.parse(body) as { reason?: string; message?: string };
      reason = parsed.reason ?? '';
      message = parsed.message ?? message;
    } catch {
      // not a Status object
    }
    super('MTR_ERR_KUBE_API', `${method} ${path}: ${status} ${reason}: ${message}`);
    this.status = status;
    this.reason = reason;
  }
}

export const isNotFound = (error: unknown): boolean => error instanceof KubeApiError && error.status === 404;
export const isConflict = (error: unknown): boolean => error instanceof KubeApiError && error.status === 409;

interface RequestOptions {
  body?: unknown;
  contentType?: string;
  query?: Record<string, string | undefined>;
}

export class KubeClient {
  readonly config: KubeConfig;
  readonly server: string;
  /** No answer within this long fails the request. */
  readonly timeoutMs: number;

  constructor(config: KubeConfig, timeoutMs = 30_000) {
    this.config = config;
    this.server = config.getCurrentCluster()!.server;
    this.timeoutMs = timeoutMs;
  }

  /** The same client with another request timeout (leader election needs short ones). */
  withTimeout(timeoutMs: number): KubeClient {
    return new KubeClient(this.config, timeoutMs);
  }

  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const url = new URL(this.server + path);
    for (const [key, value] of Object.entries(options.query ?? {})) if (value !== undefined) url.searchParams.set(key, value);
    const requestOptions: https.RequestOptions = { method, headers: { accept: 'application/json' } };
    await this.config.applyToHTTPSOptions(requestOptions);
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    if (payload !== undefined) {
      requestOptions.headers = { ...requestOptions.headers, 'content-type': options.contentType ?? 'application/json', 'content-length': Buffer.byteLength(payload) };
    }
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const request = https.request(url, requestOptions, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        response.on('error', reject);
      });
      // A deadline for the whole exchange, not only for idle sockets.
      const timer = setTimeout(() => request.destroy(new Error(`${method} ${path}: no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      request.on('close', () => clearTimeout(timer));
      request.on('error', reject);
      request.end(payload);
    });
    if (status < 200 || status > 299) throw new KubeApiError(method, path, status, body);
    return (body ? JSON.parse(body) : undefined) as T;
  }

  /** The object, or undefined when it does not exist. */
  async get<T extends KubeObject>(path: string): Promise<T | undefined> {
    try {
      return await this.request<T>('GET', path);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  list<T extends KubeObject>(path: string, query: Record<string, string | undefined> = {}): Promise<{ items: T[]; metadata: { resourceVersion?: string } }> {
    return this.request('GET', path, { query });
  }

  create<T extends KubeObject>(path: string, object: WritableObject): Promise<T> {
    return this.request('POST', path, { body: object });
  }

  /** Replaces the object; `metadata.resourceVersion` makes it fail with Conflict if someone wrote in between. */
  replace<T extends KubeObject>(path: string, object: WritableObject): Promise<T> {
    return this.request('PUT', path, { body: object });
  }

  async delete(path: string): Promise<void> {
    try {
      await this.request('DELETE', path);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  mergePatch<T extends KubeObject>(path: string, patch: unknown): Promise<T> {
    return this.request('PATCH', path, { body: patch, contentType: 'application/merge-patch+json' });
  }

  /** Server-side apply: the fields in `object` become owned by `fieldManager`. */
  apply<T extends KubeObject>(path: string, object: WritableObject, fieldManager: string): Promise<T> {
    return this.request('PATCH', path, { body: object, contentType: 'application/apply-patch+yaml', query: { fieldManager, force: 'true' } });
  }
}

/** The REST path of a namespaced resource, e.g. resourcePath('v1', 'secrets', 'ns', 'name'). */
export function resourcePath(groupVersion: string, plural: string, namespace?: string, name?: string): string {
  const base = groupVersion.includes('/') ? `/apis/${groupVersion}` : `/api/${groupVersion}`;
  return `${base}${namespace ? `/namespaces/${namespace}` : ''}/${plural}${name ? `/${name}` : ''}`;
}
