import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NatManager, natRuleset, natScript, natSpecs } from '../../felix/nat.js';
import { computeMtus, hostMtu, writeMtuFile } from '../../felix/mtu.js';
import { nodeSysctls, workloadSysctls } from '../../felix/sysctl.js';

test('nat ruleset: masquerade from natOutgoing pools to outside all pools', () => {
  const [v4, v6] = natSpecs([
    { cidr: '10.244.0.0/16', natOutgoing: true },
    { cidr: '10.96.0.0/16', natOutgoing: false },
    { cidr: 'fd10::/64', natOutgoing: false },
  ]);
  assert.equal(
    natRuleset(v4 as never),
    [
      'table ip tabby-nat {',
      '  set masq-pools {',
      '    type ipv4_addr',
      '    flags interval',
      '    elements = { 10.244.0.0/16 }',
      '  }',
      '  set all-pools {',
      '    type ipv4_addr',
      '    flags interval',
      '    elements = { 10.244.0.0/16, 10.96.0.0/16 }',
      '  }',
      '  chain postrouting {',
      '    type nat hook postrouting priority srcnat; policy accept;',
      '    ip saddr @masq-pools ip daddr != @all-pools masquerade',
      '  }',
      '}',
      '',
    ].join('\n'),
  );
  assert.equal(natRuleset(v6 as never), '');
  assert.equal(natScript(v6 as never), 'table ip6 tabby-nat {}\ndelete table ip6 tabby-nat\n');
  assert.match(natScript(v4 as never), /^table ip tabby-nat \{\}\ndelete table ip tabby-nat\ntable ip tabby-nat \{/);
});

test('nat manager: idempotent (no rerun without change), force reapplies, remove deletes both tables', async () => {
  const runs: string[] = [];
  const m = new NatManager(async (s) => void runs.push(s), 'tfx-nat');
  await m.sync([{ cidr: '10.244.0.0/16', natOutgoing: true }]);
  // One nft run: the v4 table + (first time) the v6 removal, in one script.
  assert.equal(runs.length, 1);
  assert.match(runs[0]!, /^table ip tfx-nat \{\}\ndelete table ip tfx-nat\ntable ip tfx-nat \{[^]*masquerade[^]*\}\ntable ip6 tfx-nat \{\}\ndelete table ip6 tfx-nat\n$/);
  await m.sync([{ cidr: '10.244.0.0/16', natOutgoing: true }]);
  assert.equal(runs.length, 1);
  await m.sync([{ cidr: '10.244.0.0/16', natOutgoing: false }]);
  assert.equal(runs.length, 2);
  assert.equal(runs[1], 'table ip tfx-nat {}\ndelete table ip tfx-nat\n');
  await m.sync([{ cidr: '10.244.0.0/16', natOutgoing: false }], true);
  assert.equal(runs.length, 3);
  assert.equal(runs[2], 'table ip tfx-nat {}\ndelete table ip tfx-nat\ntable ip6 tfx-nat {}\ndelete table ip6 tfx-nat\n');
  await m.remove();
  assert.equal(runs.length, 4);
  assert.equal(runs[3], runs[2]);
});

test('mtu: host MTU from matching up interfaces, encap overheads, overrides', () => {
  assert.equal(hostMtu([{ name: 'eth0', up: true, mtu: 1500 }, { name: 'ens3', up: true, mtu: 9000 }, { name: 'lo', up: true, mtu: 65536 }, { name: 'eth1', up: false, mtu: 1400 }]), 1500);
  assert.equal(hostMtu([{ name: 'lo', up: true, mtu: 65536 }]), 1460);
  assert.equal(hostMtu([{ name: 'tfxup', up: true, mtu: 1400 }], /^tfx/), 1400);
  assert.deepEqual(computeMtus({ hostMtu: 1500, ipip: false, vxlan: false }), { ipip: 1480, vxlan: 1450, vxlan6: 1430, pod: 1500 });
  assert.equal(computeMtus({ hostMtu: 1500, ipip: true, vxlan: false }).pod, 1480);
  assert.equal(computeMtus({ hostMtu: 1500, ipip: true, vxlan: true }).pod, 1450);
  assert.equal(computeMtus({ hostMtu: 1500, ipip: false, vxlan: true, vxlanMTU: 1400 }).pod, 1400);
  assert.equal(computeMtus({ hostMtu: 1500, ipip: false, vxlan: true, vxlan6: true }).pod, 1430, 'IPv6 VXLAN: host − 70');
  assert.equal(computeMtus({ hostMtu: 1500, ipip: false, vxlan: false, vxlan6: true, vxlanMTUV6: 1420 }).pod, 1420);
});

test('mtu file is written atomically (no temp file left)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tfx-mtu-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const lib = join(dir, 'lib');
  await writeMtuFile(lib, 1450);
  await writeMtuFile(lib, 1440);
  assert.equal(await readFile(join(lib, 'mtu'), 'utf8'), '1440\n');
  assert.deepEqual(await readdir(lib), ['mtu']);
});

test('sysctls: node forwarding, proxy-ARP on workload interfaces', () => {
  assert.deepEqual(nodeSysctls(false), [['net.ipv4.ip_forward', '1']]);
  const w = workloadSysctls('cali.x', true);
  assert.ok(w.some(([k, v]) => Array.isArray(k) && k.join('/') === 'net/ipv4/conf/cali.x/proxy_arp' && v === '1'));
  assert.ok(w.some(([k, v]) => Array.isArray(k) && k.join('/') === 'net/ipv6/conf/cali.x/proxy_ndp' && v === '1'));
});
