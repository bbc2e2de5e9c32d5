/**
 * Pure part of the local cluster harness: options → a plan (every namespace, link, address and port
 * the cluster uses), the BIRD "ToR" configuration, the IPPool/BGPPeer manifests, and the state file
 * format. No I/O here; cluster/up.ts and cluster/down.ts act on a plan.
 *
 * Layout (defaults, prefix "tdm-"):
 *   tdm-fabric   bridges br-a (172.31.254.0/24) [and br-b (172.31.255.0/24) for cross-subnet runs];
 *                etcd runs here, listening on br-a's address 172.31.254.2
 *   tdm-tor      BIRD, eth0 = .1 on subnet A [eth1 = .1 on subnet B, forwarding on: the router]
 *   tdm-node-N   tabby-node, eth0 = .(10+N) on subnet A (cross-subnet: even nodes on subnet B)
 *   tdm-pod-node-N-K  pods, plumbed by the real CNI plugin from inside tdm-node-N
 *   root ns      link tdm-host = .254 on subnet A (peer on br-a), so tabbyctl reaches etcd directly
 */
import { TabbyError } from '../lib/errors.js';

export type Encap = 'none' | 'vxlan' | 'ipip';
export type DatastoreKind = 'etcdv3' | 'kubernetes';

export interface ClusterOptions {
  prefix: string;
  nodes: number;
  podsPerNode: number;
  encap: Encap;
  /** Nodes spread over two subnets behind the ToR router (default: true for vxlan/ipip). */
  crossSubnet: boolean;
  datastore: DatastoreKind;
  kubeconfig?: string;
  stateDir: string;
  /** First three octets of subnet A and B (each a /24 that exists only inside our namespaces). */
  subnetA: string;
  subnetB: string;
  podCidr: string;
  blockSize: number;
  nodeAs: number;
  torAs: number;
  etcdClientPort: number;
  etcdPeerPort: number;
  /** Port of the Kubernetes API test server (--datastore kubernetes without --kubeconfig). */
  apiPort: number;
  healthPort: number;
  metricsPort: number;
  /**
   * Dual stack: IPv6 on the fabric (subnets `<subnet6A>::/64`, `<subnet6B>::/64`), IP6 on every node,
   * an IPv6 pool (`podCidr6`, created by tabby-node from CALICO_IPV6POOL_CIDR), pods with v4 + v6
   * addresses, and an IPv6 BGP session from every node to the ToR (global BGPPeer `tor-v6`).
   */
  ipv6: boolean;
  /** First four hextets of the IPv6 subnets A and B (ULA, inside our namespaces only). */
  subnet6A: string;
  subnet6B: string;
  podCidr6: string;
  blockSize6: number;
}

export class ClusterError extends TabbyError {
  constructor(message: string, hint?: string) {
    super('Cluster', message, hint === undefined ? undefined : { hint });
  }
}

export const DEMO_PREFIX = 'tdm-';

export function defaultStateDir(prefix: string): string {
  return prefix === DEMO_PREFIX ? '/run/tabby-demo' : `/run/tabby-cluster-${prefix.replace(/[^a-z0-9]/gi, '')}`;
}

