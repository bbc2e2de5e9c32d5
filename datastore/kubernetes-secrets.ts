/**
 * Read-only access to core/v1 Secrets (BGP passwords: BGPPeer.password.secretKeyRef and
 * BGPConfiguration.nodeMeshPassword.secretKeyRef, read from the agent's namespace as calico-node
 * does). One call: GET /api/v1/namespaces/<ns>/secrets/<name> (RBAC: `get secrets`).
 *
 * - the Secret's `data` comes back base64-decoded (UTF-8); a Secret that does not exist (404) is
 *   `undefined`, not an error;
 * - 401/403 → DatastoreError Unauthorized/Forbidden (with the RBAC hint), 5xx/429/no answer →
 *   UnavailableError. Values are never put into errors or logs.
 */
import type * as K8sLib from '@kubernetes/client-node';
import type { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { DatastoreError, UnavailableError } from './types.js';
import type { KubernetesApiCall } from './kubernetes-api.js';

/** The API call the secret reader makes, for RBAC checks (kept apart from the CRD calls). */
export const KUBERNETES_SECRET_CALLS: readonly KubernetesApiCall[] = [{ verb: 'get', group: '', resource: 'secrets' }];

export interface SecretReader {
  /** The decoded `data` of Secret `namespace/name`; undefined when it does not exist. */
  read(namespace: string, name: string): Promise<Record<string, string> | undefined>;
}

interface ApiErrorLike {
  code?: number;
  body?: unknown;
}

export class KubernetesSecretReader implements SecretReader {
  private readonly api: CoreV1Api;

  constructor(
    kc: KubeConfig,
    lib: typeof K8sLib,
    private readonly server: string,
    private readonly timeoutMs = 10000,
  ) {
    this.api = kc.makeApiClient(lib.CoreV1Api);
  }

  async read(namespace: string, name: string): Promise<Record<string, string> | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new UnavailableError(this.server, new Error(`get secret: no answer within ${this.timeoutMs} ms`))), this.timeoutMs);
    });
    let secret: { data?: Record<string, string> };
    try {
      secret = await Promise.race([this.api.readNamespacedSecret({ name, namespace }), bound]);
    } catch (err) {
      if (err instanceof DatastoreError) throw err;
      const code = (err as ApiErrorLike | null)?.code;
      if (code === 404) return undefined;
      const what = `get secret ${namespace}/${name}`;
      if (code === 401 || code === 403) {
        throw new DatastoreError(code === 401 ? 'Unauthorized' : 'Forbidden', `kubernetes ${what}: HTTP ${code}`, {
          hint: `allow get on secrets in namespace ${namespace} for tabby-node's service account (a Role + RoleBinding, as calico-node's BGP password setup)`,
        });
      }
      if (typeof code !== 'number' || code >= 500 || code === 429) throw new UnavailableError(this.server, err);
      throw new DatastoreError('KubernetesError', `kubernetes ${what}: HTTP ${code}`);
    } finally {
      clearTimeout(timer);
    }
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(secret.data ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
    return out;
  }
}
