/**
 * The Kubernetes API calls the kubernetes backend makes, as RBAC names them. Kept apart from
 * kubernetes.ts so manifests/tests can check RBAC rules without loading @kubernetes/client-node.
 */
import { KINDS } from '../api/kinds.js';
import { CRD_GROUP } from '../api/meta.js';

export interface KubernetesApiCall {
  verb: 'get' | 'list' | 'watch' | 'create' | 'update' | 'delete';
  group: string;
  resource: string;
  /** Set when the call is for one named object only (RBAC resourceNames). */
  resourceName?: string;
}

/** For each stored kind: get, list, watch, create, update (PUT), delete on crd.projectcalico.org/<plural>. */
export const KUBERNETES_API_CALLS: readonly KubernetesApiCall[] = KINDS.flatMap((k) =>
  (['get', 'list', 'watch', 'create', 'update', 'delete'] as const).map((verb) => ({ verb, group: CRD_GROUP, resource: k.plural })),
);

/**
 * Calls tabby-node makes besides the datastore's, for the RBAC checks of its role: the TokenRequest
 * for the CNI plugin's ServiceAccount (node/cni-token-k8s.ts, also install-cni), allowed for that
 * resourceName only.
 */
export const NODE_AGENT_API_CALLS: readonly KubernetesApiCall[] = [{ verb: 'create', group: '', resource: 'serviceaccounts/token', resourceName: 'tabby-cni-plugin' }];
