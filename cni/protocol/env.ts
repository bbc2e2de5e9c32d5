/**
 * The CNI invocation: CNI_* environment variables, CNI_ARGS and the network config on stdin.
 * Every check throws a CniError with the spec's code, before the plugin writes anything.
 */
import { readFileSync } from 'node:fs';
import { CniCode, CniError } from './errors.js';

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'GC' | 'STATUS';
const COMMANDS: readonly CniCommand[] = ['ADD', 'DEL', 'CHECK', 'VERSION', 'GC', 'STATUS'];

export interface CniEnv {
  command: CniCommand;
  containerId: string;
  netns: string;
  ifname: string;
  path: string[];
  /** CNI_ARGS parsed (`K=V;K2=V2`). */
  args: Record<string, string>;
}

/** Variables each command needs (as the reference skel library enforces them). */
const REQUIRED: Record<CniCommand, Array<keyof NodeJS.ProcessEnv>> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_PATH'],
  GC: ['CNI_PATH'],
  STATUS: ['CNI_PATH'],
  VERSION: [],
};

export function parseCniArgs(s: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!s) return out;
  for (const pair of s.split(';')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CniError(CniCode.InvalidEnv, `CNI_ARGS entry ${JSON.stringify(pair)} is not KEY=VALUE`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

export function parseCniEnv(env: NodeJS.ProcessEnv): CniEnv {
  const cmd = env.CNI_COMMAND;
  if (!cmd || !(COMMANDS as readonly string[]).includes(cmd)) {
    throw new CniError(CniCode.InvalidEnv, cmd ? `unknown CNI_COMMAND ${JSON.stringify(cmd)}` : 'CNI_COMMAND is not set', `one of ${COMMANDS.join(', ')}`);
  }
  const command = cmd as CniCommand;
  const missing = REQUIRED[command].filter((k) => !env[k]);
  if (missing.length > 0) {
    throw new CniError(CniCode.InvalidEnv, `required environment variables missing for ${command}: ${missing.join(', ')}`);
  }
  return {
    command,
    containerId: env.CNI_CONTAINERID ?? '',
    netns: env.CNI_NETNS ?? '',
    ifname: env.CNI_IFNAME ?? '',
    path: (env.CNI_PATH ?? '').split(':').filter(Boolean),
    args: parseCniArgs(env.CNI_ARGS),
  };
}

/** Parse the network config JSON: 6 on undecodable input, 7 when it is not an object with name/type. */
export function parseNetConf(text: string): Record<string, unknown> & { cniVersion: string; name: string; type: string } {
  let conf: unknown;
  try {
    conf = JSON.parse(text);
  } catch (err) {
    throw new CniError(CniCode.DecodeFailure, 'failed to decode the network configuration on stdin', (err as Error).message);
  }
  if (!conf || typeof conf !== 'object' || Array.isArray(conf)) {
    throw new CniError(CniCode.DecodeFailure, 'network configuration on stdin is not a JSON object');
  }
  const c = conf as Record<string, unknown>;
  for (const key of ['cniVersion', 'name', 'type'] as const) {
    if (typeof c[key] !== 'string' || c[key] === '') {
      throw new CniError(CniCode.InvalidNetworkConfig, `network configuration has no ${key}`);
    }
  }
  return c as Record<string, unknown> & { cniVersion: string; name: string; type: string };
}

/**
 * Read all of stdin (the runtime closes it after writing the config). Without a stream argument it
 * reads fd 0 synchronously first: `process.stdin` would load net/stream (~5 ms of a per-pod exec).
 */
export async function readStdin(stream?: NodeJS.ReadableStream): Promise<string> {
  if (!stream) {
    try {
      return readFileSync(0, 'utf8');
    } catch (err) {
      // EAGAIN: a non-blocking stdin (shared with a parent that set O_NONBLOCK): read it as a stream.
      if ((err as { code?: string }).code !== 'EAGAIN') throw err;
      stream = process.stdin;
    }
  }
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : c);
  return Buffer.concat(chunks).toString('utf8');
}
