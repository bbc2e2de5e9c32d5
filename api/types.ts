/**
 * Typed resources with Calico's kind and field names. User-facing kinds follow projectcalico.org/v3;
 * the IPAM storage kinds (IPAMBlock, BlockAffinity, IPAMHandle) follow crd.projectcalico.org/v1 exactly,
 * so objects Calico wrote read back unchanged. Field-level rules live in `schemas.ts` and `validate.ts`.
 */
import type { Resource } from './meta.js';

// ---------------------------------------------------------------------------------------------
// Shared small types

export type EncapMode = 'Never' | 'Always' | 'CrossSubnet';
export type IPPoolAllowedUse = 'Workload' | 'Tunnel' | 'LoadBalancer';
export type AssignmentMode = 'Automatic' | 'Manual';
export type Enablement = 'Enabled' | 'Disabled';
export type LogSeverity = 'Trace' | 'Debug' | 'Info' | 'Warning' | 'Error' | 'Fatal';
/** A Kubernetes duration string as Calico's metav1.Duration, e.g. `90s`, `1m30s`. */
export type Duration = string;

export interface SecretKeyRef {
  name: string;
  key: string;
  optional?: boolean;
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  lastTransitionTime?: string;
  reason?: string;
  message?: string;
  observedGeneration?: number;
}

// ---------------------------------------------------------------------------------------------
// IPPool (v3)

export interface IPPoolSpec {
  /** Masked network, e.g. `10.244.0.0/16`. Immutable. */
  cidr: string;
  /** Prefix length of the blocks carved from this pool (default 26 for IPv4, 122 for IPv6). Immutable. */
  blockSize?: number;
  ipipMode?: EncapMode;
  vxlanMode?: EncapMode;
  natOutgoing?: boolean;
  disabled?: boolean;
  disableBGPExport?: boolean;
  /** Calico selector choosing the nodes that may take blocks from this pool (default `all()`). */
  nodeSelector?: string;
  namespaceSelector?: string;
  allowedUses?: IPPoolAllowedUse[];
  assignmentMode?: AssignmentMode;
}

export interface IPPoolStatus {
  conditions?: Condition[];
}

export type IPPool = Resource<'IPPool', IPPoolSpec, IPPoolStatus>;

// ---------------------------------------------------------------------------------------------
// IPAM storage kinds (crd.projectcalico.org/v1 field names, verbatim)

export interface AllocationAttribute {
  handle_id?: string;
  /** Free-form attributes: pod, namespace, node, type (`ipipTunnelAddress`, …), timestamp. */
  secondary?: Record<string, string>;
  alternateOwnerAttrs?: Record<string, string>;
  releasedAt?: string;
}

export interface IPAMBlockSpec {
  cidr: string;
  /** `host:<node>` or `virtual:<name>`; absent/null = no affinity. */
  affinity?: string | null;
  affinityClaimTime?: string;
  /** One entry per address of the block: null = free, n = index into `attributes`. */
  allocations: (number | null)[];
  /** FIFO of free ordinals. */
  unallocated: number[];
  attributes: AllocationAttribute[];
  /**
   * Bumped on every write. Calico initialises it to UnixNano, which is above 2^53: values read through
   * plain JSON.parse lose their last digits. Compare for equality only against values read the same way.
   */
  sequenceNumber?: number;
  /** ordinal (decimal string) → sequenceNumber at allocation time. */
  sequenceNumberForAllocation?: Record<string, number>;
  strictAffinity: boolean;
  deleted?: boolean;
}

export type IPAMBlock = Resource<'IPAMBlock', IPAMBlockSpec, never>;

export type BlockAffinityState = 'pending' | 'confirmed' | 'pendingDeletion' | '';

export interface BlockAffinitySpec {
  cidr: string;
  node: string;
  /** Empty string is legacy data and means confirmed. */
  state: BlockAffinityState;
  /** `host` (also when empty) or `virtual`. */
  type?: string;
  /** A string in v1: `"true"` or `"false"`. */
  deleted: string;
}

