/**
 * Defaults as Calico fills them (libcalico-go clientv3 ippool.go, ipam.go, confd and felix config_params).
 * applyDefaults never mutates its argument. IPAM storage kinds (IPAMBlock, BlockAffinity, IPAMHandle)
 * get no defaults: they are stored exactly as written. BGPConfiguration and FelixConfiguration are
 * defaulted only for the global object `default`; per-node `node.<name>` objects carry only overrides.
 */
import type { Resource } from './meta.js';
import { parseCidr } from './net.js';
import type {
  BGPConfigurationSpec,
  CalicoNodeStatusSpec,
  FelixConfigurationSpec,
  IPAMConfigurationSpec,
  IPPoolAllowedUse,
  IPPoolSpec,
} from './types.js';

export const DEFAULT_BLOCK_SIZE_V4 = 26;
export const DEFAULT_BLOCK_SIZE_V6 = 122;
/** What maxBlocksPerHost 0 means. */
export const DEFAULT_MAX_BLOCKS_PER_HOST = 20;
export const DEFAULT_AS_NUMBER = 64512;
export const DEFAULT_BGP_PORT = 179;

export const IPPOOL_DEFAULTS: Readonly<Omit<IPPoolSpec, 'cidr' | 'blockSize'>> = Object.freeze({
  ipipMode: 'Never',
  vxlanMode: 'Never',
  natOutgoing: false,
  nodeSelector: 'all()',
  allowedUses: ['Workload', 'Tunnel'] as IPPoolAllowedUse[],
  assignmentMode: 'Automatic',
});

export const IPAMCONFIG_DEFAULTS: Readonly<IPAMConfigurationSpec> = Object.freeze({
  strictAffinity: false,
  autoAllocateBlocks: true,
  maxBlocksPerHost: 0,
});

export const BGPCONFIG_DEFAULTS: Readonly<BGPConfigurationSpec> = Object.freeze({
  logSeverityScreen: 'Info',
  nodeToNodeMeshEnabled: true,
  asNumber: DEFAULT_AS_NUMBER,
  listenPort: DEFAULT_BGP_PORT,
});

/** Felix's built-in defaults for the fields tabby honours (calico.md §4.6, §4.2). */
export const FELIX_DEFAULTS: Readonly<FelixConfigurationSpec> = Object.freeze({
  vxlanPort: 4789,
  vxlanVNI: 4096,
  routeRefreshInterval: '90s',
  iptablesRefreshInterval: '180s',
  ipsetsRefreshInterval: '90s',
  interfaceRefreshInterval: '90s',
  natOutgoingExclusions: 'IPPoolsOnly',
  interfacePrefix: 'cali',
  interfaceExclude: 'kube-ipvs0',
  mtuIfacePattern: '^((en|wl|ww|sl|ib)[Pcopsvx].*|(eth|wlan|wwan).*)',
  healthEnabled: false,
  healthHost: 'localhost',
  healthPort: 9099,
  prometheusMetricsEnabled: false,
  prometheusMetricsPort: 9091,
  logSeverityScreen: 'Info',
  defaultEndpointToHostAction: 'Drop',
  routeSource: 'CalicoIPAM',
  routeSyncDisabled: false,
  removeExternalRoutes: true,
  deviceRouteProtocol: 3,
  ipForwarding: 'Enabled',
  ipv6Support: true,
  liveMigrationRouteConvergenceTime: '30s',
});

export const CALICO_NODE_STATUS_DEFAULTS: Readonly<Partial<CalicoNodeStatusSpec>> = Object.freeze({ updatePeriodSeconds: 10 });

/** The effective per-host block limit of an IPAMConfiguration spec (0/absent → 20). */
export function effectiveMaxBlocksPerHost(spec: Pick<IPAMConfigurationSpec, 'maxBlocksPerHost'> | undefined): number {
  const n = spec?.maxBlocksPerHost ?? 0;
  return n > 0 ? n : DEFAULT_MAX_BLOCKS_PER_HOST;
}

type Spec = Record<string, unknown>;

/** Fill absent (undefined) fields from `defaults`; also empty strings for the listed keys. */
function fill(spec: Spec, defaults: object, emptyIsAbsent: readonly string[] = []): void {
  for (const [k, v] of Object.entries(defaults)) {
    const cur = spec[k];
    const absent = cur === undefined || (cur === '' && emptyIsAbsent.includes(k)) || (Array.isArray(cur) && cur.length === 0 && emptyIsAbsent.includes(k));
    if (absent) spec[k] = structuredClone(v);
  }
}

/** A copy of `resource` with Calico's defaults filled in. Unknown kinds come back copied, unchanged. */
export function applyDefaults<T extends Resource>(resource: T): T {
  const r = structuredClone(resource);
  if (r === null || typeof r !== 'object') return r;
  const spec = (r.spec ??= {} as T['spec']) as Spec;
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) return r;
  const name = r.metadata?.name;
  switch (r.kind as string) {
    case 'IPPool': {
      if (spec.blockSize === undefined && typeof spec.cidr === 'string') {
        const c = parseCidr(spec.cidr);
        if (c) spec.blockSize = c.family === 4 ? DEFAULT_BLOCK_SIZE_V4 : DEFAULT_BLOCK_SIZE_V6;
      }
      fill(spec, IPPOOL_DEFAULTS, ['ipipMode', 'vxlanMode', 'nodeSelector', 'allowedUses', 'assignmentMode']);
      break;
    }
    case 'IPAMConfiguration':
      fill(spec, IPAMCONFIG_DEFAULTS);
      break;
    case 'BGPConfiguration':
      if (name === 'default') fill(spec, BGPCONFIG_DEFAULTS, ['logSeverityScreen']);
      break;
    case 'FelixConfiguration':
      if (name === 'default') fill(spec, FELIX_DEFAULTS);
      break;
    case 'CalicoNodeStatus':
      fill(spec, CALICO_NODE_STATUS_DEFAULTS);
      break;
    case 'WorkloadEndpoint':
      if (r.metadata && !r.metadata.namespace) r.metadata.namespace = 'default';
      break;
    default:
      break;
  }
  return r;
}
