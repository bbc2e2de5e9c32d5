// Real kernel: every test works in fresh network namespaces named tnl-*, removed in t.after.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { firstReason, needCommand, needRoot } from '../lib/skip.js';
import { AF, IFA_F, LinkNotFoundError, NTF, NUD, Netlink, NetlinkError, RTN, RT_SCOPE, sysctlGet, sysctlSet, type NetlinkEvent } from '../../netlink/index.js';

const skip = firstReason(needRoot(), needCommand('ip', 'iproute2'));
let counter = 0;

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8' });
}

/** A fresh netns, deleted (with everything in it) when the test ends. */
function netns(t: TestContext): string {
  const name = `tnl-${process.pid}-${++counter}`;
  ip('netns', 'add', name);
  t.after(() => {
    try {
      ip('netns', 'del', name);
    } catch {
      // already gone
    }
  });
  return name;
}

function handle(t: TestContext, ns: string): Netlink {
  const nl = Netlink.open({ netns: ns });
  t.after(() => nl.close());
  return nl;
}

/** Two namespaces joined by a veth: host side tnlh0 (10.1.0.1/24) in A, tnlc0 in B. */
async function vethPair(t: TestContext) {
  const a = netns(t);
  const b = netns(t);
  const nl = handle(t, a);
  await nl.linkAdd({ name: 'tnlh0', kind: 'veth', mtu: 1450, peer: { name: 'tnlc0', netns: b } });
  await nl.linkSet('tnlh0', { up: true });
  const host = await nl.linkByName('tnlh0');
  return { a, b, nl, host };
}

test('veth with the peer in another netns; link set/get/list/del; typed errors', { skip }, async (t) => {
  const { b, nl, host } = await vethPair(t);
  assert.equal(host.kind, 'veth');
  assert.equal(host.mtu, 1450);
  assert.ok(host.up);
  const nlb = handle(t, b);
  const peer = await nlb.linkByName('tnlc0');
  assert.equal(peer.kind, 'veth');
  await assert.rejects(nl.linkByName('tnlc0'), LinkNotFoundError);

  await nl.linkSet(host.index, { mtu: 1400, address: 'ee:ee:ee:ee:ee:ee' });
  const changed = await nl.linkByIndex(host.index);
  assert.deepEqual([changed.mtu, changed.address], [1400, 'ee:ee:ee:ee:ee:ee']);

  await nl.linkAdd({ name: 'tnlbr0', kind: 'bridge' });
  const br = await nl.linkByName('tnlbr0');
  await nl.linkSet('tnlh0', { masterIndex: br.index });
  assert.equal((await nl.linkByName('tnlh0')).masterIndex, br.index);
  await nl.linkSet('tnlh0', { masterIndex: 0 });
  assert.equal((await nl.linkByName('tnlh0')).masterIndex, undefined);

  await assert.rejects(nl.linkAdd({ name: 'tnlbr0', kind: 'bridge' }), (err: unknown) => err instanceof NetlinkError && err.code === 'EEXIST');
  await nl.linkSet('tnlbr0', { name: 'tnlbr1' });
  assert.ok((await nl.linkList()).some((l) => l.name === 'tnlbr1' && l.kind === 'bridge'));

  // move a link to another namespace (bridges are netns-local: the kernel says so in its ext ACK)
  await assert.rejects(nl.linkSet(br.index, { netns: b }), (err: unknown) => err instanceof NetlinkError && err.code === 'EINVAL' && /netns is immutable/.test(err.extAck ?? ''));
  await nl.linkAdd({ name: 'tnlmv0', kind: 'veth', peer: { name: 'tnlmv1' } });
  await nl.linkSet('tnlmv0', { netns: b });
  assert.equal((await nlb.linkByName('tnlmv0')).kind, 'veth');
  await assert.rejects(nl.linkByName('tnlmv0'), LinkNotFoundError);
  await nl.linkDel('tnlbr1');
  await assert.rejects(nl.linkByName('tnlbr1'), (err: unknown) => err instanceof LinkNotFoundError && err.code === 'ENODEV');
});

