/**
 * The `get` table columns of each kind, as calicoctl prints them (calicoctl resourcemgr/*.go; calico.md
 * §6.1). Pure data + value functions; the CLI does the layout. Absent fields print as an empty cell,
 * booleans as true/false.
 */
import type { Resource } from './meta.js';
import type {
  BGPConfigurationSpec,
  BGPPeerSpec,
  IPAMConfigurationSpec,
  IPPoolSpec,
  NodeSpec,
  WorkloadEndpointSpec,
} from './types.js';
import { DEFAULT_AS_NUMBER } from './defaults.js';

export interface ColumnContext {
  /** The cluster-wide AS number (BGPConfiguration `default`); nodes without their own print `(N)`. */
  defaultASNumber?: number;
}

export interface Column {
  header: string;
  value(r: Resource, ctx: ColumnContext): string;
}

export interface ColumnSet {
  default: readonly Column[];
  wide: readonly Column[];
}

const cell = (v: unknown): string => (v === undefined || v === null ? '' : Array.isArray(v) ? v.join(',') : String(v));
const spec = <S>(r: Resource): Partial<S> => (r.spec ?? {}) as Partial<S>;
const col = (header: string, value: (r: Resource, ctx: ColumnContext) => unknown): Column => ({ header, value: (r, ctx) => cell(value(r, ctx)) });
const field = <S>(header: string, f: keyof S, dflt?: unknown): Column => col(header, (r) => spec<S>(r)[f] ?? dflt);

const NAME = col('NAME', (r) => r.metadata.name);

const pool = {
  cidr: field<IPPoolSpec>('CIDR', 'cidr'),
  selector: field<IPPoolSpec>('SELECTOR', 'nodeSelector'),
};

const peerNode = col('NODE', (r) => {
  const s = spec<BGPPeerSpec>(r);
  return s.node ?? s.nodeSelector ?? '(global)';
});
const peerCols = [NAME, field<BGPPeerSpec>('PEERIP', 'peerIP'), peerNode, field<BGPPeerSpec>('ASN', 'asNumber')];

const bgpConfigCols = [
  NAME,
  field<BGPConfigurationSpec>('LOGSEVERITY', 'logSeverityScreen'),
  field<BGPConfigurationSpec>('MESHENABLED', 'nodeToNodeMeshEnabled'),
  field<BGPConfigurationSpec>('ASNUMBER', 'asNumber'),
];

const ipamConfigCols = [NAME, field<IPAMConfigurationSpec>('STRICTAFFINITY', 'strictAffinity'), field<IPAMConfigurationSpec>('AUTOALLOCATEBLOCKS', 'autoAllocateBlocks')];

const wep = {
  workload: col('WORKLOAD', (r) => spec<WorkloadEndpointSpec>(r).workload || spec<WorkloadEndpointSpec>(r).pod),
  node: field<WorkloadEndpointSpec>('NODE', 'node'),
  networks: field<WorkloadEndpointSpec>('NETWORKS', 'ipNetworks'),
  iface: field<WorkloadEndpointSpec>('INTERFACE', 'interfaceName'),
};

const COLUMNS: Record<string, ColumnSet> = {
  IPPool: {
    default: [NAME, pool.cidr, pool.selector],
    wide: [
      NAME,
      pool.cidr,
      field<IPPoolSpec>('NAT', 'natOutgoing', false),
      field<IPPoolSpec>('IPIPMODE', 'ipipMode', 'Never'),
      field<IPPoolSpec>('VXLANMODE', 'vxlanMode', 'Never'),
      field<IPPoolSpec>('DISABLED', 'disabled', false),
      field<IPPoolSpec>('DISABLEBGPEXPORT', 'disableBGPExport', false),
      pool.selector,
    ],
  },
  BGPPeer: { default: peerCols, wide: peerCols },
  Node: {
    default: [NAME],
    wide: [
      NAME,
      col('ASN', (r, ctx) => spec<NodeSpec>(r).bgp?.asNumber ?? `(${ctx.defaultASNumber ?? DEFAULT_AS_NUMBER})`),
      col('IPV4', (r) => spec<NodeSpec>(r).bgp?.ipv4Address),
      col('IPV6', (r) => spec<NodeSpec>(r).bgp?.ipv6Address),
    ],
  },
  BGPConfiguration: { default: bgpConfigCols, wide: bgpConfigCols },
  IPAMConfiguration: { default: ipamConfigCols, wide: [...ipamConfigCols, field<IPAMConfigurationSpec>('MAXBLOCKSPERHOST', 'maxBlocksPerHost', 0)] },
  WorkloadEndpoint: {
    default: [wep.workload, wep.node, wep.networks, wep.iface],
    wide: [
      NAME,
      wep.workload,
      wep.node,
      wep.networks,
      wep.iface,
      field<WorkloadEndpointSpec>('PROFILES', 'profiles'),
      col('NATS', (r) => (spec<WorkloadEndpointSpec>(r).ipNATs ?? []).map((n) => `${n.internalIP}:${n.externalIP}`)),
    ],
  },
};

const NAME_ONLY: ColumnSet = { default: [NAME], wide: [NAME] };

/** calicoctl's `get` columns for a kind (`NAME` alone for kinds calicoctl has no table for). */
export function columnsFor(kind: string): ColumnSet {
  return COLUMNS[kind] ?? NAME_ONLY;
}

/** Header row + one row of cells per resource. */
export function tableRows(kind: string, resources: readonly Resource[], wide: boolean, ctx: ColumnContext = {}): string[][] {
  const cols = columnsFor(kind)[wide ? 'wide' : 'default'];
  return [cols.map((c) => c.header), ...resources.map((r) => cols.map((c) => c.value(r, ctx)))];
}
