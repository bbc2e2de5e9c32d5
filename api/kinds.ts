/**
 * The registry of resource kinds: the one place that knows plural names, storage kind names and
 * scope. Datastore backends derive keys (etcd) and CRD paths (Kubernetes) from it.
 */

export interface KindInfo {
  /** Kind as components and manifests name it (v3 name). */
  kind: string;
  /** Kind of the crd.projectcalico.org/v1 storage CRD (differs only for IPAMConfiguration → IPAMConfig). */
  v1Kind: string;
  /** Lower-case plural: etcd key segment and CRD plural. */
  plural: string;
  namespaced: boolean;
  /** apiVersion objects of this kind carry when handed to components. */
  apiVersion: string;
  /** Short names accepted by tabbyctl (`get ippool`, `get pools`). */
  aliases: readonly string[];
}

const V3 = 'projectcalico.org/v3';
const V1 = 'crd.projectcalico.org/v1';

function k(kind: string, plural: string, aliases: string[], opts: Partial<KindInfo> = {}): KindInfo {
  return { kind, v1Kind: kind, plural, namespaced: false, apiVersion: V3, aliases, ...opts };
}

export const KINDS: readonly KindInfo[] = [
  k('IPPool', 'ippools', ['ippool', 'ippools', 'ipp', 'ipps', 'pool', 'pools']),
  k('IPAMBlock', 'ipamblocks', ['ipamblock', 'ipamblocks'], { apiVersion: V1 }),
  k('BlockAffinity', 'blockaffinities', ['blockaffinity', 'blockaffinities', 'affinity', 'affinities'], { apiVersion: V1 }),
  k('IPAMHandle', 'ipamhandles', ['ipamhandle', 'ipamhandles'], { apiVersion: V1 }),
  k('IPAMConfiguration', 'ipamconfigs', ['ipamconfiguration', 'ipamconfigurations', 'ipamconfig', 'ipamconfigs'], { v1Kind: 'IPAMConfig' }),
  k('BGPConfiguration', 'bgpconfigurations', ['bgpconfiguration', 'bgpconfigurations', 'bgpconfig', 'bgpconfigs']),
  k('BGPPeer', 'bgppeers', ['bgppeer', 'bgppeers', 'bgpp', 'bgpps']),
  k('BGPFilter', 'bgpfilters', ['bgpfilter', 'bgpfilters']),
  k('FelixConfiguration', 'felixconfigurations', ['felixconfiguration', 'felixconfigurations', 'felixconfig', 'felixconfigs']),
  k('ClusterInformation', 'clusterinformations', ['clusterinformation', 'clusterinformations', 'clusterinfo']),
  k('Node', 'nodes', ['node', 'nodes', 'no']),
  k('CalicoNodeStatus', 'caliconodestatuses', ['caliconodestatus', 'caliconodestatuses']),
  k('WorkloadEndpoint', 'workloadendpoints', ['workloadendpoint', 'workloadendpoints', 'wep', 'weps'], { namespaced: true }),
];

const byName = new Map<string, KindInfo>();
for (const info of KINDS) {
  byName.set(info.kind.toLowerCase(), info);
  byName.set(info.v1Kind.toLowerCase(), info);
  for (const a of info.aliases) byName.set(a, info);
}

/** Look a kind up by its kind name, v1 name, plural or alias (case-insensitive); undefined if unknown. */
export function findKind(name: string): KindInfo | undefined {
  return byName.get(name.toLowerCase());
}

export function kindInfo(kind: string): KindInfo {
  const info = findKind(kind);
  if (!info) throw new Error(`unknown resource kind ${JSON.stringify(kind)}`);
  return info;
}
