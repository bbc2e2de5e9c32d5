/**
 * Skip helpers for tests that need root or an external program. They return a reason string
 * (print it with t.skip(reason)) or undefined when the test can run — never skip silently.
 */
import { execFileSync } from 'node:child_process';

export function needRoot(): string | undefined {
  return process.getuid?.() === 0 ? undefined : 'needs root (network namespaces / daemons)';
}

export function needCommand(cmd: string, pkg = cmd): string | undefined {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return undefined;
  } catch {
    return `needs ${cmd} (Debian package ${pkg}; scripts/install-deps.sh installs it)`;
  }
}

/** First defined reason, for combining requirements. */
export function firstReason(...reasons: Array<string | undefined>): string | undefined {
  return reasons.find((r) => r !== undefined);
}
