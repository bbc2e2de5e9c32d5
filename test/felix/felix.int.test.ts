// Real kernel: each test builds fresh tfx-* namespaces (removed in t.after) and runs the Dataplane inside.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { firstReason, needCommand, needRoot } from '../lib/skip.js';
import { Dataplane } from '../../felix/dataplane.js';
import { vtepMac } from '../../felix/calc.js';
import { IpipUnsupportedError, ensureIpipDevice } from '../../felix/ipip.js';
import { netlinkShim } from '../../felix/shim.js';
import type { DesiredInputs } from '../../felix/model.js';
import { Netlink, sysctlGet } from '../../netlink/index.js';

const skip = firstReason(needRoot(), needCommand('ip', 'iproute2'));
const skipNft = firstReason(skip, needCommand('nft', 'nftables'));
let counter = 0;
const NAMES = { interfacePrefix: 'tfxw', vxlanDevice: 'tfxvx', ipipDevice: 'tfxtun' };

function sh(cmd: string, ...args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
function inNs(ns: string, ...args: string[]): string {
  return sh('ip', 'netns', 'exec', ns, ...args);
}

/** Node namespace with an uplink tfxeth0 (10.0.0.1/24, peer in a second netns) and a workload veth tfxw1. */
function node(t: TestContext): string {
  const ns = `tfx-${process.pid}-${++counter}`;
  const peer = `${ns}-p`;
  sh('ip', 'netns', 'add', ns);
  sh('ip', 'netns', 'add', peer);
  t.after(() => {
    for (const n of [ns, peer]) {
      try {
        sh('ip', 'netns', 'del', n);
      } catch {
        // already gone
      }
    }
  });
  sh('ip', '-n', ns, 'link', 'add', 'tfxeth0', 'type', 'veth', 'peer', 'name', 'tfxeth0p', 'netns', peer);
  sh('ip', '-n', ns, 'addr', 'add', '10.0.0.1/24', 'dev', 'tfxeth0');
  sh('ip', '-n', ns, 'link', 'set', 'tfxeth0', 'up');
  sh('ip', '-n', peer, 'link', 'set', 'tfxeth0p', 'up');
  sh('ip', '-n', ns, 'link', 'add', 'tfxw1', 'type', 'veth', 'peer', 'name', 'tfxc1');
  sh('ip', '-n', ns, 'link', 'set', 'tfxw1', 'up');
  sh('ip', '-n', ns, 'link', 'set', 'lo', 'up');
  return ns;
}

function inputs(mode: 'Never' | 'Always', nat = true): DesiredInputs {
  return {
    self: { name: 'tfx-n1', ipv4Address: '10.0.0.1/24', ipv4VXLANTunnelAddr: '10.244.1.0' },
    parentIface: 'tfxeth0',
    workloads: [{ iface: 'tfxw1', ipNetworks: ['10.244.1.5/32'] }],
    localBlocks: ['10.244.1.0/26'],
    remoteBlocks: [
      { cidr: '10.244.2.0/26', node: 'tfx-n2' },
      { cidr: '10.244.3.0/26', node: 'tfx-n3' },
    ],
    pools: [{ cidr: '10.244.0.0/16', vxlanMode: mode, natOutgoing: nat }],
    nodes: [
      { name: 'tfx-n2', ipv4Address: '10.0.0.2/24', ipv4VXLANTunnelAddr: '10.244.2.0' },
      { name: 'tfx-n3', ipv4Address: '10.0.0.3/24', ipv4VXLANTunnelAddr: '10.244.3.0' },
    ],
  };
}

function routes(ns: string): Array<{ dst: string; gateway?: string; dev?: string; protocol?: string; type?: string; flags?: string[]; scope?: string }> {
  return JSON.parse(sh('ip', '-n', ns, '-j', 'route', 'show', 'table', 'main'));
}
const route = (ns: string, dst: string) => routes(ns).find((r) => r.dst === dst || `${r.dst}/32` === dst);

async function eventually(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 10));
  }
}

function open(t: TestContext, ns: string): Dataplane {
  const dp = Dataplane.open({ netns: ns, names: NAMES, natTable: 'tfx-nat', debounceMs: 10, mtuIfacePattern: /^tfxeth/ });
  t.after(() => dp.stop());
  return dp;
}