export type BlockAffinity = Resource<'BlockAffinity', BlockAffinitySpec, never>;

export interface IPAMHandleSpec {
  handleID: string;
  /** block CIDR → number of addresses this handle holds in it. */
  block: Record<string, number>;
  deleted?: boolean;
}

export type IPAMHandle = Resource<'IPAMHandle', IPAMHandleSpec, never>;

// ---------------------------------------------------------------------------------------------
// IPAMConfiguration (v3; stored as v1 IPAMConfig, singleton `default`)

export interface IPAMConfigurationSpec {
  strictAffinity: boolean;
  autoAllocateBlocks: boolean;
  /** 0 means the code default (20, see DEFAULT_MAX_BLOCKS_PER_HOST). */
  maxBlocksPerHost?: number;
  ipCooldownSeconds?: number;
  kubeVirtVMAddressPersistence?: Enablement;
}

export type IPAMConfiguration = Resource<'IPAMConfiguration', IPAMConfigurationSpec, never>;

// ---------------------------------------------------------------------------------------------
// BGP

export interface ServiceCIDR {
  cidr: string;
}

export interface Community {
  name: string;
  /** `aa:nn` (standard) or `aa:nn:mm` (large). */
  value: string;
}

export interface PrefixAdvertisement {
  cidr: string;
  /** Community names (from `communities`) or literal values. */
  communities?: string[];
}

export interface BGPConfigurationSpec {
  logSeverityScreen?: LogSeverity;
  nodeToNodeMeshEnabled?: boolean;
  asNumber?: number;
  serviceClusterIPs?: ServiceCIDR[];
  serviceExternalIPs?: ServiceCIDR[];
  serviceLoadBalancerIPs?: ServiceCIDR[];
  serviceLoadBalancerAggregation?: Enablement;
  communities?: Community[];
  prefixAdvertisements?: PrefixAdvertisement[];
  listenPort?: number;
  nodeMeshPassword?: { secretKeyRef?: SecretKeyRef };
  nodeMeshMaxRestartTime?: Duration;
  bindMode?: 'None' | 'NodeIP';
  ignoredInterfaces?: string[];
  localWorkloadPeeringIPV4?: string;
  localWorkloadPeeringIPV6?: string;
  programClusterRoutes?: 'Enabled' | 'Disabled' | 'EnabledIPIPOnly' | 'EnabledNoEncapOnly';
  ipv4NormalRoutePriority?: number;
  ipv6NormalRoutePriority?: number;
}

export type BGPConfiguration = Resource<'BGPConfiguration', BGPConfigurationSpec, never>;

export interface BGPPeerSpec {
  /** Node-specific peering: only this node peers. */
  node?: string;
  nodeSelector?: string;
  /** `IP` or `IP:port` (`[v6]:port`). */
  peerIP?: string;
  asNumber?: number;
  localASNumber?: number;
  peerSelector?: string;
  keepOriginalNextHop?: boolean;
  nextHopMode?: 'Auto' | 'Self' | 'Keep';
  password?: { secretKeyRef?: SecretKeyRef };
  sourceAddress?: 'UseNodeIP' | 'None';
  maxRestartTime?: Duration;
  keepaliveTime?: Duration;
  numAllowedLocalASNumbers?: number;
  ttlSecurity?: number;
  reachableBy?: string;
  /** BGPFilter names, applied in order. */
  filters?: string[];
  localWorkloadSelector?: string;
  reversePeering?: 'Auto' | 'Manual';
}

export type BGPPeer = Resource<'BGPPeer', BGPPeerSpec, never>;

