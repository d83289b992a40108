// Where relay and deliverer pods read their config: a folder of manifests (--resources) or
// the config Secret(s) the operator writes (--config-secret NAMESPACE/NAME). Exactly one.
import type { Command } from 'commander';
import type { Logger } from 'pino';
import { option } from '../cli-options.ts';
import type { ConfigStore } from './store.ts';
import type { CompiledConfig } from './types.ts';

export interface ConfigSourceFlags {
  resources?: string;
  configSecret?: string;
  kubeconfig?: string;
}

/** Where the config comes from, as parsed from the flags. */
export type ConfigOrigin = { resourcesDir: string } | { configSecret: string; kubeconfig?: string };

export interface ConfigSource {
  start(): Promise<void>;
  stop(): void;
}

export function addConfigSourceOptions(command: Command, resourcesHelp: string): Command {
  return command
    .addOption(option('--resources <dir>', resourcesHelp))
    .addOption(option('--config-secret <namespace/name>', 'config Secret written by the operator, watched through the Kubernetes API'))
    .addOption(option('--kubeconfig <file>', 'kubeconfig for --config-secret (default: KUBECONFIG, ~/.kube/config, or the pod\'s service account)'));
}

export function configOrigin(flags: ConfigSourceFlags): ConfigOrigin {
  if (Boolean(flags.resources) === Boolean(flags.configSecret)) throw new Error('give exactly one of --resources and --config-secret');
  if (flags.resources) return { resourcesDir: flags.resources };
  if (!/^[a-z0-9][-a-z0-9]*\/[a-z0-9][-.a-z0-9]*$/.test(flags.configSecret!)) throw new Error(`--config-secret "${flags.configSecret}" is not NAMESPACE/NAME of a Secret`);
  return { configSecret: flags.configSecret!, ...(flags.kubeconfig ? { kubeconfig: flags.kubeconfig } : {}) };
}

export interface OpenSourceOptions {
  store: ConfigStore;
  logger: Logger;
  onError?: (error: Error) => void;
  view?: (config: CompiledConfig) => CompiledConfig;
}

/**
 * Each source is loaded only when chosen: a pod reading the operator's Secret never loads the
 * compiler and its schemas, and one reading a folder never loads the Kubernetes client (about
 * 90 MB of memory).
 */
export async function openConfigSource(origin: ConfigOrigin, options: OpenSourceOptions): Promise<ConfigSource> {
  if ('resourcesDir' in origin) {
    const { FolderConfigSource } = await import('./folder-source.ts');
    return new FolderConfigSource({ dir: origin.resourcesDir, ...options });
  }
  const [{ KubeClient, loadKubeConfig }, { SecretConfigSource }] = await Promise.all([import('../kube/client.ts'), import('./secret-source.ts')]);
  const client = new KubeClient(loadKubeConfig(origin.kubeconfig));
  return new SecretConfigSource({ client, secret: origin.configSecret, ...options });
}
