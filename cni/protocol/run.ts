/**
 * The common shape of a CNI plugin process: parse env, answer VERSION, check the config's version,
 * dispatch to the command handler, print the result or the error JSON on stdout (never logs), and
 * return the exit code. Handlers throw CniError for spec errors; anything else becomes `fallbackCode`.
 */
import { errorMessage } from '../../lib/errors.js';
import { CniCode, CniError } from './errors.js';
import { type CniEnv, parseCniEnv, parseNetConf } from './env.js';
import { LATEST_VERSION, checkVersion, versionInfo, versionLess } from './version.js';

export type NetConf = ReturnType<typeof parseNetConf>;

export interface CniHandlers {
  /** Each returns the JSON to print, or undefined for commands with no output (DEL, CHECK, GC, STATUS). */
  add(env: CniEnv, conf: NetConf): Promise<unknown>;
  del(env: CniEnv, conf: NetConf): Promise<void>;
  check(env: CniEnv, conf: NetConf): Promise<void>;
  gc(env: CniEnv, conf: NetConf): Promise<void>;
  status(env: CniEnv, conf: NetConf): Promise<void>;
}

export interface CniIo {
  env: NodeJS.ProcessEnv;
  stdin: () => Promise<string>;
  stdout: (s: string) => void;
  /** Maps unexpected errors to a CniError (e.g. datastore unreachable → 11). */
  mapError?: (err: unknown) => CniError;
}

/** Run one invocation; resolves to the exit code. */
export async function runCni(h: CniHandlers, io: CniIo): Promise<number> {
  let version = LATEST_VERSION;
  try {
    const env = parseCniEnv(io.env);
    if (env.command === 'VERSION') {
      io.stdout(JSON.stringify(versionInfo()));
      return 0;
    }
    const conf = parseNetConf(await io.stdin());
    version = conf.cniVersion;
    version = checkVersion(conf.cniVersion);
    const needs = env.command === 'CHECK' ? '0.4.0' : env.command === 'GC' || env.command === 'STATUS' ? '1.1.0' : undefined;
    if (needs && versionLess(version, needs)) {
      throw new CniError(CniCode.IncompatibleVersion, `${env.command} needs cniVersion ${needs} or later (config has ${version})`);
    }
    switch (env.command) {
      case 'ADD':
        io.stdout(JSON.stringify(await h.add(env, conf)));
        break;
      case 'DEL':
        await h.del(env, conf);
        break;
      case 'CHECK':
        await h.check(env, conf);
        break;
      case 'GC':
        await h.gc(env, conf);
        break;
      case 'STATUS':
        await h.status(env, conf);
        break;
    }
    return 0;
  } catch (err) {
    const ce = err instanceof CniError ? err : io.mapError ? io.mapError(err) : new CniError(CniCode.PluginBase, errorMessage(err));
    io.stdout(JSON.stringify(ce.toJSON(version)));
    return 1;
  }
}