export interface BGPFilterRule {
  action: 'Accept' | 'Reject';
  cidr?: string;
  matchOperator?: 'Equal' | 'NotEqual' | 'In' | 'NotIn';
  prefixLength?: { min?: number; max?: number };
  source?: 'RemotePeers';
  interface?: string;
  peerType?: 'eBGP' | 'iBGP';
  /** Exactly one value: a community "a:b" or a large community "a:b:c". */
  communities?: { values: string[] };
  asPathPrefix?: number[];
  /** Match routes with this priority (kernel metric units, 1..2147483646). */
  priority?: number;
  /** Only with action Accept; 1-10 entries, each setting exactly one field. */
  operations?: BGPFilterOperation[];
}

export interface BGPFilterOperation {
  addCommunity?: { value: string };
  prependASPath?: { prefix: number[] };
  setPriority?: { value: number };
}

export interface BGPFilterSpec {
  exportV4?: BGPFilterRule[];
  importV4?: BGPFilterRule[];
  exportV6?: BGPFilterRule[];
  importV6?: BGPFilterRule[];
}

export type BGPFilter = Resource<'BGPFilter', BGPFilterSpec, never>;

// ---------------------------------------------------------------------------------------------
// FelixConfiguration (the networking subset tabby's dataplane agent honours)

export type EndpointAction = 'Drop' | 'Accept' | 'Return';

export interface FelixConfigurationSpec {
  ipipEnabled?: boolean;
  ipipMTU?: number;
  vxlanEnabled?: boolean;
  vxlanMTU?: number;
  vxlanMTUV6?: number;
  vxlanPort?: number;
  vxlanVNI?: number;
  routeRefreshInterval?: Duration;
  iptablesRefreshInterval?: Duration;
  ipsetsRefreshInterval?: Duration;
  interfaceRefreshInterval?: Duration;
  natOutgoingAddress?: string;
  /** `32768:65535` or a single port. */
  natPortRange?: number | string;
  natOutgoingExclusions?: 'IPPoolsOnly' | 'IPPoolsAndHostIPs';
  interfacePrefix?: string;
  interfaceExclude?: string;
  mtuIfacePattern?: string;
  healthEnabled?: boolean;
  healthHost?: string;
  healthPort?: number;
  prometheusMetricsEnabled?: boolean;
  prometheusMetricsHost?: string;
  prometheusMetricsPort?: number;
  logSeverityScreen?: LogSeverity;
  defaultEndpointToHostAction?: EndpointAction;
  routeSource?: 'CalicoIPAM' | 'WorkloadIPs';
  routeSyncDisabled?: boolean;
  removeExternalRoutes?: boolean;
  deviceRouteProtocol?: number;
  deviceRouteSourceAddress?: string;
  ipForwarding?: Enablement;
  ipv6Support?: boolean;
  programClusterRoutes?: 'Enabled' | 'Disabled' | 'EnabledIPIPOnly';
  liveMigrationRouteConvergenceTime?: Duration;
}

export type FelixConfiguration = Resource<'FelixConfiguration', FelixConfigurationSpec, never>;

// ---------------------------------------------------------------------------------------------
// ClusterInformation (singleton `default`)

export interface ClusterInformationSpec {
  clusterGUID?: string;
  clusterType?: string;
  calicoVersion?: string;
  datastoreReady?: boolean;
  variant?: string;
}

export type ClusterInformation = Resource<'ClusterInformation', ClusterInformationSpec, never>;

// ---------------------------------------------------------------------------------------------
// Node (tabby's own node resource; field names as Calico's internal Node)

export interface NodeBGPSpec {
  /** The node's address in CIDR form (`10.0.0.5/24`): the prefix says which nodes share its subnet. */
  ipv4Address?: string;
  ipv6Address?: string;
  /** Absent = inherit BGPConfiguration `default` asNumber. */
  asNumber?: number;
  ipv4IPIPTunnelAddr?: string;
  routeReflectorClusterID?: string;
}

export interface NodeAddress {
  address: string;
  type: 'InternalIP' | 'ExternalIP' | 'CalicoNodeIP';
}

