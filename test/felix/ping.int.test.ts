// Real kernel, two nodes: node namespaces joined by a veth underlay, one pod netns per node (veth to a
// tfxw* interface), a Dataplane per node. Pod-to-pod ping across nodes, no-encap and VXLAN.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { firstReason, needCommand, needRoot } from '../lib/skip.js';
import { Dataplane } from '../../felix/dataplane.js';
import type { DesiredInputs, NodeInput } from '../../felix/model.js';

const skip = firstReason(needRoot(), needCommand('ip', 'iproute2'), needCommand('ping', 'iputils-ping'));
let counter = 0;

function sh(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function netns(t: TestContext, tag: string): string {
  const ns = `tfx-${process.pid}-${++counter}${tag}`;
  sh('netns', 'add', ns);
  t.after(() => {
    try {
      sh('netns', 'del', ns);
    } catch {
      // already gone
    }
  });
  sh('-n', ns, 'link', 'set', 'lo', 'up');
  return ns;
}

/** A pod netns with eth0 = podIp/32, default via 169.254.1.1 (Calico's pod wiring), host side tfxw1 in `node`. */
function pod(t: TestContext, node: string, podIp: string): string {
  const p = netns(t, 'p');
  sh('-n', node, 'link', 'add', 'tfxw1', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', p);
  sh('-n', node, 'link', 'set', 'tfxw1', 'up');
  sh('-n', p, 'addr', 'add', `${podIp}/32`, 'dev', 'eth0');
  sh('-n', p, 'link', 'set', 'eth0', 'up');
  sh('-n', p, 'route', 'add', '169.254.1.1', 'dev', 'eth0', 'scope', 'link');
  sh('-n', p, 'route', 'add', 'default', 'via', '169.254.1.1', 'dev', 'eth0');
  return p;
}

function cluster(t: TestContext) {
  const a = netns(t, 'a');
  const b = netns(t, 'b');
  sh('-n', a, 'link', 'add', 'tfxeth0', 'type', 'veth', 'peer', 'name', 'tfxeth0', 'netns', b);
  for (const [ns, ip] of [[a, '10.0.0.1/24'], [b, '10.0.0.2/24']] as const) {
    sh('-n', ns, 'addr', 'add', ip, 'dev', 'tfxeth0');
    sh('-n', ns, 'link', 'set', 'tfxeth0', 'up');
    sh('-n', ns, 'route', 'add', 'default', 'via', '10.0.0.254', 'dev', 'tfxeth0'); // proxy-ARP needs a route
  }
  return { a, b, pa: pod(t, a, '10.244.1.5'), pb: pod(t, b, '10.244.2.5') };
}

const NODES: NodeInput[] = [
  { name: 'tfx-n1', ipv4Address: '10.0.0.1/24', ipv4VXLANTunnelAddr: '10.244.1.0' },
  { name: 'tfx-n2', ipv4Address: '10.0.0.2/24', ipv4VXLANTunnelAddr: '10.244.2.0' },
];

function inputs(self: 0 | 1, mode: 'Never' | 'Always'): DesiredInputs {
  const me = NODES[self] as NodeInput;
  const other = NODES[1 - self] as NodeInput;
  return {
    self: me,
    parentIface: 'tfxeth0',
    workloads: [{ iface: 'tfxw1', ipNetworks: [self === 0 ? '10.244.1.5/32' : '10.244.2.5/32'] }],
    localBlocks: [self === 0 ? '10.244.1.0/26' : '10.244.2.0/26'],
    remoteBlocks: [{ cidr: self === 0 ? '10.244.2.0/26' : '10.244.1.0/26', node: other.name }],
    pools: [{ cidr: '10.244.0.0/16', vxlanMode: mode }],
    nodes: NODES,
  };
}

for (const mode of ['Never', 'Always'] as const) {
  test(`pod-to-pod ping across two nodes (${mode === 'Never' ? 'no-encap' : 'VXLAN'})`, { skip }, async (t) => {
    const { a, b, pa } = cluster(t);
    const names = { interfacePrefix: 'tfxw', vxlanDevice: 'tfxvx', ipipDevice: 'tfxtun' };
    const dps = [a, b].map((ns) => Dataplane.open({ netns: ns, names, natEnabled: false, mtuIfacePattern: /^tfxeth/ }));
    t.after(async () => {
      for (const dp of dps) await dp.stop();
    });
    for (const [i, dp] of dps.entries()) {
      await dp.start();
      const st = await dp.update(inputs(i as 0 | 1, mode));
      assert.deepEqual(st.errors, {});
      assert.equal(st.applied, true, JSON.stringify(st));
    }
    const out = execFileSync('ip', ['netns', 'exec', pa, 'ping', '-c', '2', '-W', '2', '10.244.2.5'], { encoding: 'utf8' });
    assert.match(out, /2 received/);
  });
}