test('reconciles routes; a route deleted by hand is restored; foreign routes untouched', { skip: skipNft }, async (t) => {
  const ns = node(t);
  sh('ip', '-n', ns, 'route', 'add', '192.168.50.0/24', 'via', '10.0.0.254', 'proto', 'static');
  sh('ip', '-n', ns, 'route', 'add', '10.244.9.0/26', 'via', '10.0.0.254', 'proto', 'bird');
  const dp = open(t, ns);
  await dp.start();
  const st = await dp.update(inputs('Never'));
  assert.deepEqual(st.errors, {});
  assert.equal(st.applied, true);

  assert.deepEqual(route(ns, '10.244.1.5/32'), { dst: '10.244.1.5', dev: 'tfxw1', protocol: '80', scope: 'link', flags: ['linkdown'] });
  assert.deepEqual(route(ns, '10.244.1.0/26'), { type: 'blackhole', dst: '10.244.1.0/26', protocol: '80', flags: [] });
  assert.deepEqual(route(ns, '10.244.2.0/26'), { dst: '10.244.2.0/26', gateway: '10.0.0.2', dev: 'tfxeth0', protocol: '80', flags: [] });
  assert.equal(sysctlGet(['net', 'ipv4', 'conf', 'tfxw1', 'proxy_arp'], ns), '1');
  assert.equal(sysctlGet('net.ipv4.ip_forward', ns), '1');

  const addsBefore = dp.status().routes.adds;
  sh('ip', '-n', ns, 'route', 'del', '10.244.2.0/26');
  await eventually(() => route(ns, '10.244.2.0/26') !== undefined);
  sh('ip', '-n', ns, 'route', 'del', '10.244.1.5/32');
  sh('ip', '-n', ns, 'route', 'replace', '10.244.1.0/26', 'via', '10.0.0.9');
  await eventually(() => route(ns, '10.244.1.5/32') !== undefined && route(ns, '10.244.1.0/26')?.type === 'blackhole');

  assert.equal(route(ns, '192.168.50.0/24')?.protocol, 'static');
  assert.equal(route(ns, '10.244.9.0/26')?.protocol, 'bird');
  assert.ok(dp.status().routes.adds >= addsBefore + 3);

  // stop keeps routes; a new agent adopts them and removes what is no longer desired
  await dp.stop();
  assert.ok(route(ns, '10.244.3.0/26'));
  const dp2 = open(t, ns);
  await dp2.start();
  await dp2.update({ ...inputs('Never'), remoteBlocks: [{ cidr: '10.244.2.0/26', node: 'tfx-n2' }] });
  assert.equal(route(ns, '10.244.3.0/26'), undefined);
  assert.ok(route(ns, '10.244.2.0/26'));
  assert.equal(route(ns, '10.244.9.0/26')?.protocol, 'bird');
});

test('VXLAN: device (VNI 4096, port 4789, MAC from node name, MTU host-50), ARP + FDB, onlink routes', { skip: skipNft }, async (t) => {
  const ns = node(t);
  const dp = open(t, ns);
  await dp.start();
  const st = await dp.update(inputs('Always'));
  assert.deepEqual(st.errors, {});
  const [link] = JSON.parse(sh('ip', '-n', ns, '-d', '-j', 'link', 'show', 'tfxvx')) as Array<{ mtu: number; address: string; linkinfo: { info_data: { id: number; port: number } } }>;
  assert.equal(link?.mtu, 1450);
  assert.equal(link?.address, vtepMac('tfx-n1'));
  assert.equal(link?.linkinfo.info_data.id, 4096);
  assert.equal(link?.linkinfo.info_data.port, 4789);
  assert.match(sh('ip', '-n', ns, 'addr', 'show', 'dev', 'tfxvx'), /inet 10\.244\.1\.0\/32/);
  const fdb = inNs(ns, 'bridge', 'fdb', 'show', 'dev', 'tfxvx');
  assert.match(fdb, new RegExp(`${vtepMac('tfx-n2')} dst 10\\.0\\.0\\.2 self permanent`));
  assert.match(fdb, new RegExp(`${vtepMac('tfx-n3')} dst 10\\.0\\.0\\.3 self permanent`));
  const neigh = sh('ip', '-n', ns, 'neigh', 'show', 'dev', 'tfxvx');
  assert.match(neigh, new RegExp(`10\\.244\\.2\\.0 lladdr ${vtepMac('tfx-n2')} PERMANENT`));
  assert.deepEqual(route(ns, '10.244.3.0/26'), { dst: '10.244.3.0/26', gateway: '10.244.3.0', dev: 'tfxvx', protocol: '80', flags: ['onlink'] });

  // node n3 leaves: its FDB/ARP entries and route go
  await dp.update({ ...inputs('Always'), remoteBlocks: [{ cidr: '10.244.2.0/26', node: 'tfx-n2' }], nodes: inputs('Always').nodes.slice(0, 1) });
  assert.doesNotMatch(inNs(ns, 'bridge', 'fdb', 'show', 'dev', 'tfxvx'), new RegExp(vtepMac('tfx-n3')));
  assert.equal(route(ns, '10.244.3.0/26'), undefined);
});

