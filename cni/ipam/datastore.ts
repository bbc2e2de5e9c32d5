/** Opens the datastore named by the network config; imports only the backend it needs (startup cost). */
import type { Datastore } from '../../datastore/types.js';
import type { Logger } from '../../lib/log.js';
import { CniCode, CniError } from '../protocol/errors.js';
import type { IpamPluginConfig } from './config.js';

export async function openPluginDatastore(cfg: IpamPluginConfig, log: Logger): Promise<Datastore> {
  if (cfg.datastoreType === 'etcdv3') {
    const { EtcdDatastore } = await import('../../datastore/etcd.js');
    return new EtcdDatastore({ endpoints: cfg.etcdEndpoints, logger: log });
  }
  throw new CniError(CniCode.InvalidNetworkConfig, `datastore_type ${cfg.datastoreType} is not available in this build`);
}
