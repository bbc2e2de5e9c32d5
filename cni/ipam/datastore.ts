/**
 * Opens the datastore named by the network config; openDatastore imports only the backend it needs.
 * etcd goes through the JSON gateway (node:http): a CNI process makes a few unary calls and exits,
 * so loading the gRPC client would cost more than the calls (bench/RESULTS.md).
 */
import { openDatastore } from '../../datastore/index.js';
import type { Datastore } from '../../datastore/types.js';
import type { Logger } from '../../lib/log.js';
import type { IpamPluginConfig } from './config.js';

export function openPluginDatastore(cfg: IpamPluginConfig, log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<Datastore> {
  // TABBY_ETCD_TRANSPORT=grpc: the etcd3 client instead (comparison runs in bench/ipam.ts, escape hatch).
  const transport: 'grpc' | 'http' = env.TABBY_ETCD_TRANSPORT === 'grpc' ? 'grpc' : 'http';
  const ds = cfg.datastore.type === 'etcdv3' ? { ...cfg.datastore, etcdTransport: transport } : cfg.datastore;
  return openDatastore(ds, { logger: log });
}