test('NAT outgoing: nft table applied, idempotent, removed when disabled', { skip: skipNft }, async (t) => {
  const ns = node(t);
  const dp = open(t, ns);
  await dp.start();
  await dp.update(inputs('Never', true));
  const table = inNs(ns, 'nft', 'list', 'table', 'ip', 'tfx-nat');
  assert.match(table, /ip saddr @masq-pools ip daddr != @all-pools masquerade/);
  assert.match(table, /10\.244\.0\.0\/16/);
  await dp.update({ ...inputs('Never', true), pools: [{ cidr: '10.244.0.0/16', natOutgoing: true }, { cidr: '10.245.0.0/16' }] });
  assert.match(inNs(ns, 'nft', 'list', 'table', 'ip', 'tfx-nat'), /10\.245\.0\.0\/16/);
  assert.equal((inNs(ns, 'nft', 'list', 'tables').match(/tfx-nat/g) ?? []).length, 1);
  await dp.update(inputs('Never', false));
  assert.doesNotMatch(inNs(ns, 'nft', 'list', 'tables'), /tfx-nat/);
});

test('IPIP: tunl0-style device configured, or a typed error when the kernel lacks ipip', { skip }, async (t) => {
  const ns = node(t);
  let kernelHasIpip = true;
  try {
    sh('ip', '-n', ns, 'link', 'add', 'tfxprobe', 'type', 'ipip');
  } catch {
    kernelHasIpip = false;
  }
  const nl = Netlink.open({ netns: ns });
  t.after(() => nl.close());
  const p = ensureIpipDevice(netlinkShim(nl), { name: 'tfxtun', mtu: 1480, tunnelIp: '10.244.1.1' });
  if (kernelHasIpip) {
    const l = await p;
    assert.equal(l.mtu, 1480);
  } else {
    t.diagnostic('kernel has no ipip: checking the typed error');
    await assert.rejects(p, (err: unknown) => err instanceof IpipUnsupportedError && err.message === 'kernel has no ipip support');
  }
});

test('IPv6: /128 workload route, v6 blackhole and v6 remote block converge without rewrite loops', { skip }, async (t) => {
  const ns = node(t);
  sh('ip', '-n', ns, '-6', 'addr', 'add', 'fd00::1/64', 'dev', 'tfxeth0', 'nodad');
  sh('ip', '-n', ns, 'route', 'add', '172.16.0.0/24', 'dev', 'tfxeth0'); // proto boot on a foreign interface
  const dp = Dataplane.open({ netns: ns, names: NAMES, natEnabled: false, debounceMs: 10, mtuIfacePattern: /^tfxeth/, ipv6: true });
  t.after(() => dp.stop());
  await dp.start();
  const v6: DesiredInputs = {
    ...inputs('Never', false),
    self: { name: 'tfx-n1', ipv4Address: '10.0.0.1/24', ipv6Address: 'fd00::1/64' },
    workloads: [{ iface: 'tfxw1', ipNetworks: ['10.244.1.5/32', 'fd10::5/128'] }],
    localBlocks: ['10.244.1.0/26', 'fd10::/122'],
    remoteBlocks: [{ cidr: 'fd10::40/122', node: 'tfx-n2' }],
    nodes: [{ name: 'tfx-n2', ipv4Address: '10.0.0.2/24', ipv6Address: 'fd00::2/64' }],
  };
  const st = await dp.update(v6);
  assert.deepEqual(st.errors, {});
  const r6 = JSON.parse(sh('ip', '-n', ns, '-6', '-j', 'route', 'show', 'proto', '80')) as Array<{ dst: string; type?: string; dev?: string; gateway?: string }>;
  assert.deepEqual(r6.map((r) => r.dst).sort(), ['fd10::/122', 'fd10::40/122', 'fd10::5']);
  assert.equal(r6.find((r) => r.dst === 'fd10::/122')?.type, 'blackhole');
  assert.equal(r6.find((r) => r.dst === 'fd10::40/122')?.gateway, 'fd00::2');
  assert.equal(r6.find((r) => r.dst === 'fd10::5')?.dev, 'tfxw1');
  const adds = dp.status().routes.adds;
  await new Promise((r) => setTimeout(r, 300)); // let our own events come back
  await dp.update(v6);
  assert.equal(dp.status().routes.adds, adds, 'own route events must not cause rewrites');
  assert.ok(route(ns, '172.16.0.0/24'), 'proto boot route on a non-workload interface untouched');
  sh('ip', '-n', ns, '-6', 'route', 'del', 'fd10::/122');
  await eventually(() => sh('ip', '-n', ns, '-6', 'route', 'show', 'fd10::/122').includes('blackhole'));
});
