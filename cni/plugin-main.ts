/**
 * tabby: the CNI plugin executable. stdout carries only the CNI result or error JSON; logs go to
 * `log_file_path` (default /var/log/tabby/cni.log). Heavy modules (datastore clients) load lazily.
 */
import { hostname } from 'node:os';
import { createLogger, type Logger } from '../lib/log.js';
import { execDelegate } from './plugin/exec.js';
import { tabbyHandlers } from './plugin/handlers.js';
import { readStdin } from './protocol/env.js';
import { CniCode, CniError } from './protocol/errors.js';
import { runCni } from './protocol/run.js';

function fileLogger(file: string, level: string): Logger {
  try {
    return createLogger({ name: 'tabby', file, level });
  } catch {
    return createLogger({ name: 'tabby', level });
  }
}

const code = await runCni(
  tabbyHandlers({
    // netlink (default) or iproute2 (TABBY_CNI_DATAPLANE=iproute, a fallback and a bench baseline).
    dataplane: async () =>
      process.env.TABBY_CNI_DATAPLANE === 'iproute'
        ? new (await import('./plugin/dataplane-ip.js')).IprouteDataplane()
        : new (await import('./plugin/dataplane-netlink.js')).NetlinkDataplane(),
    delegate: execDelegate,
    openDatastore: async (conf, log) => {
      const { openDatastore, configFromCniNetConf } = await import('../datastore/index.js');
      return openDatastore(configFromCniNetConf(conf, process.env), { logger: log });
    },
    logger: (cfg) => fileLogger(cfg.logFile, cfg.logLevel),
    env: process.env,
    hostname: hostname(),
  }),
  {
    env: process.env,
    stdin: () => readStdin(),
    stdout: (s) => process.stdout.write(s + '\n'),
    mapError: (err) => {
      const e = err as { code?: string; message?: string; hint?: string };
      if (e.code === 'Unavailable') return new CniError(CniCode.TryAgainLater, e.message ?? 'datastore unavailable', e.hint);
      if (e.code === 'DatastoreConfig') return new CniError(CniCode.InvalidNetworkConfig, e.message ?? 'bad datastore config', e.hint);
      return new CniError(CniCode.PluginBase, e.message ?? String(err));
    },
  },
);
process.exitCode = code;
