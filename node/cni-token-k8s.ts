/**
 * The Kubernetes edge of the CNI token refresher (node/cni-token.ts): TokenRequest through
 * @kubernetes/client-node (CoreV1Api createNamespacedServiceAccountToken = POST
 * /api/v1/namespaces/<ns>/serviceaccounts/tabby-cni-plugin/token, RBAC: create serviceaccounts/token),
 * the mounted token, and the kubeconfig file. startCniTokenRefresher(env, log) is what tabby-node calls.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { join } from 'node:path';
import { loadKubernetesClient } from '../datastore/kubernetes.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { CNI_SERVICE_ACCOUNT, CniTokenError, CniTokenRefresher, parseCniTokenConfig } from './cni-token.js';
import type { CniTokenDeps, CniTokenPolicy, IssuedToken } from './cni-token.js';
import { clusterFromEnv, cniNetDirFromEnv, hostRootFromEnv, KUBECONFIG_NAME, readIfExists, SA_DIR, tokenOfKubeconfig, writeCniKubeconfig } from './install-cni.js';
import type { ClusterAccess } from './install-cni.js';

export interface TokenRequestOptions {
  namespace: string;
  serviceAccount?: string;
  expirationSec: number;
  /** Empty = the API server's default audiences (the API server itself), which is what the CNI plugin talks to. */
  audiences?: string[];
  /** Bound for the request (default 10000 ms). */
  timeoutMs?: number;
}

interface ApiErrorLike {
  code?: unknown;
  body?: unknown;
}

/** The Status message of an API error body (string or parsed), if any. */
function statusMessage(body: unknown): string | undefined {
  let b = body;
  if (typeof body === 'string') {
    try {
      b = JSON.parse(body);
    } catch {
      return body.slice(0, 200) || undefined;
    }
  }
  return b && typeof b === 'object' && 'message' in b ? String((b as { message: unknown }).message) : undefined;
}

function toCniTokenError(err: unknown, what: string): CniTokenError {
  if (err instanceof CniTokenError) return err;
  const e = (err ?? {}) as ApiErrorLike;
  const status = typeof e.code === 'number' && e.code >= 100 && e.code < 600 ? e.code : undefined;
  if (status !== undefined) {
    // client-node's own message carries the whole body and response headers; keep the Status message only.
    return new CniTokenError('CNI_TOKEN_REQUEST_FAILED', `${what}: HTTP ${status}${statusMessage(e.body) ? `: ${statusMessage(e.body)}` : ''}`, { status });
  }
  return new CniTokenError('CNI_TOKEN_REQUEST_FAILED', `${what}: ${errorMessage(err)}`, { cause: err });
}

