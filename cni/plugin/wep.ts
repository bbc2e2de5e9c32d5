/** The WorkloadEndpoint tabby records per pod (projectcalico.org/v3 field names). Pure. */
import { API_VERSION_V3 } from '../../api/meta.js';
import type { WorkloadEndpoint } from '../../api/types.js';

export type { WorkloadEndpoint };

/**
 * Calico's name: `<node>-<orchestrator>-<workload>-<endpoint>` with '-' in each part doubled (same as
 * api/names.ts workloadEndpointName, which is not imported here: it loads ipaddr.js at CNI startup).
 */
export function wepName(node: string, orchestrator: string, workload: string, endpoint: string): string {
  return [node, orchestrator, workload, endpoint].map((x) => x.replaceAll('-', '--')).join('-');
}

export interface WepInput {
  node: string;
  args: Record<string, string>;
  containerId: string;
  ifname: string;
  hostIf: string;
  mac: string;
  ipNetworks: string[];
}

export function buildWep(w: WepInput): WorkloadEndpoint {
  const ns = w.args.K8S_POD_NAMESPACE;
  const pod = w.args.K8S_POD_NAME;
  const k8s = Boolean(ns && pod);
  const orchestrator = k8s ? 'k8s' : 'cni';
  const workload = k8s ? (pod as string) : w.containerId;
  return {
    apiVersion: API_VERSION_V3,
    kind: 'WorkloadEndpoint',
    metadata: {
      name: wepName(w.node, orchestrator, workload, w.ifname),
      namespace: k8s ? (ns as string) : 'default',
      labels: {
        'projectcalico.org/orchestrator': orchestrator,
        ...(k8s ? { 'projectcalico.org/namespace': ns as string } : {}),
      },
    },
    spec: {
      orchestrator,
      node: w.node,
      ...(k8s ? { pod: pod as string, workload: '', profiles: [`kns.${ns as string}`] } : { workload }),
      containerID: w.containerId,
      endpoint: w.ifname,
      interfaceName: w.hostIf,
      mac: w.mac,
      ipNetworks: w.ipNetworks,
    },
  };
}
