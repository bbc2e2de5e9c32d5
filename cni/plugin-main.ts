/**
 * tabby: the CNI plugin executable. stdout carries only the CNI result or error JSON; logs (pino line format) go to
 * `log_file_path` (default /var/log/tabby/cni.log). Heavy modules (datastore clients) load lazily.
 */
import { hostname } from 'node:os';
import { execDelegate } from './plugin/exec.js';
import { fileLog } from './plugin/filelog.js';
import { tabbyHandlers } from './plugin/handlers.js';
import { readStdin } from './protocol/env.js';
import { CniCode, CniError } from './protocol/errors.js';
import { runCni } from './protocol/run.js';

const code = await runCni(
  tabbyHandlers({
    // netlink (default) or iproute2 (TABBY_CNI_DATAPLANE=iproute, a fallback and a bench baseline).
    dataplane: async () =>
      process.env.TABBY_CNI_DATAPLANE === 'iproute'
        ? new (await import('./plugin/dataplane-ip.js')).IprouteDataplane()
        : new (await import('./plugin/dataplane-netlink.js')).NetlinkDataplane(),
    delegate: execDelegate,
    openDatastore: async (conf, cfg) => {
      const [{ openDatastore, configFromCniNetConf }, { createLogger }] = await Promise.all([import('../datastore/index.js'), import('../lib/log.js')]);
      let logger;
      try {
        logger = createLogger({ name: 'tabby', file: cfg.logFile, level: cfg.logLevel });
      } catch {
        logger = createLogger({ name: 'tabby', level: cfg.logLevel });
      }
      return openDatastore(configFromCniNetConf(conf, process.env), { logger });
    },
    logger: (cfg) => fileLog({ name: 'tabby', file: cfg.logFile, level: cfg.logLevel }),
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
