/**
 * install-cni: what the tabby-node DaemonSet's init container does on every node (Calico's
 * `install-cni`). It
 *  - copies the CNI plugin (dist/bin bundles and chunks, production node_modules, the node binary) into a
 *    content-addressed runtime dir under the host's CNI bin dir, and writes the `tabby` and
 *    `tabby-ipam` launchers next to it (temp file + rename, so a runtime never sees half a file);
 *  - renders the conflist from CNI_NETWORK_CONFIG with node name, MTU and kubeconfig path;
 *  - writes a kubeconfig (mode 0600) for the plugin from a service-account token;
 *  - refuses to replace a conflist it did not write, unless `force`.
 * Every path is injected; resolveInstallCniOptions() reads them from the environment with the
 * names Calico's installer uses.
 */
import { createHash } from 'node:crypto';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { parse, stringify } from 'yaml';
import { shimScript } from '../cni/shim/script.js';
import { TabbyError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';

export class InstallCniError extends TabbyError {}

/** The CNI plugins installed, with the bundle each launcher runs. */
export const CNI_PLUGINS = [
  { name: 'tabby', bundle: 'dist/bin/tabby.mjs' },
  { name: 'tabby-ipam', bundle: 'dist/bin/tabby-ipam.mjs' },
] as const;

export const DEFAULT_CONF_NAME = '10-tabby.conflist';
export const KUBECONFIG_NAME = 'tabby-kubeconfig';
export const RUNTIME_DIR_NAME = 'tabby.d';
export const DEFAULT_MTU = 1500;
/** Chained plugins install-cni supplies when the host lacks them (never replaced when present). */
export const EXTRA_PLUGINS = ['portmap', 'loopback'] as const;

/** The conflist the ConfigMap `tabby-config` carries (test/deploy keeps the two equal). */
export const DEFAULT_NETWORK_CONFIG = `{
  "name": "k8s-pod-network",
  "cniVersion": "1.0.0",
  "plugins": [
    {
      "type": "tabby",
      "log_level": "info",
      "datastore_type": "kubernetes",
      "nodename": "__KUBERNETES_NODE_NAME__",
      "mtu": __CNI_MTU__,
      "ipam": { "type": "tabby-ipam" },
      "kubernetes": { "kubeconfig": "__KUBECONFIG_FILEPATH__" }
    },
    {
      "type": "portmap",
      "snat": true,
      "capabilities": { "portMappings": true }
    }
  ]
}`;

export interface ClusterAccess {
  /** https://host:port of the API server. */
  server: string;
  /** PEM of the cluster CA; undefined with skipTlsVerify. */
  caPem: string | undefined;
  skipTlsVerify: boolean;
  /** Bearer token for the CNI plugin (never logged). */
  token: string;
}

export interface InstallCniOptions {
  /** Prefix of host paths inside the init container (`/host`); '' when run on the host itself. */
  hostRoot: string;
  /** Host CNI bin dir (CNI_BIN_DIR, default /opt/cni/bin). */
  cniBinDir: string;
  /** Host CNI config dir (CNI_NET_DIR, default /etc/cni/net.d); also the kubeconfig's dir. */
  cniNetDir: string;
  /** CNI_CONF_NAME. */
  confName: string;
  /** CNI_NETWORK_CONFIG: the conflist template with __PLACEHOLDERS__. */
  networkConfig: string;
  nodeName: string;
  /** MTU put into the conflist; 0 = the plugin reads the MTU file tabby-node writes. */
  mtu: number;
  /** Where the image keeps dist/bin, node_modules and package.json (/opt/tabby). */
  appDir: string;
  /** Node binary copied next to the bundles (process.execPath); undefined = use `node` on the host PATH. */
  nodeBinary: string | undefined;
  /** Copy node_modules (the bundles keep npm packages external). */
  copyNodeModules: boolean;
  /**
   * socat copied next to the bundles for hosts without one (the `tabby` shim prefers the host's own
   * socat on PATH; without any, every CNI call runs the Node plugin). undefined = not copied.
   */
  socatBinary?: string | undefined;
  /**
   * Standard plugins the conflist chains (portmap) taken from this dir (the image's Debian
   * containernetworking-plugins, /usr/lib/cni) when the host has none; undefined = never.
   */
  extraPluginsDir: string | undefined;
  /** Skip copying binaries (SKIP_CNI_BINARIES=tabby,tabby-ipam or all). */
  skipBinaries: boolean;
  /** Cluster access for the kubeconfig; undefined = not in Kubernetes, no kubeconfig written. */
  cluster: ClusterAccess | undefined;
  /** Replace a conflist tabby did not write. */
  force: boolean;
  log: Logger;
}

export interface InstallCniResult {
  /** Launchers written, host paths. */
  binaries: string[];
  /** Runtime dir (host path) the launchers use; undefined when binaries were skipped. */
  runtimeDir: string | undefined;
  /** False when an identical runtime dir was already there. */
  runtimeCopied: boolean;
  conflist: string;
  kubeconfig: string | undefined;
}

/** Write a file so readers see either the old or the new content (temp file in the same dir + rename). */
export function writeFileAtomic(path: string, data: string | Buffer, mode: number): void {
  const tmp = `${path}.tabby-tmp-${process.pid}`;
  try {
    writeFileSync(tmp, data, { mode });
    chmodSync(tmp, mode); // umask must not loosen or tighten what we asked for
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

function parseMtuValue(raw: string, what: string): number {
  const s = raw.trim();
  const n = /^\d+$/.test(s) ? Number(s) : NaN;
  if (!(n === 0 || (n >= 68 && n <= 65535))) {
    throw new InstallCniError('INSTALL_CNI_BAD_MTU', `${what} is not an MTU: ${JSON.stringify(raw)}`, {
      hint: 'use an integer between 68 and 65535, or 0 to let the plugin read the MTU file',
    });
  }
  return n;
}

/** The MTU for the conflist: CNI_MTU when set (0 = auto), else the MTU file, else 1500. */
export function resolveMtu(envMtu: string | undefined, mtuFileText: string | undefined): number {
  if (envMtu !== undefined && envMtu.trim() !== '') return parseMtuValue(envMtu, 'CNI_MTU');
  if (mtuFileText !== undefined && mtuFileText.trim() !== '') {
    const n = parseMtuValue(mtuFileText, 'the MTU file');
    if (n > 0) return n;
  }
  return DEFAULT_MTU;
}

/** Fill the placeholders and check the result is a conflist. */
export function renderConflist(template: string, v: { nodeName: string; mtu: number; kubeconfigPath: string }): string {
  const text = template
    .replaceAll('__KUBERNETES_NODE_NAME__', v.nodeName)
    .replaceAll('__CNI_MTU__', String(v.mtu))
    .replaceAll('__KUBECONFIG_FILEPATH__', v.kubeconfigPath);
  let conf: unknown;
  try {
    conf = JSON.parse(text);
  } catch (err) {
    throw new InstallCniError('INSTALL_CNI_BAD_CONFIG', `CNI_NETWORK_CONFIG is not JSON after substitution: ${(err as Error).message}`, {
      hint: 'check the cni_network_config key of the tabby-config ConfigMap',
    });
  }
  const plugins = (conf as { plugins?: unknown }).plugins;
  if (!Array.isArray(plugins) || plugins.length === 0) {
    throw new InstallCniError('INSTALL_CNI_BAD_CONFIG', 'CNI_NETWORK_CONFIG has no "plugins" list', {
      hint: 'give a conflist ({"name", "cniVersion", "plugins": [...]}), not a single-plugin config',
    });
  }
  return JSON.stringify(conf, null, 2) + '\n';
}

/** True when the conflist text was written by tabby (its first plugin is of type `tabby`). */
export function isTabbyConflist(text: string): boolean {
  try {
    const conf = JSON.parse(text) as { plugins?: Array<{ type?: unknown }> };
    return Array.isArray(conf.plugins) && conf.plugins[0]?.type === 'tabby';
  } catch {
    return false;
  }
}

/** Kubeconfig text for the CNI plugin (contains the token: write it 0600). */
export function renderKubeconfig(c: ClusterAccess): string {
  const cluster: Record<string, unknown> = { server: c.server };
  if (c.skipTlsVerify) cluster['insecure-skip-tls-verify'] = true;
  else if (c.caPem) cluster['certificate-authority-data'] = Buffer.from(c.caPem).toString('base64');
  else {
    throw new InstallCniError('INSTALL_CNI_NO_CA', 'no cluster CA certificate for the CNI kubeconfig', {
      hint: 'mount the service-account CA (ca.crt) or set SKIP_TLS_VERIFY=true',
    });
  }
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'local', cluster }],
    users: [{ name: 'tabby-cni-plugin', user: { token: c.token } }],
    contexts: [{ name: 'tabby-context', context: { cluster: 'local', user: 'tabby-cni-plugin' } }],
    'current-context': 'tabby-context',
  };
  return '# Kubeconfig for the tabby CNI plugin, written by tabby-node install-cni.\n' + stringify(doc);
}

