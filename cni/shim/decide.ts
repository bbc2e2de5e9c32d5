/**
 * Whether tabby-node's CNI server may serve a request itself, or must answer `fallback` so the shim
 * runs the Node plugin. The server runs in another mount namespace (the tabby-node container) and
 * must act on exactly the files the runtime meant; when in doubt it declines. Pure: file-system
 * questions go through `FsProbe`.
 */
import { resolve } from 'node:path';
import { DEFAULT_RUN_DIR, type ShimRequest } from './protocol.js';

export interface FsProbe {
  /** `<dev>:<ino>` of the file a path names (following links), or undefined when it is not there. */
  identity(path: string): string | undefined;
  exists(path: string): boolean;
  /** The plugin is an executable in one of these directories. */
  findPlugin(type: string, dirs: string[]): boolean;
}

function parseConf(stdin: string): Record<string, unknown> | undefined {
  try {
    const c = JSON.parse(stdin) as unknown;
    return c && typeof c === 'object' && !Array.isArray(c) ? (c as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** The run dir a request belongs to: the config's `run_dir`, else TABBY_RUN_DIR, else /var/run/tabby. */
export function requestRunDir(conf: Record<string, unknown> | undefined, env: Record<string, string>): string {
  return str(conf?.run_dir) ?? str(env.TABBY_RUN_DIR) ?? DEFAULT_RUN_DIR;
}

/** undefined = serve it; else the reason for `fallback`. */
export function fallbackReason(req: ShimRequest, serverRunDir: string, probe: FsProbe): string | undefined {
  const env = req.env;
  if (env.TABBY_CNI_SERVER === 'off') return 'TABBY_CNI_SERVER=off';
  // A test seam that SIGKILLs the process: it must kill a plugin process, never tabby-node.
  if (env.TABBY_IPAM_TEST_CRASH) return 'TABBY_IPAM_TEST_CRASH is set';
  const conf = parseConf(req.stdin);
  // Undecodable config: serve it, the handlers answer error 6/7 exactly as the Node plugin does.
  if (!conf) return undefined;
  const runDir = requestRunDir(conf, env);
  if (resolve(runDir) !== resolve(serverRunDir)) return `run_dir ${runDir} is not this server's ${serverRunDir}`;
  const cmd = env.CNI_COMMAND;
  const netns = env.CNI_NETNS;
  if ((cmd === 'ADD' || cmd === 'CHECK') && netns) {
    if (!req.meta.netns) return 'the shim could not stat CNI_NETNS';
    const here = probe.identity(netns);
    if (here === undefined) return `CNI_NETNS ${netns} is not visible to tabby-node`;
    if (here !== req.meta.netns) return `CNI_NETNS ${netns} is another file for tabby-node`;
  }
  if (cmd && cmd !== 'VERSION' && env.CNI_PATH) {
    const ipam = conf.ipam && typeof conf.ipam === 'object' ? (conf.ipam as Record<string, unknown>) : {};
    const type = str(ipam.type) ?? 'tabby-ipam';
    if (!type.includes('/') && !probe.findPlugin(type, env.CNI_PATH.split(':').filter(Boolean))) return `IPAM plugin ${type} is not visible to tabby-node in CNI_PATH`;
  }
  // Files the datastore clients read must be the runtime's: missing here → let the Node plugin run.
  const k8s = conf.kubernetes && typeof conf.kubernetes === 'object' ? (conf.kubernetes as Record<string, unknown>) : {};
  const files = [str(k8s.kubeconfig), str(conf.etcd_ca_cert_file), str(conf.etcd_cert_file), str(conf.etcd_key_file), env.KUBECONFIG, env.ETCD_CA_CERT_FILE, env.ETCD_CERT_FILE, env.ETCD_KEY_FILE];
  for (const f of files) if (f && !probe.exists(f)) return `${f} is not visible to tabby-node`;
  return undefined;
}
