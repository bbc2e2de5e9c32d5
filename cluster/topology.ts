/**
 * Network namespaces of the cluster: the fabric (bridges, etcd's address), the ToR router, the nodes,
 * and the root-namespace link to the fabric. Every step is idempotent (an existing namespace or link
 * is reused) and recorded in the state before it acts, so `down` finds it even after a crash.
 */
import type { ClusterState, NodePlan, Plan } from './plan.js';
import { ClusterError, addUnique } from './plan.js';
import { inNs, linkExists, must, netnsExists, run } from './sys.js';

export type SaveState = () => void;

async function ns(name: string, state: ClusterState, save: SaveState): Promise<void> {
  addUnique(state.netns, name);
  save();
  if (!netnsExists(name)) await must('ip', ['netns', 'add', name]);
  await must('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
}

async function nsLinkExists(ns: string, link: string): Promise<boolean> {
  return (await run('ip', ['-n', ns, 'link', 'show', 'dev', link])).code === 0;
}

async function sysctl(ns: string, key: string, value: string): Promise<void> {
  await must('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', `${key}=${value}`]);
}

/** `ip addr replace` is idempotent. */
async function addr(ns: string, dev: string, cidr: string): Promise<void> {
  await must('ip', ['-n', ns, 'addr', 'replace', cidr, 'dev', dev]);
}

/** IPv6 without duplicate address detection: usable (BGP can bind it) at once. */
async function addr6(ns: string, dev: string, cidr: string): Promise<void> {
  await must('ip', ['-n', ns, '-6', 'addr', 'replace', cidr, 'dev', dev, 'nodad']);
}

async function bridge(plan: Plan, name: string): Promise<void> {
  if (!(await nsLinkExists(plan.fabricNs, name))) {
    const r = await run('ip', ['-n', plan.fabricNs, 'link', 'add', name, 'type', 'bridge']);
    if (r.code !== 0) throw new ClusterError(`cannot create a bridge (${r.stderr.trim()})`, 'the kernel needs the bridge module (CONFIG_BRIDGE)');
  }
  await must('ip', ['-n', plan.fabricNs, 'link', 'set', name, 'up']);
}

/** A veth from the fabric (attached to bridge `br`) into namespace `target` as `inner`. */
async function fabricVeth(plan: Plan, outer: string, br: string, target: string, inner: string): Promise<void> {
  if (!(await nsLinkExists(plan.fabricNs, outer))) {
    if (await nsLinkExists(target, inner)) await must('ip', ['-n', target, 'link', 'del', inner]);
    const r = await run('ip', ['-n', plan.fabricNs, 'link', 'add', outer, 'type', 'veth', 'peer', 'name', inner, 'netns', target]);
    if (r.code !== 0) throw new ClusterError(`cannot create a veth pair (${r.stderr.trim()})`, 'the kernel needs the veth module (CONFIG_VETH)');
  }
  await must('ip', ['-n', plan.fabricNs, 'link', 'set', outer, 'master', br, 'up']);
  await must('ip', ['-n', target, 'link', 'set', inner, 'up']);
}

export async function createFabric(plan: Plan, state: ClusterState, save: SaveState): Promise<void> {
  const o = plan.options;
  await ns(plan.fabricNs, state, save);
  await bridge(plan, 'br-a');
  await addr(plan.fabricNs, 'br-a', `${plan.etcdIp}/24`);
  if (o.crossSubnet) {
    await bridge(plan, 'br-b');
    // etcd's namespace reaches subnet B through the ToR router.
    await must('ip', ['-n', plan.fabricNs, 'route', 'replace', `${o.subnetB}.0/24`, 'via', plan.torIpA]);
  }
  // Root namespace → fabric, so tabbyctl (and a person) reach etcd at its fabric address.
  addUnique(state.hostLinks, plan.hostLink);
  save();
  if (!linkExists(plan.hostLink)) {
    if (await nsLinkExists(plan.fabricNs, plan.hostPeer)) await must('ip', ['-n', plan.fabricNs, 'link', 'del', plan.hostPeer]);
    await must('ip', ['link', 'add', plan.hostLink, 'type', 'veth', 'peer', 'name', plan.hostPeer, 'netns', plan.fabricNs]);
  }
  await must('ip', ['-n', plan.fabricNs, 'link', 'set', plan.hostPeer, 'master', 'br-a', 'up']);
  await must('ip', ['addr', 'replace', `${plan.hostIp}/24`, 'dev', plan.hostLink]);
  await must('ip', ['link', 'set', plan.hostLink, 'up']);
}

export async function createTor(plan: Plan, state: ClusterState, save: SaveState): Promise<void> {
  await ns(plan.torNs, state, save);
  await fabricVeth(plan, 'tor-a', 'br-a', plan.torNs, 'eth0');
  await addr(plan.torNs, 'eth0', `${plan.torIpA}/24`);
  if (plan.torIp6A !== undefined) await addr6(plan.torNs, 'eth0', `${plan.torIp6A}/64`);
  if (plan.options.crossSubnet) {
    await fabricVeth(plan, 'tor-b', 'br-b', plan.torNs, 'eth1');
    await addr(plan.torNs, 'eth1', `${plan.torIpB}/24`);
    await sysctl(plan.torNs, 'net.ipv4.ip_forward', '1');
    if (plan.torIp6B !== undefined) {
      await addr6(plan.torNs, 'eth1', `${plan.torIp6B}/64`);
      await sysctl(plan.torNs, 'net.ipv6.conf.all.forwarding', '1');
    }
  }
}

export async function createNode(plan: Plan, n: NodePlan, state: ClusterState, save: SaveState): Promise<void> {
  await ns(n.netns, state, save);
  await fabricVeth(plan, n.fabricLink, n.subnet === 'a' ? 'br-a' : 'br-b', n.netns, 'eth0');
  await addr(n.netns, 'eth0', `${n.ip}/${n.prefixLen}`);
  await must('ip', ['-n', n.netns, 'route', 'replace', 'default', 'via', n.gateway]);
  await sysctl(n.netns, 'net.ipv4.ip_forward', '1');
  if (n.ip6 !== undefined && n.gateway6 !== undefined) {
    await addr6(n.netns, 'eth0', `${n.ip6}/64`);
    await must('ip', ['-n', n.netns, '-6', 'route', 'replace', 'default', 'via', n.gateway6]);
  }
}

export async function createPodNs(name: string, state: ClusterState, save: SaveState): Promise<void> {
  await ns(name, state, save);
}

/** Probe a link type in a scratch namespace: undefined when it works, else the kernel's answer. */
export async function probeLinkType(prefix: string, type: 'vxlan' | 'ipip', ): Promise<string | undefined> {
  const scratch = `${prefix}probe`;
  if (!netnsExists(scratch)) await must('ip', ['netns', 'add', scratch]);
  try {
    const args = type === 'vxlan' ? ['type', 'vxlan', 'id', '4096', 'dstport', '4789'] : ['type', 'ipip', 'remote', '192.0.2.1', 'local', '192.0.2.2'];
    const r = await run('ip', ['-n', scratch, 'link', 'add', 'probe0', ...args]);
    return r.code === 0 ? undefined : r.stderr.trim() || `exit ${r.code}`;
  } finally {
    await run('ip', ['netns', 'del', scratch]);
  }
}

export { inNs };