/** The token of a kubeconfig renderKubeconfig() wrote (its tabby-cni-plugin user), or undefined. */
export function tokenOfKubeconfig(text: string): string | undefined {
  try {
    const doc = parse(text) as { users?: Array<{ name?: string; user?: { token?: unknown } }> } | null;
    const t = doc?.users?.find((u) => u.name === 'tabby-cni-plugin')?.user?.token;
    return typeof t === 'string' && t !== '' ? t : undefined;
  } catch {
    return undefined;
  }
}

/** https URL for KUBERNETES_SERVICE_HOST/PORT (brackets for IPv6). */
export function apiServerUrl(host: string, port: string, protocol = 'https'): string {
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `${protocol}://${h}:${port}`;
}

/** Write (or refresh) the CNI kubeconfig; returns its path inside this container. */
export function writeCniKubeconfig(o: Pick<InstallCniOptions, 'hostRoot' | 'cniNetDir'>, c: ClusterAccess): string {
  const dir = o.hostRoot + o.cniNetDir;
  mkdirSync(dir, { recursive: true });
  const path = join(dir, KUBECONFIG_NAME);
  writeFileAtomic(path, renderKubeconfig(c), 0o600);
  return path;
}

function launcherScript(pluginName: string, bundle: string, runtimeId: string, withNode: boolean, withSocat: boolean): string {
  const node = withNode ? '"$d/node"' : 'node';
  if (pluginName === 'tabby') {
    // The thin client of tabby-node's CNI server; the Node plugin in the runtime dir is its fallback.
    return shimScript({
      origin: 'Written by tabby-node install-cni.',
      prelude: ['case $0 in */*) b=${0%/*} ;; *) b=. ;; esac', `d=$b/${RUNTIME_DIR_NAME}/${runtimeId}`],
      fallback: [`exec ${node} "$d/${bundle}" "$@"`],
      ...(withSocat ? { socatFallback: '"$d/socat"' } : {}),
    });
  }
  return [
    '#!/bin/sh',
    `# ${pluginName}: tabby CNI plugin launcher, written by tabby-node install-cni.`,
    `d="$(dirname "$0")/${RUNTIME_DIR_NAME}/${runtimeId}"`,
    `exec ${node} "$d/${bundle}" "$@"`,
    '',
  ].join('\n');
}

