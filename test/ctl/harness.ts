/** Runs tabbyctl in-process against an injected datastore and captures its output. */
import type { Datastore } from '../../datastore/types.js';
import { runCtl } from '../../ctl/cli.js';

export interface CtlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function ctl(ds: Datastore | undefined, args: string[], stdin = '', env: Record<string, string | undefined> = {}): Promise<CtlResult> {
  let stdout = '';
  let stderr = '';
  const code = await runCtl(args, {
    out: (s) => (stdout += s),
    err: (s) => (stderr += s),
    readStdin: async () => stdin,
    env,
    ...(ds === undefined ? {} : { datastore: ds }),
  });
  return { code, stdout, stderr };
}

export const poolYaml = (name: string, cidr: string, extra = '') => `apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: ${name}
spec:
  cidr: ${cidr}
${extra}`;
