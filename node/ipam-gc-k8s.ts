/**
 * The Kubernetes edge of the IPAM GC: list every pod through the core API (one LIST per pass),
 * with the same kubeconfig as the datastore. Loads @kubernetes/client-node on first use.
 * Errors are typed (DatastoreError / UnavailableError) so the pass aborts and releases nothing.
 */
import { DatastoreConfigError, DatastoreError, UnavailableError } from '../datastore/types.js';
import { loadKubernetesClient } from '../datastore/kubernetes.js';
import type { PodLike } from '../ipam/gc.js';

export async function kubernetesPodLister(kubeconfig?: string, timeoutMs = 10_000): Promise<() => Promise<PodLike[]>> {
  const lib = await loadKubernetesClient();
  const kc = new lib.KubeConfig();
  try {
    if (kubeconfig) kc.loadFromFile(kubeconfig);
    else kc.loadFromDefault();
  } catch (err) {
    throw new DatastoreConfigError(`cannot load kubeconfig${kubeconfig ? ` ${kubeconfig}` : ''}: ${err instanceof Error ? err.message : String(err)}`, 'set KUBECONFIG to a readable kubeconfig');
  }
  const server = kc.getCurrentCluster()?.server ?? 'the Kubernetes API';
  const api = kc.makeApiClient(lib.CoreV1Api);
  return async () => {
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new UnavailableError(server, new Error(`list pods: no answer within ${timeoutMs} ms`))), timeoutMs);
    });
    try {
      const res = await Promise.race([api.listPodForAllNamespaces(), bound]);
      return res.items as PodLike[];
    } catch (err) {
      if (err instanceof DatastoreError) throw err;
      const e = err as { code?: unknown; name?: string; type?: string };
      if (typeof e.code === 'number') {
        if (e.code >= 500 || e.code === 429) throw new UnavailableError(server, err);
        throw new DatastoreError(e.code === 401 || e.code === 403 ? 'Forbidden' : 'KubernetesError', `list pods: HTTP ${e.code}`, {
          hint: 'tabby-node needs RBAC list on pods for the IPAM GC',
          cause: err,
        });
      }
      // Network trouble (fetch/system errors carry string codes) vs a client-side configuration error.
      if (e.name === 'FetchError' || e.type === 'system' || typeof e.code === 'string' || e.name === 'AbortError') throw new UnavailableError(server, err);
      throw new DatastoreError('KubernetesClientError', `list pods: ${err instanceof Error ? err.message : String(err)}`, {
        hint: 'check the kubeconfig (server URL, TLS settings, credentials)',
        cause: err,
      });
    } finally {
      clearTimeout(timer);
    }
  };
}