export function defaultOptions(over: Partial<ClusterOptions> = {}): ClusterOptions {
  const prefix = over.prefix ?? DEMO_PREFIX;
  const encap = over.encap ?? 'none';
  const o: ClusterOptions = {
    prefix,
    nodes: 3,
    podsPerNode: 2,
    encap,
    crossSubnet: encap !== 'none',
    datastore: 'etcdv3',
    stateDir: defaultStateDir(prefix),
    subnetA: '172.31.254',
    subnetB: '172.31.255',
    podCidr: '10.244.0.0/16',
    blockSize: 26,
    nodeAs: 64512,
    torAs: 64512,
    etcdClientPort: 23890,
    etcdPeerPort: 23900,
    apiPort: 23891,
    healthPort: 23895,
    metricsPort: 23896,
    ipv6: false,
    subnet6A: 'fd00:7ab:0:a',
    subnet6B: 'fd00:7ab:0:b',
    podCidr6: 'fd00:10:244::/48',
    blockSize6: 122,
    ...stripUndefined(over),
  };
  validateOptions(o);
  return o;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export function validateOptions(o: ClusterOptions): void {
  if (!/^[a-z][a-z0-9]{0,4}-$/.test(o.prefix)) {
    throw new ClusterError(`prefix "${o.prefix}" must be 1-5 lower-case letters/digits followed by "-"`, 'e.g. --prefix tdm-');
  }
  if (!Number.isInteger(o.nodes) || o.nodes < 1 || o.nodes > 200) throw new ClusterError(`--nodes ${o.nodes}: must be 1..200`);
  if (!Number.isInteger(o.podsPerNode) || o.podsPerNode < 0 || o.podsPerNode > 50) {
    throw new ClusterError(`--pods-per-node ${o.podsPerNode}: must be 0..50`);
  }
  if (!['none', 'vxlan', 'ipip'].includes(o.encap)) throw new ClusterError(`--encap ${o.encap}: must be none, vxlan or ipip`);
  if (o.kubeconfig === '') throw new ClusterError('--kubeconfig: empty path', 'omit it to run the Kubernetes API test server with --datastore kubernetes');
  if (!['etcdv3', 'kubernetes'].includes(o.datastore)) throw new ClusterError(`--datastore ${o.datastore}: must be etcdv3 or kubernetes`);
  for (const s of [o.subnetA, o.subnetB]) {
    if (!/^\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(s)) throw new ClusterError(`subnet base "${s}" must be three octets, e.g. 172.31.254`);
  }
}

export interface NodePlan {
  index: number;
  name: string;
  netns: string;
  /** Link in the fabric namespace (attached to the subnet's bridge). */
  fabricLink: string;
  subnet: 'a' | 'b';
  ip: string;
  prefixLen: number;
  gateway: string;
  /** IPv6 address and gateway (the ToR) when options.ipv6. */
  ip6?: string;
  gateway6?: string;
  runDir: string;
  libDir: string;
  logFile: string;
  pods: PodPlan[];
}

export interface PodPlan {
  node: string;
  index: number;
  name: string;
  netns: string;
  containerId: string;
}

export interface Plan {
  options: ClusterOptions;
  fabricNs: string;
  torNs: string;
  /** Link in the root namespace and its peer in the fabric namespace. */
  hostLink: string;
  hostPeer: string;
  hostIp: string;
  etcdIp: string;
  etcdEndpoint: string;
  /**
   * --datastore kubernetes without --kubeconfig: the harness runs the Kubernetes API test server
   * (test/k8s-server) in the fabric namespace on etcd's address (apiEndpoint) and writes `kubeconfig`.
   */
  ownApiServer: boolean;
  apiEndpoint: string;
  apiLog: string;
  /** The kubeconfig every component uses (--kubeconfig, or the one the test server writes). */
  kubeconfig: string;
  torIpA: string;
  torIpB: string;
  /** The ToR's IPv6 addresses when options.ipv6. */
  torIp6A?: string;
  torIp6B?: string;
  nodes: NodePlan[];
  birdConf: string;
  birdCtl: string;
  birdLog: string;
  etcdDataDir: string;
  etcdLog: string;
  cniDir: string;
  stateFile: string;
  tabbyctlCfg: string;
}

export function makePlan(o: ClusterOptions): Plan {
  const p = o.prefix;
  const dir = o.stateDir;
  const nodes: NodePlan[] = [];
  for (let i = 1; i <= o.nodes; i++) {
    const subnet: 'a' | 'b' = o.crossSubnet && i % 2 === 0 ? 'b' : 'a';
    const base = subnet === 'a' ? o.subnetA : o.subnetB;
    const base6 = subnet === 'a' ? o.subnet6A : o.subnet6B;
    const name = `node-${i}`;
    const pods: PodPlan[] = [];
    for (let k = 1; k <= o.podsPerNode; k++) {
      pods.push({ node: name, index: k, name: `pod-${i}-${k}`, netns: `${p}pod-${name}-${k}`, containerId: `${p}pod-${name}-${k}` });
    }
    nodes.push({
      index: i,
      name,
      netns: `${p}${name}`,
      fabricLink: `n${i}`,
      subnet,
      ip: `${base}.${10 + i}`,
      prefixLen: 24,
      gateway: `${base}.1`,
      ...(o.ipv6 ? { ip6: `${base6}::${10 + i}`, gateway6: `${base6}::1` } : {}),
      runDir: `${dir}/${name}/run`,
      libDir: `${dir}/${name}/lib`,
      logFile: `${dir}/${name}/tabby-node.log`,
      pods,
    });
  }
  const etcdIp = `${o.subnetA}.2`;
  return {
    options: o,
    fabricNs: `${p}fabric`,
    torNs: `${p}tor`,
    hostLink: `${p}host`,
    hostPeer: 'host',
    hostIp: `${o.subnetA}.254`,
    etcdIp,
    etcdEndpoint: `http://${etcdIp}:${o.etcdClientPort}`,
    ownApiServer: o.datastore === 'kubernetes' && o.kubeconfig === undefined,
    apiEndpoint: `http://${etcdIp}:${o.apiPort}`,
    apiLog: `${dir}/kube/apiserver.log`,
    kubeconfig: o.kubeconfig ?? `${dir}/kube/kubeconfig`,
    torIpA: `${o.subnetA}.1`,
    torIpB: `${o.subnetB}.1`,
    ...(o.ipv6 ? { torIp6A: `${o.subnet6A}::1`, torIp6B: `${o.subnet6B}::1` } : {}),
    nodes,
    birdConf: `${dir}/bird/bird.conf`,
    birdCtl: `${dir}/bird/bird.ctl`,
    birdLog: `${dir}/bird/bird.log`,
    etcdDataDir: `${dir}/etcd/data`,
    etcdLog: `${dir}/etcd/etcd.log`,
    cniDir: `${dir}/cni`,
    stateFile: `${dir}/state.json`,
    tabbyctlCfg: `${dir}/tabbyctl.cfg`,
  };
}

/** Every network namespace of the plan, pods first (the order down removes them in). */
export function allNamespaces(plan: Plan): string[] {
  return [...plan.nodes.flatMap((n) => n.pods.map((p) => p.netns)), ...plan.nodes.map((n) => n.netns), plan.torNs, plan.fabricNs];
}

/** BIRD protocol name of a node peer (letters, digits, underscores). */
export function birdProtocolName(node: NodePlan): string {
  return `tabby_${node.name.replace(/[^A-Za-z0-9]/g, '_')}`;
}

/** BIRD protocol name of a node's IPv6 session. */
export function birdProtocolName6(node: NodePlan): string {
  return `${birdProtocolName(node)}_v6`;
}

/**
 * The ToR's BIRD 2 configuration: one BGP session per node (iBGP when torAs = nodeAs, else eBGP with
 * explicit filters), importing everything the nodes announce and exporting nothing back (the nodes
 * learn each other's blocks over their own mesh; the ToR is where a person looks at what the cluster
 * announces). `protocol direct` makes the nodes' next hops resolvable (iBGP marks routes unreachable
 * without it). The ToR's kernel table is left alone: it only routes the underlay between subnets.
 */
export function birdConfig(plan: Plan): string {
  const o = plan.options;
  const ibgp = o.torAs === o.nodeAs;
  const lines = [
    `# tabby demo ToR (generated by tabbyctl cluster up; prefix ${o.prefix})`,
    'log stderr all;',
    `router id ${plan.torIpA};`,
    'protocol device { scan time 2; }',
    `protocol direct { ipv4;${o.ipv6 ? ' ipv6;' : ''} interface "eth*"; }`,
    'template bgp tabby_node {',
    `  local as ${o.torAs};`,
    '  passive on;',
    '  hold time 90; connect delay time 2; connect retry time 5; error wait time 5, 30;',
    '  graceful restart on;',
    '  ipv4 { import all; export none; };',
    '}',
  ];
  // Every node connects to the BGPPeer's peerIP (subnet A's ToR address), also the nodes on subnet
  // B; BIRD only accepts a connection whose local address is the protocol's `source address`.
  for (const n of plan.nodes) {
    const hop = ibgp ? '' : ' multihop 2;';
    lines.push(`protocol bgp ${birdProtocolName(n)} from tabby_node { neighbor ${n.ip} as ${o.nodeAs}; source address ${plan.torIpA};${hop} }`);
    // IPv6: a separate session between the IPv6 addresses carrying ipv6 unicast (as Calico's bird6).
    if (n.ip6 !== undefined && plan.torIp6A !== undefined) {
      lines.push(
        `protocol bgp ${birdProtocolName6(n)} { local as ${o.torAs}; passive on; neighbor ${n.ip6} as ${o.nodeAs}; source address ${plan.torIp6A};${hop}` +
          ' hold time 90; connect delay time 2; connect retry time 5; error wait time 5, 30; graceful restart on; ipv6 { import all; export none; }; }',
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

/** Manifests applied with tabbyctl before the nodes start: the pool and the global ToR peer. */
export function clusterManifests(plan: Plan): string {
  const o = plan.options;
  const vxlan = o.encap === 'vxlan' ? (o.crossSubnet ? 'CrossSubnet' : 'Always') : 'Never';
  const ipip = o.encap === 'ipip' ? (o.crossSubnet ? 'CrossSubnet' : 'Always') : 'Never';
  return [
    'apiVersion: projectcalico.org/v3',
    'kind: IPPool',
    'metadata:',
    '  name: default-ipv4-ippool',
    'spec:',
    `  cidr: ${o.podCidr}`,
    `  blockSize: ${o.blockSize}`,
    `  ipipMode: ${ipip}`,
    `  vxlanMode: ${vxlan}`,
    '  natOutgoing: false',
    '  nodeSelector: all()',
    '---',
    'apiVersion: projectcalico.org/v3',
    'kind: BGPPeer',
    'metadata:',
    '  name: tor',
    'spec:',
    `  peerIP: ${plan.torIpA}`,
    `  asNumber: ${o.torAs}`,
    ...(plan.torIp6A === undefined ? [] : ['---', 'apiVersion: projectcalico.org/v3', 'kind: BGPPeer', 'metadata:', '  name: tor-v6', 'spec:', `  peerIP: ${plan.torIp6A}`, `  asNumber: ${o.torAs}`]),
    '',
  ].join('\n');
}

/** Node resources as tabby-node registers them (used only while tabby-node is not available). */
export function nodeManifests(plan: Plan): string {
  return plan.nodes
    .map((n) =>
      [
        'apiVersion: projectcalico.org/v3', 'kind: Node', 'metadata:', `  name: ${n.name}`, 'spec:', '  bgp:', `    ipv4Address: ${n.ip}/${n.prefixLen}`,
        ...(n.ip6 === undefined ? [] : [`    ipv6Address: ${n.ip6}/64`]),
        `    asNumber: ${plan.options.nodeAs}`,
      ].join('\n'),
    )
    .join('\n---\n')
    .concat('\n');
}

/** Environment of one tabby-node process (calico-node names). */
export function nodeEnv(plan: Plan, n: NodePlan): Record<string, string> {
  const o = plan.options;
  const env: Record<string, string> = {
    NODENAME: n.name,
    DATASTORE_TYPE: o.datastore,
    IP: `${n.ip}/${n.prefixLen}`,
    AS: String(o.nodeAs),
    CALICO_IPV4POOL_CIDR: o.podCidr,
    CALICO_IPV4POOL_BLOCK_SIZE: String(o.blockSize),
    CALICO_IPV4POOL_VXLAN: o.encap === 'vxlan' ? (o.crossSubnet ? 'CrossSubnet' : 'Always') : 'Never',
    CALICO_IPV4POOL_IPIP: o.encap === 'ipip' ? (o.crossSubnet ? 'CrossSubnet' : 'Always') : 'Never',
    TABBY_RUN_DIR: n.runDir,
    TABBY_LIB_DIR: n.libDir,
    FELIX_HEALTHPORT: String(o.healthPort),
    FELIX_PROMETHEUSMETRICSENABLED: 'true',
    FELIX_PROMETHEUSMETRICSPORT: String(o.metricsPort),
  };
  if (n.ip6 !== undefined) {
    env.IP6 = `${n.ip6}/64`;
    env.CALICO_IPV6POOL_CIDR = o.podCidr6;
    env.CALICO_IPV6POOL_BLOCK_SIZE = String(o.blockSize6);
    env.CALICO_IPV6POOL_VXLAN = env.CALICO_IPV4POOL_VXLAN ?? 'Never';
    env.FELIX_IPV6SUPPORT = 'true';
  }
  if (o.datastore === 'etcdv3') env.ETCD_ENDPOINTS = plan.etcdEndpoint;
  else {
    env.KUBECONFIG = plan.kubeconfig;
    // The demo's pods are netns + CNI calls, not Pod objects: on the Kubernetes datastore the IPAM
    // garbage collector (owners = pods) would rightly reclaim their addresses after its grace.
    env.TABBY_IPAM_GC = 'off';
  }
  return env;
}

/** The CNI network config handed to `tabby` for every pod of node n. */
export function cniNetconf(plan: Plan, n: NodePlan): Record<string, unknown> {
  const o = plan.options;
  const conf: Record<string, unknown> = {
    cniVersion: '1.0.0',
    name: 'k8s-pod-network',
    type: 'tabby',
    nodename: n.name,
    datastore_type: o.datastore,
    // run_dir: where this node's tabby-node serves the CNI fast path (cni.sock) and its status.
    run_dir: n.runDir,
    lib_dir: n.libDir,
    log_file_path: `${plan.cniDir}/${n.name}.log`,
    log_level: 'info',
    ipam: { type: 'tabby-ipam', run_dir: n.runDir, assign_ipv4: 'true', assign_ipv6: o.ipv6 ? 'true' : 'false' },
    kubernetes: o.datastore === 'kubernetes' ? { node_name: n.name, kubeconfig: plan.kubeconfig } : { node_name: n.name },
  };
  if (o.datastore === 'etcdv3') conf.etcd_endpoints = plan.etcdEndpoint;
  return conf;
}

/** tabbyctl configuration (calicoctl.cfg shape) written into the state dir. */
export function tabbyctlConfig(plan: Plan): string {
  const o = plan.options;
  const lines = ['apiVersion: projectcalico.org/v3', 'kind: CalicoAPIConfig', 'metadata: {}', 'spec:', `  datastoreType: ${o.datastore}`];
  if (o.datastore === 'etcdv3') lines.push(`  etcdEndpoints: ${plan.etcdEndpoint}`);
  else lines.push(`  kubeconfig: ${plan.kubeconfig}`);
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// State file: written by `up` before each step acts, read by `down` and `status`.

export interface ProcRecord {
  /** etcd, bird, tabby-node:<node> */
  role: string;
  pid: number;
  netns: string;
  /** A string the process's /proc/<pid>/cmdline must contain (guards against reused pids). */
  match: string;
  log: string;
}

export interface ClusterState {
  version: 1;
  options: ClusterOptions;
  createdAt: string;
  /** Namespaces this cluster created (down also sweeps every namespace with the prefix). */
  netns: string[];
  /** Links in the root namespace. */
  hostLinks: string[];
  procs: ProcRecord[];
  /** Directories down removes (the state dir itself last). */
  dirs: string[];
  /** Steps finished, in order (status shows them). */
  steps: string[];
}

export function emptyState(o: ClusterOptions, now = new Date()): ClusterState {
  return { version: 1, options: o, createdAt: now.toISOString(), netns: [], hostLinks: [], procs: [], dirs: [], steps: [] };
}

export function serializeState(s: ClusterState): string {
  return `${JSON.stringify(s, null, 2)}\n`;
}

export function parseState(text: string, file = 'state.json'): ClusterState {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ClusterError(`${file}: not JSON (${(e as Error).message})`, 'remove it by hand after checking `ip netns list`');
  }
  const s = raw as Partial<ClusterState>;
  if (typeof s !== 'object' || s === null || s.version !== 1 || typeof s.options !== 'object') {
    throw new ClusterError(`${file}: not a tabby cluster state file (version 1)`);
  }
  return {
    version: 1,
    options: s.options,
    createdAt: String(s.createdAt ?? ''),
    netns: Array.isArray(s.netns) ? s.netns.map(String) : [],
    hostLinks: Array.isArray(s.hostLinks) ? s.hostLinks.map(String) : [],
    procs: Array.isArray(s.procs) ? s.procs : [],
    dirs: Array.isArray(s.dirs) ? s.dirs.map(String) : [],
    steps: Array.isArray(s.steps) ? s.steps.map(String) : [],
  };
}

/** Options that shape the topology; `up` on an existing cluster with different ones refuses. */
export function sameShape(a: ClusterOptions, b: ClusterOptions): boolean {
  const keys: Array<keyof ClusterOptions> = ['prefix', 'nodes', 'podsPerNode', 'encap', 'crossSubnet', 'datastore', 'subnetA', 'subnetB', 'podCidr', 'nodeAs', 'torAs', 'ipv6'];
  return keys.every((k) => a[k] === b[k]);
}

export function addUnique<T>(list: T[], item: T): void {
  if (!list.includes(item)) list.push(item);
}