export interface NodeSpec {
  bgp?: NodeBGPSpec;
  ipv4VXLANTunnelAddr?: string;
  ipv6VXLANTunnelAddr?: string;
  vxlanTunnelMACAddr?: string;
  vxlanTunnelMACAddrV6?: string;
  orchRefs?: { orchestrator: string; nodeName?: string }[];
  addresses?: NodeAddress[];
}

export interface NodeStatus {
  podCIDRs?: string[];
  /** Timestamp tabby-node last reported itself alive. */
  lastHeartbeat?: string;
  conditions?: Condition[];
}

export type Node = Resource<'Node', NodeSpec, NodeStatus>;

// ---------------------------------------------------------------------------------------------
// CalicoNodeStatus (BGP peer / route status objects)

export type NodeStatusClass = 'Agent' | 'BGP' | 'Routes';
export type BGPSessionState = 'Idle' | 'Connect' | 'Active' | 'OpenSent' | 'OpenConfirm' | 'Established' | 'Close';
export type BGPPeerType = 'NodeMesh' | 'NodePeer' | 'GlobalPeer';

export interface CalicoNodeStatusSpec {
  node: string;
  classes: NodeStatusClass[];
  updatePeriodSeconds?: number;
}

export interface BGPDaemonStatus {
  state?: 'Ready' | 'NotReady';
  version?: string;
  routerID?: string;
  lastBootTime?: string;
  lastReconfigurationTime?: string;
}

export interface BGPPeerStatus {
  peerIP: string;
  type: BGPPeerType;
  state: BGPSessionState;
  /** When the session entered its current state. */
  since?: string;
}

export interface RouteStatus {
  type: 'FIB' | 'RIB';
  destination: string;
  gateway?: string;
  interface?: string;
  learnedFrom?: { sourceType: 'Kernel' | 'Static' | 'Direct' | 'NodeMesh' | 'BGPPeer'; peerIP?: string };
}

export interface CalicoNodeStatusStatus {
  lastUpdated?: string;
  agent?: { birdV4?: BGPDaemonStatus; birdV6?: BGPDaemonStatus };
  bgp?: {
    numberEstablishedV4?: number;
    numberNotEstablishedV4?: number;
    numberEstablishedV6?: number;
    numberNotEstablishedV6?: number;
    peersV4?: BGPPeerStatus[];
    peersV6?: BGPPeerStatus[];
  };
  routes?: { routesV4?: RouteStatus[]; routesV6?: RouteStatus[] };
}

export type CalicoNodeStatus = Resource<'CalicoNodeStatus', CalicoNodeStatusSpec, CalicoNodeStatusStatus>;

// ---------------------------------------------------------------------------------------------
// WorkloadEndpoint (v3, namespaced)

export interface WorkloadEndpointPort {
  name: string;
  protocol: string;
  port: number;
  hostPort?: number;
  hostIP?: string;
}

export interface IPNAT {
  internalIP: string;
  externalIP: string;
}

export interface WorkloadEndpointSpec {
  orchestrator?: string;
  workload?: string;
  node?: string;
  containerID?: string;
  pod?: string;
  endpoint?: string;
  serviceAccountName?: string;
  interfaceName?: string;
  mac?: string;
  ipNetworks?: string[];
  ipNATs?: IPNAT[];
  ipv4Gateway?: string;
  ipv6Gateway?: string;
  profiles?: string[];
  ports?: WorkloadEndpointPort[];
}

export type WorkloadEndpoint = Resource<'WorkloadEndpoint', WorkloadEndpointSpec, never>;

// ---------------------------------------------------------------------------------------------

/** Any resource tabby knows, discriminated by `kind`. */
export type AnyResource =
  | IPPool
  | IPAMBlock
  | BlockAffinity
  | IPAMHandle
  | IPAMConfiguration
  | BGPConfiguration
  | BGPPeer
  | BGPFilter
  | FelixConfiguration
  | ClusterInformation
  | Node
  | CalicoNodeStatus
  | WorkloadEndpoint;

export type KindName = AnyResource['kind'];