/** A TokenRequest function for the ServiceAccount over the given KubeConfig's current context. */
export async function tokenRequester(kc: KubeConfig, o: TokenRequestOptions): Promise<() => Promise<IssuedToken>> {
  const lib = await loadKubernetesClient();
  const api = kc.makeApiClient(lib.CoreV1Api);
  const name = o.serviceAccount ?? CNI_SERVICE_ACCOUNT;
  const what = `TokenRequest for ServiceAccount ${o.namespace}/${name}`;
  const timeoutMs = o.timeoutMs ?? 10_000;
  return async () => {
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new CniTokenError('CNI_TOKEN_TIMEOUT', `${what}: no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    let res: Awaited<ReturnType<typeof api.createNamespacedServiceAccountToken>>;
    try {
      res = await Promise.race([
        api.createNamespacedServiceAccountToken({
          name,
          namespace: o.namespace,
          body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: o.audiences ?? [], expirationSeconds: o.expirationSec } },
        }),
        bound,
      ]);
    } catch (err) {
      throw toCniTokenError(err, what);
    } finally {
      clearTimeout(timer);
    }
    const token = res.status?.token;
    const exp = res.status?.expirationTimestamp;
    const expiresAtMs = exp instanceof Date ? exp.getTime() : typeof exp === 'string' ? Date.parse(exp) : NaN;
    if (typeof token !== 'string' || token === '' || !Number.isFinite(expiresAtMs)) {
      throw new CniTokenError('CNI_TOKEN_BAD_RESPONSE', `${what}: the answer has no status.token or status.expirationTimestamp`, {
        hint: 'the API server does not speak authentication.k8s.io/v1 TokenRequest as expected',
      });
    }
    return { token, expiresAtMs };
  };
}

/** A KubeConfig for explicit cluster access (install-cni's ClusterAccess). */
export async function kubeConfigFor(c: ClusterAccess): Promise<KubeConfig> {
  const lib = await loadKubernetesClient();
  const kc = new lib.KubeConfig();
  const cluster = { name: 'cluster', server: c.server, skipTLSVerify: c.skipTlsVerify, ...(c.caPem ? { caData: Buffer.from(c.caPem).toString('base64') } : {}) };
  kc.loadFromClusterAndUser(cluster, { name: 'user', token: c.token });
  return kc;
}

/** The agent's KubeConfig: KUBECONFIG when set, else client-node's default (in-cluster in a pod). */
export async function agentKubeConfig(kubeconfig: string | undefined): Promise<KubeConfig> {
  const lib = await loadKubernetesClient();
  const kc = new lib.KubeConfig();
  if (kubeconfig) kc.loadFromFile(kubeconfig);
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster()) throw new CniTokenError('CNI_TOKEN_NO_CLUSTER', `kubeconfig${kubeconfig ? ` ${kubeconfig}` : ''} has no current cluster`, { hint: 'check current-context' });
  return kc;
}

/** Where the CNI kubeconfig points: the agent's current cluster (when not in a pod). */
export function clusterOfKubeConfig(kc: KubeConfig, read: (path: string) => string | undefined = readIfExists): Omit<ClusterAccess, 'token'> {
  const c = kc.getCurrentCluster();
  if (!c) throw new CniTokenError('CNI_TOKEN_NO_CLUSTER', 'the kubeconfig has no current cluster', { hint: 'check current-context' });
  const caPem = c.caData ? Buffer.from(c.caData, 'base64').toString('utf8') : c.caFile ? read(c.caFile) : undefined;
  return { server: c.server, caPem, skipTlsVerify: c.skipTLSVerify };
}

export interface CniTokenSetup {
  /** The agent's access to the API (it needs create serviceaccounts/token for tabby-cni-plugin). */
  kc: KubeConfig;
  /** Namespace of the ServiceAccount (default: the kubeconfig context's, else kube-system). */
  namespace?: string;
  /** Server and CA the CNI kubeconfig names. */
  cluster: Omit<ClusterAccess, 'token'>;
  /** Where the CNI kubeconfig is written: hostRoot + cniNetDir + /tabby-kubeconfig. */
  target: { hostRoot: string; cniNetDir: string };
  /** The agent's mounted token file (default the service-account token); the kubeconfig user's token when absent. */
  mountedTokenFile?: string;
  policy: CniTokenPolicy;
  log: Logger;
  now?: CniTokenDeps['now'];
  sleep?: CniTokenDeps['sleep'];
}

/** A refresher wired to the API server and the files (not started). */
export async function createCniTokenRefresher(s: CniTokenSetup): Promise<CniTokenRefresher> {
  const namespace = s.namespace ?? s.kc.getContextObject(s.kc.getCurrentContext())?.namespace?.trim() ?? 'kube-system';
  const request = await tokenRequester(s.kc, { namespace: namespace || 'kube-system', expirationSec: s.policy.expirationSec });
  const file = join(s.target.hostRoot + s.target.cniNetDir, KUBECONFIG_NAME);
  const mountedFile = s.mountedTokenFile ?? join(SA_DIR, 'token');
  const deps: CniTokenDeps = {
    request,
    mountedToken: () => readIfExists(mountedFile)?.trim() || s.kc.getCurrentUser()?.token,
    write: (token) => void writeCniKubeconfig(s.target, { ...s.cluster, token }),
    fileToken: () => {
      const text = readIfExists(file);
      return text === undefined ? undefined : tokenOfKubeconfig(text);
    },
    log: s.log,
    policy: s.policy,
  };
  if (s.now) deps.now = s.now;
  if (s.sleep) deps.sleep = s.sleep;
  return new CniTokenRefresher(deps);
}

/**
 * tabby-node's entry: when CALICO_MANAGE_CNI is true, start keeping <TABBY_HOST_ROOT><CNI_NET_DIR>/tabby-kubeconfig
 * fresh; undefined when off. Configuration errors throw (NodeConfigError); a missing Kubernetes API is logged
 * and the refresher is not started (install-cni's kubeconfig stays as it is).
 */
export async function startCniTokenRefresher(env: NodeJS.ProcessEnv, log: Logger): Promise<CniTokenRefresher | undefined> {
  const cfg = parseCniTokenConfig(env);
  if (!cfg.enabled) return undefined;
  let kc: KubeConfig;
  let cluster: Omit<ClusterAccess, 'token'>;
  try {
    kc = await agentKubeConfig(env.KUBECONFIG || undefined);
    cluster = clusterFromEnv(env) ?? clusterOfKubeConfig(kc);
  } catch (err) {
    log.error({ err: errorMessage(err) }, 'CALICO_MANAGE_CNI is set but there is no Kubernetes API access: the CNI kubeconfig token is not refreshed');
    return undefined;
  }
  const target = { hostRoot: hostRootFromEnv(env), cniNetDir: cniNetDirFromEnv(env) };
  const r = await createCniTokenRefresher({ kc, cluster, target, policy: cfg.policy, log });
  log.info(
    { kubeconfig: join(target.cniNetDir, KUBECONFIG_NAME), expirationSec: cfg.policy.expirationSec, checkIntervalSec: cfg.policy.checkIntervalMs / 1000 },
    `keeping the CNI kubeconfig's ${CNI_SERVICE_ACCOUNT} token fresh (TokenRequest)`,
  );
  r.start();
  return r;
}
