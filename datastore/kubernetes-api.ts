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
}

/** For each stored kind: get, list, watch, create, update (PUT), delete on crd.projectcalico.org/<plural>. */
export const KUBERNETES_API_CALLS: readonly KubernetesApiCall[] = KINDS.flatMap((k) =>
  (['get', 'list', 'watch', 'create', 'update', 'delete'] as const).map((verb) => ({ verb, group: CRD_GROUP, resource: k.plural })),
);