test('addresses: add (v4, scope link, v6 nodad), list, replace, del, EEXIST', { skip }, async (t) => {
  const { nl, host } = await vethPair(t);
  await nl.addrAdd({ ifindex: host.index, address: '10.1.0.1/24' });
  await nl.addrAdd({ ifindex: host.index, address: '169.254.1.1/32', scope: RT_SCOPE.LINK });
  await nl.addrAdd({ ifindex: host.index, address: 'fd00::1/64', flags: IFA_F.NODAD });
  await assert.rejects(nl.addrAdd({ ifindex: host.index, address: '10.1.0.1/24' }), (err: unknown) => err instanceof NetlinkError && err.code === 'EEXIST');
  await nl.addrReplace({ ifindex: host.index, address: '10.1.0.1/24' });
  const list = await nl.addrList({ ifindex: host.index });
  assert.ok(list.some((a) => a.address === '10.1.0.1/24' && a.family === AF.INET));
  assert.ok(list.some((a) => a.address === '169.254.1.1/32' && a.scope === RT_SCOPE.LINK));
  assert.ok(list.some((a) => a.address === 'fd00::1/64'));
  assert.match(ip('-n', (nl.netns as string), 'addr', 'show', 'dev', 'tnlh0'), /inet 169\.254\.1\.1\/32 scope link/);
  await nl.addrDel({ ifindex: host.index, address: '169.254.1.1/32' });
  assert.ok(!(await nl.addrList({ family: AF.INET })).some((a) => a.address === '169.254.1.1/32'));
});

test('routes: unicast, blackhole, unreachable, onlink, multipath, mtu, via inet6, table, replace, del', { skip }, async (t) => {
  const { nl, host, a } = await vethPair(t);
  await nl.addrAdd({ ifindex: host.index, address: '10.1.0.1/24' });
  const oif = host.index;
  await nl.routeAdd({ dst: '10.2.0.0/24', gw: '10.1.0.2', oif, protocol: 80 });
  await nl.routeAdd({ dst: '10.3.0.0/26', type: RTN.BLACKHOLE, protocol: 80 });
  await nl.routeAdd({ dst: '10.3.1.0/26', type: RTN.UNREACHABLE });
  await nl.routeAdd({ dst: '10.4.0.0/26', gw: '192.168.9.9', oif, onlink: true, protocol: 80 });
  await nl.routeAdd({ dst: '10.5.0.0/24', protocol: 80, multipath: [{ gw: '10.1.0.2', oif }, { gw: '10.1.0.3', oif, weight: 2 }] });
  await nl.routeAdd({ dst: '10.6.0.0/24', oif, mtu: 1400 });
  await nl.routeAdd({ dst: '10.7.0.0/24', gw: 'fe80::1', oif });
  await nl.routeAdd({ dst: '10.8.0.0/24', oif, table: 100, priority: 1024, prefsrc: '10.1.0.1' });
  await nl.routeAdd({ dst: '10.9.0.0/24', oif, table: 1000 });

  await assert.rejects(nl.routeAdd({ dst: '10.2.0.0/24', gw: '10.1.0.2', oif }), (err: unknown) => err instanceof NetlinkError && err.code === 'EEXIST');
  await assert.rejects(nl.routeAdd({ dst: '10.99.0.0/24', gw: '10.99.99.99', oif }), (err: unknown) => err instanceof NetlinkError && err.code === 'ENETUNREACH' && /gateway/i.test(err.extAck ?? ''));

  const main = await nl.routeList({ family: AF.INET });
  const by = (dst: string) => main.find((r) => r.dst === dst);
  assert.equal(by('10.2.0.0/24')?.gw, '10.1.0.2');
  assert.equal(by('10.3.0.0/26')?.type, RTN.BLACKHOLE);
  assert.equal(by('10.3.1.0/26')?.type, RTN.UNREACHABLE);
  assert.equal(by('10.4.0.0/26')?.onlink, true);
  assert.deepEqual(by('10.5.0.0/24')?.multipath?.map((n) => [n.gw, n.weight]), [['10.1.0.2', 1], ['10.1.0.3', 2]]);
  assert.equal(by('10.6.0.0/24')?.mtu, 1400);
  assert.equal(by('10.7.0.0/24')?.gw, 'fe80::1');
  assert.equal(by('10.8.0.0/24'), undefined, 'table 100 is not in main');
  assert.equal((await nl.routeList({ protocol: 80 })).length, 4);
  const t100 = await nl.routeList({ table: 100 });
  assert.deepEqual(t100.map((r) => [r.dst, r.priority, r.prefsrc]), [['10.8.0.0/24', 1024, '10.1.0.1']]);
  assert.deepEqual((await nl.routeList({ table: 1000 })).map((r) => r.dst), ['10.9.0.0/24']);
  assert.ok((await nl.routeList({ table: 0 })).some((r) => r.table === 255), 'table 0 lists all tables');
  assert.match(ip('-n', a, 'route', 'show', '10.4.0.0/26'), /via 192\.168\.9\.9 dev tnlh0 proto 80 onlink/);

  await nl.routeReplace({ dst: '10.2.0.0/24', gw: '10.1.0.3', oif, protocol: 80 });
  assert.equal((await nl.routeList({ dst: '10.2.0.0/24' }))[0]?.gw, '10.1.0.3');
  await nl.routeDel({ dst: '10.2.0.0/24' });
  await assert.rejects(nl.routeDel({ dst: '10.2.0.0/24' }), (err: unknown) => err instanceof NetlinkError && err.code === 'ESRCH');

  // IPv6
  await nl.addrAdd({ ifindex: oif, address: 'fd00::1/64', flags: IFA_F.NODAD });
  await nl.routeAdd({ dst: 'fd00:1::/64', gw: 'fd00::2', oif });
  assert.ok((await nl.routeList({ family: AF.INET6 })).some((r) => r.dst === 'fd00:1::/64' && r.gw === 'fd00::2'));
});

