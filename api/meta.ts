/** Kubernetes-style object metadata and the generic resource envelope every tabby kind uses. */

export interface ObjectMeta {
  name: string;
  namespace?: string;
  /** Opaque compare-and-swap token set by the datastore (etcd mod revision / Kubernetes resourceVersion). */
  resourceVersion?: string;
  uid?: string;
  creationTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface Resource<K extends string = string, S = unknown, St = unknown> {
  apiVersion: string;
  kind: K;
  metadata: ObjectMeta;
  spec: S;
  status?: St;
}

/** The user-facing API group/version (calicoctl manifests). */
export const API_VERSION_V3 = 'projectcalico.org/v3';
/** The storage group/version of the CRDs (what Calico writes into Kubernetes). */
export const API_VERSION_CRD_V1 = 'crd.projectcalico.org/v1';
export const CRD_GROUP = 'crd.projectcalico.org';
