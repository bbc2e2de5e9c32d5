/**
 * Opens the datastore named by the network config; openDatastore imports only the backend it needs.
 * etcd goes through the JSON gateway (node:http): a CNI process makes a few unary calls and exits,
 * so loading the gRPC client would cost more than the calls (bench/RESULTS.md).
 */
import { openDatastore } from '../../datastore/index.js';
import type { Datastore } from '../../datastore/types.js';
import type { Logger } from '../../lib/log.js';
import type { IpamPluginConfig } from './config.js';

export function openPluginDatastore(cfg: IpamPluginConfig, log: Logger): Promise<Datastore> {
  const ds = cfg.datastore.type === 'etcdv3' ? { ...cfg.datastore, etcdTransport: 'http' as const } : cfg.datastore;
  return openDatastore(ds, { logger: log });
}