/** Files of dist/bin the runtime needs: entry bundles and their chunks (source maps left out). */
function distFiles(appDir: string): string[] {
  const root = join(appDir, 'dist/bin');
  return (readdirSync(root, { recursive: true }) as string[])
    .filter((rel) => rel.endsWith('.mjs') && statSync(join(root, rel)).isFile())
    .sort();
}

/** Identity of what would be copied: bundles and chunks, package.json and the node binary's size. */
function runtimeId(o: InstallCniOptions): string {
  const h = createHash('sha256');
  for (const rel of distFiles(o.appDir)) h.update(rel).update(readFileSync(join(o.appDir, 'dist/bin', rel)));
  h.update(readFileSync(join(o.appDir, 'package.json')));
  if (o.nodeBinary) h.update(`node:${statSync(o.nodeBinary).size}`);
  if (o.socatBinary) h.update(`socat:${statSync(o.socatBinary).size}`);
  h.update(`modules:${o.copyNodeModules}`);
  return h.digest('hex').slice(0, 16);
}

function installBinaries(o: InstallCniOptions): { binaries: string[]; runtimeDir: string; copied: boolean } {
  for (const p of CNI_PLUGINS) {
    if (!existsSync(join(o.appDir, p.bundle))) {
      throw new InstallCniError('INSTALL_CNI_NO_BUNDLE', `missing ${p.bundle} under ${o.appDir}`, {
        hint: 'run `npm run build` (the image runs it in its build stage) or set TABBY_APP_DIR',
      });
    }
  }
  const binDir = o.hostRoot + o.cniBinDir;
  const runtimesDir = join(binDir, RUNTIME_DIR_NAME);
  mkdirSync(runtimesDir, { recursive: true });
  const id = runtimeId(o);
  const finalDir = join(runtimesDir, id);
  let copied = false;
  if (!existsSync(finalDir)) {
    // Build the runtime under a temp name, then rename: the directory appears complete or not at all.
    const tmp = join(runtimesDir, `.tmp-${id}-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    try {
      // The whole dist/bin: the build splits lazily imported modules into dist/bin/chunks.
      for (const rel of distFiles(o.appDir)) {
        mkdirSync(dirname(join(tmp, 'dist/bin', rel)), { recursive: true });
        cpSync(join(o.appDir, 'dist/bin', rel), join(tmp, 'dist/bin', rel));
      }
      cpSync(join(o.appDir, 'package.json'), join(tmp, 'package.json'));
      if (o.copyNodeModules) cpSync(join(o.appDir, 'node_modules'), join(tmp, 'node_modules'), { recursive: true, dereference: true });
      if (o.nodeBinary) {
        cpSync(o.nodeBinary, join(tmp, 'node'));
        chmodSync(join(tmp, 'node'), 0o755);
      }
      if (o.socatBinary) {
        cpSync(o.socatBinary, join(tmp, 'socat'));
        chmodSync(join(tmp, 'socat'), 0o755);
      }
      renameSync(tmp, finalDir);
      copied = true;
    } catch (err) {
      rmSync(tmp, { recursive: true, force: true });
      throw err;
    }
  }
  const binaries: string[] = [];
  for (const p of CNI_PLUGINS) {
    const path = join(binDir, p.name);
    writeFileAtomic(path, launcherScript(p.name, p.bundle, id, o.nodeBinary !== undefined, o.socatBinary !== undefined), 0o755);
    binaries.push(join(o.cniBinDir, p.name));
  }
  if (o.extraPluginsDir) {
    for (const name of EXTRA_PLUGINS) {
      const src = join(o.extraPluginsDir, name);
      const dst = join(binDir, name);
      if (existsSync(dst) || !existsSync(src)) continue;
      writeFileAtomic(dst, readFileSync(src), 0o755);
      binaries.push(join(o.cniBinDir, name));
    }
  }
  // Older runtimes are no longer referenced by a launcher.
  for (const name of readdirSync(runtimesDir)) {
    if (name !== id) rmSync(join(runtimesDir, name), { recursive: true, force: true });
  }
  return { binaries, runtimeDir: join(o.cniBinDir, RUNTIME_DIR_NAME, id), copied };
}

/** Install the CNI plugin and its configuration on this node. */
export function installCni(o: InstallCniOptions): InstallCniResult {
  const netDir = o.hostRoot + o.cniNetDir;
  const confPath = join(netDir, o.confName);
  if (!o.confName.endsWith('.conflist')) {
    throw new InstallCniError('INSTALL_CNI_BAD_CONF_NAME', `CNI_CONF_NAME ${JSON.stringify(o.confName)} does not end in .conflist`, {
      hint: 'use e.g. 10-tabby.conflist',
    });
  }
  // Check before changing anything: a foreign conflist means another network plugin owns this node.
  if (existsSync(confPath) && !o.force) {
    const existing = readFileSync(confPath, 'utf8');
    if (!isTabbyConflist(existing)) {
      throw new InstallCniError('INSTALL_CNI_FOREIGN_CONFIG', `${join(o.cniNetDir, o.confName)} exists and was not written by tabby`, {
        hint: 'remove the other network plugin first, or set TABBY_CNI_FORCE=true (--force) to replace it',
      });
    }
  }
  const conflist = renderConflist(o.networkConfig, {
    nodeName: o.nodeName,
    mtu: o.mtu,
    kubeconfigPath: join(o.cniNetDir, KUBECONFIG_NAME),
  });

  let bins: ReturnType<typeof installBinaries> | undefined;
  if (!o.skipBinaries) bins = installBinaries(o);
  else o.log.info('install-cni: SKIP_CNI_BINARIES set, leaving the CNI bin dir alone');

  let kubeconfig: string | undefined;
  if (o.cluster) {
    writeCniKubeconfig(o, o.cluster);
    kubeconfig = join(o.cniNetDir, KUBECONFIG_NAME);
  } else o.log.info('install-cni: not running in Kubernetes (no KUBERNETES_SERVICE_HOST); no kubeconfig written');

  // The conflist goes last: once it exists the kubelet uses the plugin, so everything it needs is in place.
  mkdirSync(netDir, { recursive: true });
  writeFileAtomic(confPath, conflist, 0o644);

  const earlier = readdirSync(netDir).filter((n) => (n.endsWith('.conf') || n.endsWith('.conflist') || n.endsWith('.json')) && n < o.confName);
  if (earlier.length) {
    o.log.warn({ files: earlier }, 'install-cni: other CNI configs sort before ours; the container runtime will use the first one');
  }
  const result: InstallCniResult = {
    binaries: bins?.binaries ?? [],
    runtimeDir: bins?.runtimeDir,
    runtimeCopied: bins?.copied ?? false,
    conflist: join(o.cniNetDir, o.confName),
    kubeconfig,
  };
  o.log.info({ ...result, node: o.nodeName, mtu: o.mtu }, 'install-cni: done');
  return result;
}

function envBool(v: string | undefined): boolean {
  return v !== undefined && /^(1|true|yes)$/i.test(v.trim());
}

export interface ResolveInputs {
  env: NodeJS.ProcessEnv;
  argv?: readonly string[];
  log: Logger;
  /** Reads a file or returns undefined when it does not exist (injected for tests). */
  readFile?: (path: string) => string | undefined;
  /** Token for the kubeconfig when in Kubernetes (the CLI asks the API for a tabby-cni-plugin token). */
  token?: string;
  appDir?: string;
  nodeBinary?: string;
}

export const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** The image's socat (Dockerfile), copied for hosts without one. */
export const DEFAULT_SOCAT = '/usr/bin/socat';

/** An environment variable, undefined when unset or empty. */
function envValue(env: NodeJS.ProcessEnv, k: string): string | undefined {
  return env[k] === undefined || env[k] === '' ? undefined : env[k];
}

export function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** TABBY_HOST_ROOT (default /host); '' is meaningful: running on the host itself, paths are used as they are. */
export function hostRootFromEnv(env: NodeJS.ProcessEnv): string {
  return (env.TABBY_HOST_ROOT ?? '/host').replace(/\/+$/, '');
}

/** CNI_NET_DIR (default /etc/cni/net.d), a host path. */
export function cniNetDirFromEnv(env: NodeJS.ProcessEnv): string {
  return envValue(env, 'CNI_NET_DIR') ?? '/etc/cni/net.d';
}

/**
 * The API server as the CNI kubeconfig names it, from KUBERNETES_SERVICE_HOST/PORT/PROTOCOL,
 * SKIP_TLS_VERIFY and the service-account ca.crt; undefined when not in Kubernetes (no host).
 */
export function clusterFromEnv(env: NodeJS.ProcessEnv, read: (path: string) => string | undefined = readIfExists): Omit<ClusterAccess, 'token'> | undefined {
  const val = (k: string): string | undefined => envValue(env, k);
  const host = val('KUBERNETES_SERVICE_HOST');
  if (!host) return undefined;
  const skipTlsVerify = envBool(val('SKIP_TLS_VERIFY'));
  return {
    server: apiServerUrl(host, val('KUBERNETES_SERVICE_PORT') ?? '443', val('KUBERNETES_SERVICE_PROTOCOL') ?? 'https'),
    caPem: skipTlsVerify ? undefined : read(join(SA_DIR, 'ca.crt')),
    skipTlsVerify,
  };
}

/**
 * Options from the environment, with Calico's installer names: CNI_BIN_DIR, CNI_NET_DIR, CNI_CONF_NAME,
 * CNI_NETWORK_CONFIG (or CNI_NETWORK_CONFIG_FILE), KUBERNETES_NODE_NAME, CNI_MTU, SKIP_CNI_BINARIES,
 * SKIP_TLS_VERIFY, KUBERNETES_SERVICE_HOST/PORT/PROTOCOL; tabby's own: TABBY_HOST_ROOT (default /host),
 * TABBY_APP_DIR, TABBY_MTU_FILE, TABBY_CNI_FORCE, TABBY_CNI_HOST_NODE (use node from the host PATH),
 * TABBY_CNI_EXTRA_PLUGINS_DIR (where portmap/loopback come from when the host has none; default /usr/lib/cni),
 * TABBY_CNI_SOCAT (socat copied for the `tabby` shim; default /usr/bin/socat when present, '' = none).
 */
export function resolveInstallCniOptions(i: ResolveInputs): InstallCniOptions {
  const env = i.env;
  const read = i.readFile ?? readIfExists;
  const val = (k: string): string | undefined => envValue(env, k);
  const hostRoot = hostRootFromEnv(env);
  let networkConfig = val('CNI_NETWORK_CONFIG');
  const confFile = val('CNI_NETWORK_CONFIG_FILE');
  if (!networkConfig && confFile) {
    networkConfig = read(confFile);
    if (networkConfig === undefined) {
      throw new InstallCniError('INSTALL_CNI_BAD_CONFIG', `CNI_NETWORK_CONFIG_FILE ${confFile} does not exist`, { hint: 'mount the file or set CNI_NETWORK_CONFIG' });
    }
  }
  const mtuFile = val('TABBY_MTU_FILE') ?? '/var/lib/tabby/mtu';
  const skip = val('SKIP_CNI_BINARIES') ?? '';
  let cluster: ClusterAccess | undefined;
  const where = clusterFromEnv(env, read);
  if (where) {
    const token = i.token ?? read(join(SA_DIR, 'token'))?.trim();
    if (!token) {
      throw new InstallCniError('INSTALL_CNI_NO_TOKEN', 'no service-account token for the CNI kubeconfig', {
        hint: `the pod needs its service-account token mounted at ${SA_DIR}`,
      });
    }
    cluster = { ...where, token };
  }
  const argv = i.argv ?? [];
  return {
    hostRoot,
    cniBinDir: val('CNI_BIN_DIR') ?? '/opt/cni/bin',
    cniNetDir: cniNetDirFromEnv(env),
    confName: val('CNI_CONF_NAME') ?? DEFAULT_CONF_NAME,
    networkConfig: networkConfig ?? DEFAULT_NETWORK_CONFIG,
    nodeName: val('KUBERNETES_NODE_NAME') ?? val('NODENAME') ?? hostname(),
    mtu: resolveMtu(val('CNI_MTU'), read(mtuFile)),
    appDir: val('TABBY_APP_DIR') ?? i.appDir ?? process.cwd(),
    nodeBinary: envBool(val('TABBY_CNI_HOST_NODE')) ? undefined : (i.nodeBinary ?? process.execPath),
    copyNodeModules: true,
    socatBinary: val('TABBY_CNI_SOCAT') ?? (env.TABBY_CNI_SOCAT === '' ? undefined : existsSync(DEFAULT_SOCAT) ? DEFAULT_SOCAT : undefined),
    extraPluginsDir: val('TABBY_CNI_EXTRA_PLUGINS_DIR') ?? '/usr/lib/cni',
    skipBinaries: skip === 'all' || skip.split(',').includes('tabby'),
    cluster,
    force: argv.includes('--force') || envBool(val('TABBY_CNI_FORCE')),
    log: i.log,
  };
}
