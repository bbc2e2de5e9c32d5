/**
 * One tabby-ipam invocation over injected I/O: what the `tabby-ipam` executable runs, and what the
 * `tabby` plugin runs in-process (no second Node process) when its IPAM is tabby-ipam.
 */
import { readStdin } from '../protocol/env.js';
import { type CniIo, runCni } from '../protocol/run.js';
import { openPluginDatastore } from './datastore.js';
import type { DatastoreOpener } from './plugin.js';
import { ipamFileLogger } from './logger.js';
import { ipamHandlers, toCniError } from './plugin.js';

/** `openDatastore`: the datastore for this invocation (tabby-node's CNI server passes its shared connections). */
export function runIpam(io: Pick<CniIo, 'env' | 'stdin' | 'stdout'>, openDatastore: DatastoreOpener = (cfg, log) => openPluginDatastore(cfg, log, io.env)): Promise<number> {
  return runCni(ipamHandlers({ openDatastore, logger: (cfg) => ipamFileLogger(cfg.logFile, cfg.logLevel), env: io.env }), {
    ...io,
    mapError: toCniError,
  });
}

/** The process entry: stdin, stdout and the environment of this process. */
export function runIpamProcess(): Promise<number> {
  return runIpam({ env: process.env, stdin: () => readStdin(), stdout: (s) => process.stdout.write(s + '\n') });
}
