/**
 * The `tabbyctl node …` subcommands as plain functions (the ctl yargs module calls these):
 * `node status [--run-dir]` and `node checksystem`. They return text and an exit code; no printing.
 */
import { errorMessage } from '../lib/errors.js';
import { DEFAULT_RUN_DIR } from './config.js';
import { formatNodeStatus, readStatus, StatusUnavailableError } from './status.js';
import { defaultChecks, formatChecks, runChecks, type CheckDefinition } from './checksystem.js';

export interface CommandOutput {
  stdout: string;
  stderr: string;
  code: number;
}

export async function nodeStatusCommand(opts: { runDir?: string; verbose?: boolean; json?: boolean } = {}): Promise<CommandOutput> {
  const runDir = opts.runDir ?? process.env.TABBY_RUN_DIR ?? DEFAULT_RUN_DIR;
  try {
    const snap = await readStatus(runDir);
    return { stdout: opts.json ? `${JSON.stringify(snap, null, 2)}\n` : formatNodeStatus(snap, new Date(), opts.verbose ?? false), stderr: '', code: 0 };
  } catch (err) {
    if (err instanceof StatusUnavailableError && err.code === 'NodeNotRunning') {
      return { stdout: 'tabby-node is not running.\n', stderr: `${errorMessage(err)}\n`, code: 1 };
    }
    return { stdout: '', stderr: `${errorMessage(err)}\n`, code: 1 };
  }
}

export async function checksystemCommand(checks: CheckDefinition[] = defaultChecks()): Promise<CommandOutput> {
  const { text, ok } = formatChecks(await runChecks(checks));
  return { stdout: text, stderr: '', code: ok ? 0 : 1 };
}
