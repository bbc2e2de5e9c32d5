/**
 * The IPAM delegate of the `tabby` plugin. When ipam.type is `tabby-ipam` and the `tabby-ipam` found in
 * CNI_PATH is our own (the sibling of this `tabby` executable), its code runs in this process instead of
 * a second Node process: same stdin, environment, results and error JSON as the exec path, since both
 * go through runCni and delegateOutput. Every other IPAM plugin (host-local, …) is exec'd.
 * Switches back to exec: env TABBY_CNI_IPAM=exec, or `"ipam": {"in_process": false}` in the config.
 */
import { realpathSync } from 'node:fs';
import { join } from 'node:path';
import { CniCode, CniError } from '../protocol/errors.js';
import { type ExecResult, delegateOutput, findPlugin } from './exec.js';
import type { Delegate } from './handlers.js';
import type { DatastoreOpener } from '../ipam/plugin.js';

export const IN_PROCESS_IPAM = 'tabby-ipam';

/** Runs one tabby-ipam invocation in this process and returns what the executable would print and exit with. */
export type IpamRunner = (command: string, stdin: string, env: NodeJS.ProcessEnv) => Promise<ExecResult>;

/** An IpamRunner; `openDatastore` replaces tabby-ipam's own opener (tabby-node's CNI server shares its connections). */
export function ipamRunner(openDatastore?: DatastoreOpener): IpamRunner {
  return async (command, stdin, env) => {
    const { runIpam } = await import('../ipam/run.js');
    let stdout = '';
    const code = await runIpam({ env: { ...env, CNI_COMMAND: command }, stdin: () => Promise.resolve(stdin), stdout: (s) => (stdout += s + '\n') }, openDatastore);
    return { stdout, code };
  };
}

export const runIpamInProcess: IpamRunner = ipamRunner();

function realpath(p: string): string | undefined {
  try {
    return realpathSync.native(p);
  } catch {
    return undefined;
  }
}

/**
 * Whether this call runs in-process. Throws like the exec path when the plugin is not in CNI_PATH.
 * `ownBinDir`: the directory of this executable, or a function giving it (undefined: never in-process).
 */
export function useInProcessIpam(type: string, stdin: string, env: NodeJS.ProcessEnv, cniPath: string[], ownBinDir: string | undefined | (() => string | undefined)): boolean {
  if (type !== IN_PROCESS_IPAM || env.TABBY_CNI_IPAM === 'exec') return false;
  const own = typeof ownBinDir === 'function' ? ownBinDir() : ownBinDir;
  if (own === undefined) return false;
  let conf: { ipam?: { in_process?: unknown } } | undefined;
  try {
    conf = JSON.parse(stdin) as typeof conf;
  } catch {
    return false;
  }
  const sw = conf?.ipam?.in_process;
  if (sw !== undefined && sw !== true && sw !== false) throw new CniError(CniCode.InvalidNetworkConfig, 'ipam.in_process must be true or false');
  if (sw === false) return false;
  const found = realpath(findPlugin(type, cniPath));
  return found !== undefined && found === realpath(join(own, IN_PROCESS_IPAM));
}

/** `ownBinDir` may be a function: it is then asked only when ipam.type is tabby-ipam. */
export function ipamDelegate(exec: Delegate, ownBinDir: string | undefined | (() => string | undefined), run: IpamRunner = runIpamInProcess): Delegate {
  return async (type, command, stdin, env, cniPath) => {
    if (!useInProcessIpam(type, stdin, env, cniPath, ownBinDir)) return exec(type, command, stdin, env, cniPath);
    return delegateOutput(type, command, await run(command, stdin, env));
  };
}