test('neighbours: permanent ARP entry; vxlan link with an FDB entry (NTF_SELF)', { skip }, async (t) => {
  const { nl, host } = await vethPair(t);
  await nl.neighSet({ ifindex: host.index, ip: '10.1.0.9', mac: '66:11:22:33:44:55' });
  const arp = await nl.neighList({ family: AF.INET, ifindex: host.index });
  assert.ok(arp.some((n) => n.ip === '10.1.0.9' && n.mac === '66:11:22:33:44:55' && n.state === NUD.PERMANENT));
  await nl.neighDel({ ifindex: host.index, ip: '10.1.0.9' });
  assert.ok(!(await nl.neighList({ family: AF.INET })).some((n) => n.ip === '10.1.0.9'));

  await nl.linkAdd({ name: 'tnlvx0', kind: 'vxlan', mtu: 1450, vxlan: { id: 4096, port: 4789, local: '10.1.0.1', learning: false } });
  const vx = await nl.linkByName('tnlvx0');
  assert.deepEqual(vx.vxlan, { id: 4096, port: 4789, local: '10.1.0.1', learning: false, ttl: 0 });
  await nl.neighSet({ family: AF.BRIDGE, ifindex: vx.index, mac: '66:aa:bb:cc:dd:ee', ip: '10.0.0.2', flags: NTF.SELF, state: NUD.PERMANENT });
  const fdb = await nl.neighList({ family: AF.BRIDGE, ifindex: vx.index });
  assert.ok(fdb.some((n) => n.mac === '66:aa:bb:cc:dd:ee' && n.ip === '10.0.0.2'));
  await nl.neighDel({ family: AF.BRIDGE, ifindex: vx.index, mac: '66:aa:bb:cc:dd:ee', ip: '10.0.0.2', flags: NTF.SELF });
  assert.ok(!(await nl.neighList({ family: AF.BRIDGE, ifindex: vx.index })).some((n) => n.mac === '66:aa:bb:cc:dd:ee'));
});

