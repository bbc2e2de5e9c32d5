/**
 * Delegated plugins through the CNI exec protocol: find the binary in CNI_PATH, run it with the
 * same stdin and CNI_* environment, parse its result or its error JSON.
 */
import { spawn } from 'node:child_process';
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

export function runPlugin(path: string, command: string, stdin: string, env: NodeJS.ProcessEnv): Promise<ExecResult> {
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

/** Run a delegate; its error JSON becomes a CniError with the delegate's code, naming the delegate. */
export async function execDelegate(type: string, command: string, stdin: string, env: NodeJS.ProcessEnv, cniPath: string[]): Promise<unknown> {
  const path = findPlugin(type, cniPath);
  const r = await runPlugin(path, command, stdin, env);
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
