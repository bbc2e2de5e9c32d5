/**
 * tabby: the CNI plugin executable. stdout carries only the CNI result or error JSON; logs (pino line format) go to
 * `log_file_path` (default /var/log/tabby/cni.log). Everything heavy loads lazily: the netlink library
 * (koffi) when a command touches links, tabby-ipam's code when it is the IPAM (in-process), datastore
 * clients only when a datastore is configured, node:child_process only to exec a delegate.
 */
import { realpathSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { execDelegate } from './plugin/exec.js';
import { fileLog } from './plugin/filelog.js';
import { tabbyHandlers } from './plugin/handlers.js';
import { ipamDelegate } from './plugin/ipam-delegate.js';
import { mapPluginError } from './plugin/map-error.js';
import { startTiming, timed } from './plugin/timing.js';
import { readStdin } from './protocol/env.js';
import { runCni } from './protocol/run.js';

startTiming();

function ownBinDir(): string | undefined {
  try {
    return process.argv[1] ? dirname(realpathSync.native(process.argv[1])) : undefined;
  } catch {
    return undefined;
  }
}

const code = await runCni(
  tabbyHandlers({
    // netlink (default) or iproute2 (TABBY_CNI_DATAPLANE=iproute, a fallback and a bench baseline).
    dataplane: timed('dataplaneLoad', async () =>
      process.env.TABBY_CNI_DATAPLANE === 'iproute'
        ? new (await import('./plugin/dataplane-ip.js')).IprouteDataplane()
        : new (await import('./plugin/dataplane-netlink.js')).NetlinkDataplane(),
    ),
    delegate: timed('ipam', ipamDelegate(execDelegate, ownBinDir)),
    openDatastore: timed('datastoreOpen', async (conf, cfg) => {
      const [{ openDatastore, configFromCniNetConf }, { createLogger }] = await Promise.all([import('../datastore/index.js'), import('../lib/log.js')]);
      let logger;
      try {
        logger = createLogger({ name: 'tabby', file: cfg.logFile, level: cfg.logLevel });
      } catch {
        logger = createLogger({ name: 'tabby', level: cfg.logLevel });
      }
      return openDatastore(configFromCniNetConf(conf, process.env), { logger });
    }),
    logger: (cfg) => fileLog({ name: 'tabby', file: cfg.logFile, level: cfg.logLevel }),
    env: process.env,
    hostname: hostname(),
  }),
  {
    env: process.env,
    stdin: () => readStdin(),
    stdout: (s) => process.stdout.write(s + '\n'),
    mapError: mapPluginError,
  },
);
process.exitCode = code;
