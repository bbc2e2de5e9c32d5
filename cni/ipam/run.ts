/**
 * One tabby-ipam invocation over injected I/O: what the `tabby-ipam` executable runs, and what the
 * `tabby` plugin runs in-process (no second Node process) when its IPAM is tabby-ipam.
 */
import { readStdin } from '../protocol/env.js';
import { type CniIo, runCni } from '../protocol/run.js';
import { openPluginDatastore } from './datastore.js';
import { ipamFileLogger } from './logger.js';
import { ipamHandlers, toCniError } from './plugin.js';

export function runIpam(io: Pick<CniIo, 'env' | 'stdin' | 'stdout'>): Promise<number> {
  return runCni(ipamHandlers({ openDatastore: openPluginDatastore, logger: (cfg) => ipamFileLogger(cfg.logFile, cfg.logLevel), env: io.env }), {
    ...io,
    mapError: toCniError,
  });
}

/** The process entry: stdin, stdout and the environment of this process. */
export function runIpamProcess(): Promise<number> {
  return runIpam({ env: process.env, stdin: () => readStdin(), stdout: (s) => process.stdout.write(s + '\n') });
}
