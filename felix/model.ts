/**
 * felix's inputs and outputs as plain data. Inputs reuse the Calico resource field names from api/
 * (IPPoolSpec, NodeSpec); outputs are what the dataplane should look like, keyed by interface *names*
 * (the reconciler resolves names to ifindexes at apply time).
 */
import type { IPPoolSpec, NodeSpec } from '../api/types.js';

/** Device and numbering knobs. Tests override names so several agents can share a machine. */
export interface DataplaneNames {
  /** Workload interface prefix (FelixConfiguration interfacePrefix, default `cali`). */
  interfacePrefix: string;
  /** IPIP device (default `tunl0`). */
  ipipDevice: string;
  /** VXLAN device (default `vxlan.calico`). */
  vxlanDevice: string;
  /** IPv6 VXLAN device (default `vxlan-v6.calico`). */
  vxlanDeviceV6?: string;
  /** Route protocol number marking felix's routes (default 80). */
  routeProtocol: number;
}

export const DEFAULT_NAMES: DataplaneNames = {
  interfacePrefix: 'cali',
  ipipDevice: 'tunl0',
  vxlanDevice: 'vxlan.calico',
  vxlanDeviceV6: 'vxlan-v6.calico',
  routeProtocol: 80,
};

/** The pool fields felix needs (IPPoolSpec subset). */
export type PoolInput = Pick<IPPoolSpec, 'cidr' | 'ipipMode' | 'vxlanMode' | 'natOutgoing' | 'disabled'>;

/** A node as felix sees it: its name plus the Node spec fields that shape routes. */
export interface NodeInput {
  name: string;
  /** `10.0.0.5/24` (CIDR form: the prefix says which nodes share this node's subnet). */
  ipv4Address?: string;
  ipv6Address?: string;
  ipv4VXLANTunnelAddr?: NodeSpec['ipv4VXLANTunnelAddr'];
  /** Absent: derived from the node name like Calico (see vtepMac). */
  vxlanTunnelMACAddr?: NodeSpec['vxlanTunnelMACAddr'];
  ipv4IPIPTunnelAddr?: string;
  /** IPv6 VXLAN: the node's VTEP address in the IPv6 pool and its MAC (absent: derived from `<name>-v6`). */
  ipv6VXLANTunnelAddr?: NodeSpec['ipv6VXLANTunnelAddr'];
  vxlanTunnelMACAddrV6?: NodeSpec['vxlanTunnelMACAddrV6'];
}

/** A workload endpoint on this node: its host-side interface and its addresses (`10.244.1.5/32`). */
export interface WorkloadInput {
  iface: string;
  ipNetworks: string[];
}

/** A block (or a borrowed /32) hosted by another node. */
export interface RemoteBlockInput {
  cidr: string;
  /** Name of the hosting node (for VXLAN/CrossSubnet decisions). */
  node?: string;
  /** Next hop learned over BGP; default: the node's address. */
  nextHop?: string;
}

export interface DesiredInputs {
  /** This node. */
  self: NodeInput;
  /** Host interface for no-encap routes (`via <ip> dev <parent>`); absent = let the kernel pick. */
  parentIface?: string;
  /** Host interface for IPv6 no-encap routes when it differs from `parentIface` (IPv6 autodetected elsewhere). */
  parentIface6?: string;
  workloads: WorkloadInput[];
  /** This node's confirmed affine blocks. */
  localBlocks: string[];
  remoteBlocks: RemoteBlockInput[];
  pools: PoolInput[];
  /** Other nodes (this node may be included; it is ignored). */
  nodes: NodeInput[];
}

/** One route felix wants in the main table. */
export interface DesiredRoute {
  /** Canonical CIDR. */
  dst: string;
  kind: 'unicast' | 'blackhole';
  dev?: string;
  gw?: string;
  onlink?: boolean;
  /** `link` for device routes to workloads; default universe. */
  scope?: 'link';
  /** Why: 'workload' | 'blackhole' | 'noencap' | 'ipip' | 'vxlan' (for logs and status). */
  reason: 'workload' | 'blackhole' | 'noencap' | 'ipip' | 'vxlan';
}

/** A remote VTEP: permanent ARP (ip → mac on the VXLAN device) and FDB (mac → hostIp). */
export interface VxlanPeer {
  node: string;
  vtepIp: string;
  mac: string;
  hostIp: string;
}

export interface DesiredState {
  routes: DesiredRoute[];
  vxlanPeers: VxlanPeer[];
  /** IPv6 VTEPs: permanent NDP (ip → mac on vxlan-v6.calico) and FDB (mac → host IPv6). */
  vxlanPeers6: VxlanPeer[];
  /** Some pool needs the device on this node (and this node has a tunnel address). */
  needIpip: boolean;
  needVxlan: boolean;
  /** An IPv6 pool uses VXLAN: vxlan-v6.calico is needed. */
  needVxlan6: boolean;
  /** Inputs that could not be turned into state (missing VTEP, unknown node…), for the log. */
  warnings: string[];
}
