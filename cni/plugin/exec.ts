/**
 * Delegated plugins through the CNI exec protocol: find the binary in CNI_PATH, run it with the
 * same stdin and CNI_* environment, parse its result or its error JSON.
 */
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { CniCode, CniError } from '../protocol/errors.js';

export function findPlugin(type: string, cniPath: string[]): string {
  if (type.includes('/')) throw new CniError(CniCode.InvalidNetworkConfig, `plugin type ${JSON.stringify(type)} must be a bare name`);
  for (const dir of cniPath) {
    const p = join(dir, type);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not in this directory
    }
  }
  throw new CniError(CniCode.InvalidNetworkConfig, `plugin ${type} not found in CNI_PATH (${cniPath.join(':') || 'empty'})`, 'install it there or fix ipam.type');
}

export interface ExecResult {
  stdout: string;
  code: number;
}

// node:child_process (with net and stream) costs ~5 ms to load: only a real exec pays for it.
export async function runPlugin(path: string, command: string, stdin: string, env: NodeJS.ProcessEnv): Promise<ExecResult> {
  const { spawn } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    const child = spawn(path, [], { env: { ...env, CNI_COMMAND: command }, stdio: ['pipe', 'pipe', 'inherit'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.on('error', (err) => reject(new CniError(CniCode.IoFailure, `cannot run ${path}: ${err.message}`)));
    child.on('close', (code, signal) => {
      resolve({ stdout: Buffer.concat(out).toString('utf8'), code: code ?? (signal ? 128 : 1) });
    });
    child.stdin.on('error', () => {
      // the plugin may exit without reading stdin; its exit code tells the story
    });
    child.stdin.end(stdin);
  });
}

/** Runs a plugin executable: runPlugin, or tabby-node's CNI server's posix_spawn runner. */
export type PluginRunner = (path: string, command: string, stdin: string, env: NodeJS.ProcessEnv) => Promise<ExecResult>;

/** A delegate over `run`; its error JSON becomes a CniError with the delegate's code, naming the delegate. */
export function execDelegateWith(run: PluginRunner) {
  return async (type: string, command: string, stdin: string, env: NodeJS.ProcessEnv, cniPath: string[]): Promise<unknown> => {
    const path = findPlugin(type, cniPath);
    return delegateOutput(type, command, await run(path, command, stdin, env));
  };
}

/** Run a delegate through child_process. */
export const execDelegate = execDelegateWith(runPlugin);

/** A delegate's stdout and exit code → its result, or a CniError with its code naming the delegate. */
export function delegateOutput(type: string, command: string, r: ExecResult): unknown {
  const text = r.stdout.trim();
  let parsed: unknown;
  if (text !== '') {
    try {
      parsed = JSON.parse(text);
    } catch {
      if (r.code === 0) throw new CniError(CniCode.DecodeFailure, `${type} ${command} printed output that is not JSON`, text.slice(0, 200));
    }
  }
  if (r.code !== 0) {
    const e = (parsed ?? {}) as { code?: unknown; msg?: unknown; details?: unknown };
    const code = typeof e.code === 'number' ? e.code : CniCode.PluginBase;
    const msg = typeof e.msg === 'string' ? e.msg : text || `exit code ${r.code}`;
    throw new CniError(code, `${type} ${command}: ${msg}`, typeof e.details === 'string' ? e.details : undefined);
  }
  return parsed;
}
