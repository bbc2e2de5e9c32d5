/** Opens the datastore named by the network config; openDatastore imports only the backend it needs. */
import { openDatastore } from '../../datastore/index.js';
import type { Datastore } from '../../datastore/types.js';
import type { Logger } from '../../lib/log.js';
import type { IpamPluginConfig } from './config.js';

export function openPluginDatastore(cfg: IpamPluginConfig, log: Logger): Promise<Datastore> {
  return openDatastore(cfg.datastore, { logger: log });
}