test('events: a route deleted by `ip route del` is reported', { skip }, async (t) => {
  const { nl, host, a } = await vethPair(t);
  await nl.addrAdd({ ifindex: host.index, address: '10.1.0.1/24' });
  const seen: NetlinkEvent[] = [];
  let wake: () => void = () => undefined;
  const sub = nl.subscribe(['ipv4-route', 'link'], (ev) => {
    seen.push(ev);
    wake();
  });
  t.after(() => sub.close());
  const waitFor = async (pred: (e: NetlinkEvent) => boolean, what: string) => {
    const deadline = Date.now() + 5000;
    while (!seen.some(pred)) {
      if (Date.now() > deadline) assert.fail(`no event: ${what}`);
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 200);
      });
    }
  };
  await nl.routeAdd({ dst: '10.20.0.0/24', gw: '10.1.0.2', oif: host.index, protocol: 80 });
  await waitFor((e) => e.kind === 'route' && e.action === 'new' && e.route.dst === '10.20.0.0/24', 'new route');
  ip('-n', a, 'route', 'del', '10.20.0.0/24');
  await waitFor((e) => e.kind === 'route' && e.action === 'del' && e.route.dst === '10.20.0.0/24' && e.route.protocol === 80, 'route deleted by ip');
  ip('-n', a, 'link', 'set', 'tnlh0', 'down');
  await waitFor((e) => e.kind === 'link' && e.link.name === 'tnlh0' && !e.link.up, 'link down');
  sub.close();
  await sub.done;
});

test('batch: 10k routes in one batch, then routeList counts them; per-request errors', { skip }, async (t) => {
  const { nl, host } = await vethPair(t);
  await nl.addrAdd({ ifindex: host.index, address: '10.1.0.1/24' });
  const b = nl.batch();
  for (let i = 0; i < 10000; i++) b.routeAdd({ dst: `10.${100 + (i >> 8)}.${i & 255}.0/24`, gw: '10.1.0.2', oif: host.index, protocol: 80 });
  const res = await b.run();
  assert.deepEqual([res.ok, res.failed], [10000, 0]);
  assert.equal((await nl.routeList({ protocol: 80 })).length, 10000);

  const b2 = nl.batch();
  b2.routeReplace({ dst: '10.200.0.0/24', oif: host.index, protocol: 80 });
  b2.routeAdd({ dst: '10.100.0.0/24', gw: '10.1.0.2', oif: host.index, protocol: 80 }); // exists
  b2.routeDel({ dst: '10.250.0.0/24' }); // missing
  b2.routeDel({ dst: '10.100.1.0/24' });
  const r2 = await b2.run();
  assert.deepEqual(
    r2.errors.map((e) => e?.code),
    [undefined, 'EEXIST', 'ESRCH', undefined],
  );
  assert.equal((await nl.routeList({ protocol: 80 })).length, 10000);
});

test('ipip link (skips when the kernel has no ipip module)', { skip }, async (t) => {
  const a = netns(t);
  const nl = handle(t, a);
  try {
    await nl.linkAdd({ name: 'tnlip0', kind: 'ipip', ipip: { local: '10.0.0.1', remote: '10.0.0.2', ttl: 64 } });
  } catch (err) {
    if (err instanceof NetlinkError && /Unknown device type/.test(err.extAck ?? '')) {
      t.skip(`kernel answered "${err.extAck}" (${err.code}): no ipip support; IPIP encoding is covered by golden bytes`);
      return;
    }
    throw err;
  }
  const l = await nl.linkByName('tnlip0');
  assert.equal(l.kind, 'ipip');
  assert.deepEqual([l.ipip?.local, l.ipip?.remote, l.ipip?.ttl], ['10.0.0.1', '10.0.0.2', 64]);
});

test('sysctl inside a netns does not touch the host', { skip }, async (t) => {
  const { a } = await vethPair(t);
  const hostValue = sysctlGet('net.ipv4.conf.all.forwarding');
  sysctlSet(['net', 'ipv4', 'conf', 'tnlh0', 'proxy_arp'], 1, a);
  sysctlSet('net.ipv4.ip_forward', hostValue === '1' ? 0 : 1, a);
  assert.equal(sysctlGet('net.ipv4.conf.tnlh0.proxy_arp', a), '1');
  assert.equal(sysctlGet('net.ipv4.conf.all.forwarding'), hostValue);
  assert.match(ip('netns', 'exec', a, 'cat', '/proc/sys/net/ipv4/conf/tnlh0/proxy_arp'), /^1/);
});
