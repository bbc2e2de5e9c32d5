/**
 * `tabby-node install-cni [--force]`: the CLI around installCni(). In Kubernetes it asks the API
 * server for a token of the tabby-cni-plugin ServiceAccount (TokenRequest, like Calico's installer)
 * and falls back to the pod's own token when that is refused.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorMessage } from '../lib/errors.js';
import { createLogger } from '../lib/log.js';
import type { Logger } from '../lib/log.js';
import { CNI_SERVICE_ACCOUNT, CniTokenError, DEFAULT_TOKEN_EXPIRATION_SEC, isRefusal, parseCniTokenConfig } from './cni-token.js';
import { kubeConfigFor, tokenRequester } from './cni-token-k8s.js';
import { installCni, resolveInstallCniOptions, SA_DIR } from './install-cni.js';
import type { ClusterAccess } from './install-cni.js';

export const INSTALL_CNI_USAGE = `usage: tabby-node install-cni [--force]

Installs the tabby CNI plugin on this node: copies the plugin into CNI_BIN_DIR (default /opt/cni/bin),
writes CNI_CONF_NAME (default 10-tabby.conflist) and a kubeconfig into CNI_NET_DIR (default /etc/cni/net.d).
Host paths are written under TABBY_HOST_ROOT (default /host, '' on the host itself).
  --force   replace a conflist that another network plugin wrote (env TABBY_CNI_FORCE=true)
Environment: CNI_NETWORK_CONFIG, CNI_NETWORK_CONFIG_FILE, CNI_MTU, KUBERNETES_NODE_NAME, SKIP_CNI_BINARIES,
SKIP_TLS_VERIFY, TABBY_APP_DIR, TABBY_MTU_FILE, TABBY_CNI_HOST_NODE, TABBY_CNI_TOKEN_EXPIRATION (default 24h).
`;

/** The checkout / image dir holding package.json above this module (dist/bin/… or node/…). */
export function findAppDir(from = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
}

/**
 * TokenRequest for the tabby-cni-plugin ServiceAccount (node/cni-token-k8s.ts, the same call tabby-node
 * refreshes it with); resolves undefined when refused or unreachable, after a warning without the token.
 */
export async function requestCniToken(cluster: ClusterAccess, namespace: string, log: Logger, expirationSec = DEFAULT_TOKEN_EXPIRATION_SEC): Promise<string | undefined> {
  try {
    const request = await tokenRequester(await kubeConfigFor(cluster), { namespace, expirationSec });
    return (await request()).token;
  } catch (err) {
    const status = err instanceof CniTokenError ? err.status : undefined;
    log.warn({ status, err: errorMessage(err) }, `install-cni: TokenRequest for ${CNI_SERVICE_ACCOUNT} ${isRefusal(status) ? 'refused' : 'failed'}; using the pod token`);
    return undefined;
  }
}

/** Runs install-cni; returns the process exit code. */
export async function runInstallCni(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(INSTALL_CNI_USAGE);
    return 0;
  }
  const unknown = argv.filter((a) => a !== '--force');
  if (unknown.length) {
    process.stderr.write(`install-cni: unknown argument ${unknown[0]}\n${INSTALL_CNI_USAGE}`);
    return 2;
  }
  const log = createLogger({ name: 'install-cni' });
  try {
    const opts = resolveInstallCniOptions({ env, argv, log, appDir: findAppDir() });
    if (opts.cluster) {
      let ns = 'kube-system';
      try {
        ns = readFileSync(join(SA_DIR, 'namespace'), 'utf8').trim() || ns;
      } catch {
        // outside a pod: keep kube-system
      }
      const token = await requestCniToken(opts.cluster, ns, log, parseCniTokenConfig(env).policy.expirationSec);
      if (token) opts.cluster = { ...opts.cluster, token };
    }
    installCni(opts);
    return 0;
  } catch (err) {
    process.stderr.write(`install-cni: ${errorMessage(err)}\n`);
    return 1;
  }
}
