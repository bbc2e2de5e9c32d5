/**
 * The tabby plugin against the real kernel: every pod's "host" side lives in a tcn-node-* namespace
 * the test creates, so the machine's own links and routes are never touched.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { firstReason, needCommand, needRoot } from '../lib/skip.js';
import { hostVethName } from '../../cni/plugin/names.js';
import { type PluginRun, buildOnce, cniDir, inNs, netnsAdd, netnsDel, runChain, runPlugin } from './helpers.js';

const skip = firstReason(needRoot(), needCommand('nsenter', 'util-linux'), existsSync('/usr/lib/cni/host-local') ? undefined : 'needs /usr/lib/cni/host-local (containernetworking-plugins)');
let seq = 0;

async function node(t: { after: (fn: () => unknown) => void }, subnet = '10.98.0.0/24') {
  buildOnce();
  const id = `${process.pid % 10000}-${seq++}`;
  const nodeNs = `tcn-node-${id}`;
  netnsAdd(nodeNs);
  inNs(nodeNs, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  inNs(nodeNs, ['ip', 'addr', 'add', '10.250.0.1/32', 'dev', 'lo']);
  // An uplink with a default route, as a real node has: proxy ARP answers for 169.254.1.1 only
  // when the node has a route to it through another interface.
  inNs(nodeNs, ['ip', 'link', 'add', 'tcnup0', 'type', 'veth', 'peer', 'name', 'tcnup1']);
  inNs(nodeNs, ['ip', 'link', 'set', 'tcnup0', 'up']);
  inNs(nodeNs, ['ip', 'link', 'set', 'tcnup1', 'up']);
  inNs(nodeNs, ['ip', 'route', 'add', 'default', 'dev', 'tcnup0']);
  const d = await cniDir();
  const pods: string[] = [];
  t.after(async () => {
    for (const p of pods) netnsDel(p);
    netnsDel(nodeNs);
    await d.cleanup();
  });
  const conf = (extra: Record<string, unknown> = {}) => ({
    cniVersion: '1.0.0',
    name: 'tcn-net',
    type: 'tabby',
    log_file_path: join(d.dir, 'cni.log'),
    lib_dir: join(d.dir, 'lib'),
    ipam: { type: 'host-local', subnet, dataDir: join(d.dir, 'ipam') },
    ...extra,
  });
  const pod = (name: string) => {
    const ns = `tcn-${name}-${id}`;
    pods.push(ns);
    return { ns, path: netnsAdd(ns), containerId: `cid-${name}-${id}`, args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=tcn;K8S_POD_NAME=${name}-${id}` };
  };
  const call = (command: string, p: ReturnType<typeof pod>, c: Record<string, unknown>, extra: { ifname?: string; netns?: string } = {}) =>
    runPlugin({ plugin: 'tabby', command, conf: c, containerId: p.containerId, netns: extra.netns ?? p.path, args: p.args, cniPath: d.bin, nodeNs, ...(extra.ifname ? { ifname: extra.ifname } : {}) });
  const ipamFiles = () => (existsSync(join(d.dir, 'ipam/tcn-net')) ? readdirSync(join(d.dir, 'ipam/tcn-net')).filter((f) => /^\d/.test(f)) : []);
  return { nodeNs, d, conf, pod, call, ipamFiles, id };
}

function podIp(out: Record<string, unknown> | undefined): string {
  const ips = out?.ips as Array<{ address: string }> | undefined;
  return (ips?.[0]?.address ?? '').split('/')[0] ?? '';
}

test('ADD/CHECK/DEL in a fresh netns: Calico plumbing, real CHECK, idempotent ADD, DEL releases', { skip }, async (t) => {
  const n = await node(t);
  const p = n.pod('a');
  const c = n.conf({ mtu: 1400 });
  const add = await n.call('ADD', p, c);
  assert.equal(add.code, 0, add.raw);
  const ip = podIp(add.out);
  assert.match(ip, /^10\.98\.0\.\d+$/);
  const hostIf = hostVethName({ K8S_POD_NAMESPACE: 'tcn', K8S_POD_NAME: `a-${n.id}` }, '');
  // Pod side.
  const addr = inNs(p.ns, ['ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
  assert.match(addr, new RegExp(`inet ${ip.replaceAll('.', '\\.')}/32 `));
  assert.match(inNs(p.ns, ['ip', 'link', 'show', 'eth0']), /mtu 1400/);
  const routes = inNs(p.ns, ['ip', 'route']);
  assert.match(routes, /default via 169\.254\.1\.1 dev eth0/);
  assert.match(routes, /169\.254\.1\.1 dev eth0 scope link/);
  // Host side.
  assert.match(inNs(n.nodeNs, ['ip', 'link', 'show', hostIf]), /link\/ether ee:ee:ee:ee:ee:ee/);
  assert.match(inNs(n.nodeNs, ['ip', 'route', 'show', 'dev', hostIf]), new RegExp(`${ip.replaceAll('.', '\\.')} scope link`));
  for (const [k, v] of [[`net.ipv4.conf.${hostIf}.proxy_arp`, '1'], [`net.ipv4.neigh.${hostIf}.proxy_delay`, '0'], [`net.ipv4.conf.${hostIf}.forwarding`, '1'], [`net.ipv4.conf.${hostIf}.route_localnet`, '1']]) {
    assert.equal(inNs(n.nodeNs, ['sysctl', '-n', k as string]).trim(), v, k);
  }
  // Retried ADD returns the same result.
  const again = await n.call('ADD', p, c);
  assert.deepEqual(again.out, add.out);
  // CHECK passes, then fails once the host route is gone.
  const chk = await n.call('CHECK', p, { ...c, prevResult: add.out });
  assert.equal(chk.code, 0, chk.raw);
  inNs(n.nodeNs, ['ip', 'route', 'del', `${ip}/32`, 'dev', hostIf]);
  const bad = await n.call('CHECK', p, { ...c, prevResult: add.out });
  assert.equal(bad.out?.code, 111, bad.raw);
  assert.match(String(bad.out?.msg), /host route/);
  // DEL: veth and allocation gone; again is fine; also once the netns is gone.
  assert.equal(n.ipamFiles().length, 1);
  assert.equal((await n.call('DEL', p, c)).code, 0);
  assert.doesNotMatch(inNs(n.nodeNs, ['ip', 'link']), new RegExp(hostIf));
  assert.deepEqual(n.ipamFiles(), []);
  assert.equal((await n.call('DEL', p, c)).code, 0);
  const q = n.pod('b');
  assert.equal((await n.call('ADD', q, c)).code, 0);
  netnsDel(q.ns);
  const delGone = await n.call('DEL', q, c);
  assert.equal(delGone.code, 0, delGone.raw);
  assert.deepEqual(n.ipamFiles(), []);
});

test('pods ping the node and each other through 169.254.1.1; MTU file is used', { skip }, async (t) => {
  const n = await node(t);
  const c = n.conf();
  const { mkdirSync, writeFileSync } = await import('node:fs');
  mkdirSync(join(n.d.dir, 'lib'), { recursive: true });
  writeFileSync(join(n.d.dir, 'lib/mtu'), '1450\n');
  const a = n.pod('p1');
  const b = n.pod('p2');
  const ra = await n.call('ADD', a, c);
  const rb = await n.call('ADD', b, c);
  assert.equal(ra.code + rb.code, 0, ra.raw + rb.raw);
  assert.match(inNs(a.ns, ['ip', 'link', 'show', 'eth0']), /mtu 1450/);
  inNs(a.ns, ['ping', '-c', '1', '-W', '2', '10.250.0.1']);
  inNs(a.ns, ['ping', '-c', '1', '-W', '2', podIp(rb.out)]);
  inNs(b.ns, ['ping', '-c', '1', '-W', '2', podIp(ra.out)]);
  assert.match(inNs(a.ns, ['ip', 'neigh', 'show', '169.254.1.1']), /ee:ee:ee:ee:ee:ee/);
  assert.equal((await n.call('DEL', a, c)).code, 0);
  assert.equal((await n.call('DEL', b, c)).code, 0);
  assert.doesNotMatch(inNs(n.nodeNs, ['ip', 'link']), /cali/);
});

test('GC removes leftover cali links of attachments not in cni.dev/valid-attachments', { skip }, async (t) => {
  const n = await node(t);
  const c = n.conf({ cniVersion: '1.1.0', ipam: { type: 'host-local', subnet: '10.98.0.0/24', dataDir: join(n.d.dir, 'ipam') } });
  // host-local speaks up to 1.0.0: ADD with 1.0.0, GC with 1.1.0 (tabby skips the IPAM delegate).
  const c10 = { ...c, cniVersion: '1.0.0' };
  const keep = n.pod('keep');
  const gone = n.pod('gone');
  assert.equal((await n.call('ADD', keep, c10)).code, 0);
  assert.equal((await n.call('ADD', gone, c10)).code, 0);
  const keepIf = hostVethName({ K8S_POD_NAMESPACE: 'tcn', K8S_POD_NAME: `keep-${n.id}` }, '');
  const goneIf = hostVethName({ K8S_POD_NAMESPACE: 'tcn', K8S_POD_NAME: `gone-${n.id}` }, '');
  const gc = await runPlugin({ plugin: 'tabby', command: 'GC', conf: { ...c, 'cni.dev/valid-attachments': [{ containerID: keep.containerId, ifname: 'eth0' }] }, containerId: '', netns: '', cniPath: n.d.bin, nodeNs: n.nodeNs });
  assert.equal(gc.code, 0, gc.raw);
  const links = inNs(n.nodeNs, ['ip', 'link']);
  assert.match(links, new RegExp(keepIf));
  assert.doesNotMatch(links, new RegExp(goneIf));
  assert.doesNotMatch(inNs(n.nodeNs, ['ip', 'route']), new RegExp(goneIf));
  assert.equal((await n.call('DEL', keep, c10)).code, 0);
});

test('bad input: spec codes, named problem, nothing left behind', { skip }, async (t) => {
  const n = await node(t);
  const p = n.pod('bad');
  const c = n.conf();
  const cases: Array<[number, RegExp, () => Promise<PluginRun>]> = [
    [6, /decode/, () => runPlugin({ plugin: 'tabby', command: 'ADD', conf: 'x{', containerId: 'c', netns: p.path, cniPath: n.d.bin, nodeNs: n.nodeNs })],
    [1, /incompatible CNI version 0\.9\.9/, () => n.call('ADD', p, { ...c, cniVersion: '0.9.9' })],
    [4, /CNI_NETNS/, () => n.call('ADD', p, c, { netns: '' })],
    [4, /CNI_CONTAINERID/, () => runPlugin({ plugin: 'tabby', command: 'ADD', conf: c, containerId: '', netns: p.path, cniPath: n.d.bin, nodeNs: n.nodeNs })],
    [4, /longer than 15/, () => n.call('ADD', p, c, { ifname: 'eth0123456789012' })],
    [4, /does not exist/, () => n.call('ADD', p, c, { netns: '/var/run/netns/tcn-missing-ns' })],
    [7, /ipam/, () => n.call('ADD', p, { ...c, ipam: { type: 'no-such-ipam' } })],
  ];
  for (const [code, msg, run] of cases) {
    const r = await run();
    assert.equal(r.code, 1, r.raw);
    assert.equal(r.out?.code, code, r.raw);
    assert.match(String(r.out?.msg), msg);
  }
  assert.doesNotMatch(inNs(n.nodeNs, ['ip', 'link']), /cali/);
  assert.doesNotMatch(inNs(p.ns, ['ip', 'link']), /eth0/);
  assert.deepEqual(n.ipamFiles(), []);
  // A pod interface name that already exists: the dataplane fails after IPAM; the allocation is released.
  inNs(p.ns, ['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'tcnpeer']);
  const clash = await n.call('ADD', p, c);
  assert.equal(clash.out?.code, 112, clash.raw);
  assert.match(String(clash.out?.msg), /exists/);
  assert.deepEqual(n.ipamFiles(), []);
  assert.doesNotMatch(inNs(n.nodeNs, ['ip', 'link']), /cali/);
});

test('conflist: tabby first, then Debian portmap and bandwidth get a correct prevResult', { skip: skip ?? needCommand('iptables') }, async (t) => {
  // Loading the ifb module (bandwidth needs it) makes ifb0/ifb1 in the root namespace: remove the
  // ones this test caused to appear.
  const rootLinks = (): string[] => execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).split('\n').map((l) => l.split(':')[1]?.trim() ?? '');
  const ifbBefore = new Set(rootLinks().filter((l) => /^ifb\d+$/.test(l)));
  t.after(() => {
    for (const l of rootLinks()) if (/^ifb\d+$/.test(l) && !ifbBefore.has(l)) execFileSync('ip', ['link', 'del', l]);
  });
  const n = await node(t);
  const p = n.pod('chain');
  const { cniVersion: _v, name: _n, ...tabby } = n.conf();
  const list = {
    cniVersion: '1.0.0',
    name: 'tcn-net',
    plugins: [
      tabby,
      { type: 'portmap', snat: true, capabilities: { portMappings: true }, runtimeConfig: { portMappings: [{ hostPort: 18080, containerPort: 80, protocol: 'tcp' }] } },
      { type: 'bandwidth', capabilities: { bandwidth: true }, runtimeConfig: { bandwidth: { ingressRate: 1000000, ingressBurst: 100000, egressRate: 1000000, egressBurst: 100000 } } },
    ],
  };
  const base = { containerId: p.containerId, netns: p.path, args: p.args, cniPath: n.d.bin, nodeNs: n.nodeNs };
  const add = await runChain('ADD', list, base);
  if (add.code !== 0 && /ifb|Operation not supported|Unknown device/i.test(add.raw)) {
    await runChain('DEL', list, base);
    t.skip(`bandwidth plugin needs the ifb device: ${add.raw}`);
    return;
  }
  assert.equal(add.code, 0, add.raw + JSON.stringify(add.out));
  const ip = podIp(add.out);
  const hostIf = hostVethName({ K8S_POD_NAMESPACE: 'tcn', K8S_POD_NAME: `chain-${n.id}` }, '');
  const nat = inNs(n.nodeNs, ['iptables-save', '-t', 'nat']);
  assert.match(nat, new RegExp(`--to-destination ${ip.replaceAll('.', '\\.')}:80`), 'portmap DNAT to the pod IP from our result');
  assert.match(inNs(n.nodeNs, ['tc', 'qdisc', 'show', 'dev', hostIf]), /tbf|ingress/, 'bandwidth found our host veth in the result');
  // portmap 1.1.1's own CHECK fails on v4-only pods ("could not check ipv6 dnat"): check the others.
  const chk = await runChain('CHECK', { ...list, plugins: list.plugins.filter((x) => x.type !== 'portmap') }, base, add.out);
  assert.equal(chk.code, 0, chk.raw);
  const del = await runChain('DEL', list, { ...base }, undefined);
  assert.equal(del.code, 0, del.raw);
  assert.doesNotMatch(inNs(n.nodeNs, ['iptables-save', '-t', 'nat']), /18080/);
  assert.doesNotMatch(inNs(n.nodeNs, ['ip', 'link']), /cali|bwp/);
});

test('dual stack: /32 + /128, IPv6 default via the host veth link-local, pods ping6 each other', { skip }, async (t) => {
  const n = await node(t);
  inNs(n.nodeNs, ['sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1']);
  const c = n.conf({ ipam: { type: 'host-local', ranges: [[{ subnet: '10.98.1.0/24' }], [{ subnet: 'fd00:98::/64' }]], dataDir: join(n.d.dir, 'ipam') } });
  const a = n.pod('v6a');
  const b = n.pod('v6b');
  const ra = await n.call('ADD', a, c);
  const rb = await n.call('ADD', b, c);
  assert.equal(ra.code + rb.code, 0, ra.raw + rb.raw);
  const v6 = (r: typeof ra) => ((r.out?.ips as Array<{ address: string }>).find((x) => x.address.includes(':'))?.address ?? '').split('/')[0] ?? '';
  assert.match(inNs(a.ns, ['ip', '-6', 'addr', 'show', 'dev', 'eth0']), new RegExp(`${v6(ra)}/128`));
  assert.match(inNs(a.ns, ['ip', '-6', 'route']), /default via fe80::ecee:eeff:feee:eeee dev eth0/);
  inNs(a.ns, ['ping', '-6', '-c', '1', '-W', '3', v6(rb)]);
  inNs(a.ns, ['ping', '-c', '1', '-W', '2', podIp(rb.out)]);
  const chk = await n.call('CHECK', a, { ...c, prevResult: ra.out });
  assert.equal(chk.code, 0, chk.raw);
  assert.equal((await n.call('DEL', a, c)).code, 0);
  assert.equal((await n.call('DEL', b, c)).code, 0);
  assert.doesNotMatch(inNs(n.nodeNs, ['ip', '-6', 'route']), /fd00:98::/);
});

test('every spec version host-local speaks: ADD result shape, CHECK from 0.4.0, DEL', { skip }, async (t) => {
  const n = await node(t);
  for (const v of ['0.3.0', '0.3.1', '0.4.0', '1.0.0']) {
    const p = n.pod(`v${v.replaceAll('.', '')}`);
    const c = n.conf({ cniVersion: v });
    const add = await n.call('ADD', p, c);
    assert.equal(add.code, 0, add.raw);
    assert.equal(add.out?.cniVersion, v);
    const ip0 = (add.out?.ips as Array<Record<string, unknown>>)[0];
    assert.equal(ip0?.version, v.startsWith('0.') ? '4' : undefined, `${v}: ips[].version`);
    assert.equal(ip0?.interface, 1);
    const chk = await n.call('CHECK', p, { ...c, prevResult: add.out });
    if (v === '0.3.0' || v === '0.3.1') assert.equal(chk.out?.code, 1, `${v}: CHECK is not in this version`);
    else assert.equal(chk.code, 0, chk.raw);
    assert.equal((await n.call('DEL', p, c)).code, 0);
  }
  assert.deepEqual(n.ipamFiles(), []);
});
