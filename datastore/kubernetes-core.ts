/**
 * Read-only access to the few core/v1 objects tabby-node needs besides its CRDs, as calico-node:
 * - Secrets (BGP passwords: BGPPeer.password.secretKeyRef and BGPConfiguration.nodeMeshPassword
 *   .secretKeyRef, in the agent's namespace): GET /api/v1/namespaces/<ns>/secrets/<name>;
 * - Services and Endpoints (per-service /32 advertisement for externalTrafficPolicy Local, Calico's
 *   confd route generator): GET /api/v1/services, GET /api/v1/endpoints.
 *
 * A Secret that does not exist (404) is `undefined`, not an error; its `data` comes back
 * base64-decoded (UTF-8). 401/403 → DatastoreError Unauthorized/Forbidden (with the RBAC hint),
 * 5xx/429/no answer → UnavailableError. Secret values are never put into errors or logs.
 */
import type * as K8sLib from '@kubernetes/client-node';
import type { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { DatastoreError, UnavailableError } from './types.js';
import { withDeadline } from './common.js';
import type { KubernetesApiCall } from './kubernetes-api.js';

/** The core API calls these readers make, for RBAC checks (kept apart from the CRD calls). */
export const KUBERNETES_CORE_CALLS: readonly KubernetesApiCall[] = [
  { verb: 'get', group: '', resource: 'secrets' },
  { verb: 'list', group: '', resource: 'services' },
  { verb: 'list', group: '', resource: 'endpoints' },
];

export interface SecretReader {
  /** The decoded `data` of Secret `namespace/name`; undefined when it does not exist. */
  read(namespace: string, name: string): Promise<Record<string, string> | undefined>;
}

/** The Service fields service advertisement looks at. */
export interface ServiceInfo {
  namespace: string;
  name: string;
  type?: string;
  clusterIP?: string;
  externalIPs?: string[];
  externalTrafficPolicy?: string;
  loadBalancerIP?: string;
  loadBalancerIngressIPs?: string[];
}

/** Ready endpoint addresses of a Service (v1 Endpoints, as Calico's route generator). */
export interface EndpointsInfo {
  namespace: string;
  name: string;
  addresses: Array<{ ip: string; nodeName?: string }>;
}

export interface ServiceReader {
  list(): Promise<{ services: ServiceInfo[]; endpoints: EndpointsInfo[] }>;
}

interface ApiErrorLike {
  code?: number;
}

export class KubernetesCoreReader implements SecretReader, ServiceReader {
  private readonly api: CoreV1Api;

  constructor(
    kc: KubeConfig,
    lib: typeof K8sLib,
    private readonly server: string,
    private readonly timeoutMs = 10000,
  ) {
    this.api = kc.makeApiClient(lib.CoreV1Api);
  }

  /** One bounded call; 404 → undefined; other failures typed. */
  private async call<T>(what: string, rbac: string, fn: () => Promise<T>): Promise<T | undefined> {
    try {
      return await withDeadline(this.server, what, this.timeoutMs, fn);
    } catch (err) {
      if (err instanceof DatastoreError) throw err;
      const code = (err as ApiErrorLike | null)?.code;
      if (code === 404) return undefined;
      if (code === 401 || code === 403) {
        throw new DatastoreError(code === 401 ? 'Unauthorized' : 'Forbidden', `kubernetes ${what}: HTTP ${code}`, { hint: `allow ${rbac} for tabby-node's service account` });
      }
      if (typeof code !== 'number' || code >= 500 || code === 429) throw new UnavailableError(this.server, err);
      throw new DatastoreError('KubernetesError', `kubernetes ${what}: HTTP ${code}`);
    }
  }

  async read(namespace: string, name: string): Promise<Record<string, string> | undefined> {
    const secret = await this.call(`get secret ${namespace}/${name}`, `get on secrets in namespace ${namespace} (a Role + RoleBinding, as calico-node's BGP password setup)`, () =>
      this.api.readNamespacedSecret({ name, namespace }),
    );
    if (!secret) return undefined;
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(secret.data ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
    return out;
  }

  async list(): Promise<{ services: ServiceInfo[]; endpoints: EndpointsInfo[] }> {
    const rbac = 'list on services and endpoints (cluster-wide, as calico-node)';
    const [svcs, eps] = await Promise.all([
      this.call('list services', rbac, () => this.api.listServiceForAllNamespaces()),
      this.call('list endpoints', rbac, () => this.api.listEndpointsForAllNamespaces()),
    ]);
    const services: ServiceInfo[] = (svcs?.items ?? []).map((s) => {
      const info: ServiceInfo = { namespace: s.metadata?.namespace ?? '', name: s.metadata?.name ?? '' };
      if (s.spec?.type) info.type = s.spec.type;
      if (s.spec?.clusterIP) info.clusterIP = s.spec.clusterIP;
      if (s.spec?.externalIPs?.length) info.externalIPs = [...s.spec.externalIPs];
      if (s.spec?.externalTrafficPolicy) info.externalTrafficPolicy = s.spec.externalTrafficPolicy;
      if (s.spec?.loadBalancerIP) info.loadBalancerIP = s.spec.loadBalancerIP;
      const ingress = (s.status?.loadBalancer?.ingress ?? []).map((i) => i.ip).filter((ip): ip is string => !!ip);
      if (ingress.length) info.loadBalancerIngressIPs = ingress;
      return info;
    });
    const endpoints: EndpointsInfo[] = (eps?.items ?? []).map((e) => ({
      namespace: e.metadata?.namespace ?? '',
      name: e.metadata?.name ?? '',
      addresses: (e.subsets ?? []).flatMap((ss) => (ss.addresses ?? []).map((a) => (a.nodeName ? { ip: a.ip, nodeName: a.nodeName } : { ip: a.ip }))),
    }));
    return { services, endpoints };
  }
}
