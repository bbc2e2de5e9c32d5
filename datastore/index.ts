/**
 * Datastore entry point: `openDatastore(config)` picks the backend. The etcd and Kubernetes
 * backends are imported on demand, so a program that uses one never loads the other's client.
 *
 *   const ds = await openDatastore(configFromEnv());
 */
import type { Logger } from '../lib/log.js';
import type { DatastoreConfig } from './config.js';
import { MemoryDatastore } from './memory.js';
import type { Datastore } from './types.js';
import { DatastoreConfigError } from './types.js';

export * from './types.js';
export * from './config.js';
export { MemoryDatastore } from './memory.js';
export type { FaultOp, FaultSpec, MemoryDatastoreOptions } from './memory.js';
export { parseLabelSelector, matchesLabelSelector, LabelSelectorError } from './labels.js';
export type { LabelSelector } from './labels.js';
export { UnknownKindError, InvalidObjectError } from './common.js';
export { withFaults, FaultPlan } from './faults.js';
export type { FaultInjectingDatastore } from './faults.js';
export { KUBERNETES_API_CALLS } from './kubernetes-api.js';
export type { KubernetesApiCall } from './kubernetes-api.js';
export type { EtcdDatastore, EtcdDatastoreOptions, EtcdTransport } from './etcd.js';
export type { EtcdHttpDatastore } from './etcd-http.js';
export type { KubernetesDatastore, KubernetesDatastoreOptions } from './kubernetes.js';

export interface OpenOptions {
  logger?: Logger;
}

export async function openDatastore(cfg: DatastoreConfig, opts: OpenOptions = {}): Promise<Datastore> {
  switch (cfg.type) {
    case 'memory':
      return new MemoryDatastore();
    case 'etcdv3': {
      const { createEtcdDatastore } = await import('./etcd.js');
      return createEtcdDatastore({
        ...(cfg.etcdTransport ? { transport: cfg.etcdTransport } : {}),
        endpoints: cfg.etcdEndpoints ?? ['http://127.0.0.1:2379'],
        ...(cfg.requestTimeoutMs !== undefined ? { requestTimeoutMs: cfg.requestTimeoutMs } : {}),
        ...(cfg.etcdCaCertFile ? { caCertFile: cfg.etcdCaCertFile } : {}),
        ...(cfg.etcdCertFile ? { certFile: cfg.etcdCertFile } : {}),
        ...(cfg.etcdKeyFile ? { keyFile: cfg.etcdKeyFile } : {}),
        ...(cfg.etcdUsername ? { username: cfg.etcdUsername, password: cfg.etcdPassword ?? '' } : {}),
        ...(opts.logger ? { logger: opts.logger } : {}),
      });
    }
    case 'kubernetes': {
      const { createKubernetesDatastore } = await import('./kubernetes.js');
      return createKubernetesDatastore({
        ...(cfg.kubeconfig ? { kubeconfig: cfg.kubeconfig } : {}),
        ...(cfg.requestTimeoutMs !== undefined ? { requestTimeoutMs: cfg.requestTimeoutMs } : {}),
        ...(opts.logger ? { logger: opts.logger } : {}),
      });
    }
    default:
      throw new DatastoreConfigError(`unknown datastore type ${JSON.stringify((cfg as { type: unknown }).type)}`, 'use etcdv3 or kubernetes');
  }
}
