/**
 * tabby-ipam: the CNI IPAM plugin executable. stdout carries only the CNI result or error JSON;
 * logs go to the file named by `log_file_path` (default /var/log/tabby/cni.log).
 */
import { createLogger, type Logger } from '../lib/log.js';
import { ipamHandlers, toCniError } from './ipam/plugin.js';
import { openPluginDatastore } from './ipam/datastore.js';
import { readStdin } from './protocol/env.js';
import { runCni } from './protocol/run.js';

function fileLogger(file: string, level: string): Logger {
  try {
    return createLogger({ name: 'tabby-ipam', file, level });
  } catch {
    // Unwritable log path: stderr is the only other place the runtime may keep.
    return createLogger({ name: 'tabby-ipam', level });
  }
}

const code = await runCni(
  ipamHandlers({ openDatastore: openPluginDatastore, logger: (cfg) => fileLogger(cfg.logFile, cfg.logLevel) }),
  { env: process.env, stdin: () => readStdin(), stdout: (s) => process.stdout.write(s + '\n'), mapError: toCniError },
);
process.exitCode = code;
