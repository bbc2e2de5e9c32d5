import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { workloadEndpointName } from '../../api/names.js';
import { silentLog } from '../../cni/plugin/filelog.js';
import { MemoryDatastore } from '../../datastore/memory.js';
import { checkIfname, parseMtu, pluginConfig, resolveMtu } from '../../cni/plugin/config.js';
import { type ObservedPod, type PodDataplane, type SetupParams, checkPod, hostSysctls } from '../../cni/plugin/dataplane.js';
import { type Delegate, tabbyHandlers } from '../../cni/plugin/handlers.js';
import { attachmentAlias, hostVethName, parseAttachmentAlias, randomMac } from '../../cni/plugin/names.js';
import { buildResult, normalizeResult, parseIpamResult, renderResult } from '../../cni/plugin/result.js';
import { type WorkloadEndpoint, buildWep, wepName } from '../../cni/plugin/wep.js';
import { CniCode, CniError } from '../../cni/protocol/errors.js';
import { parseNetConf } from '../../cni/protocol/env.js';
import { runCni } from '../../cni/protocol/run.js';

const conf = (extra: Record<string, unknown> = {}) =>
  parseNetConf(JSON.stringify({ cniVersion: '1.0.0', name: 'k8s-pod-network', type: 'tabby', ...extra }));

test('host veth name: cali + 11 hex of sha1(namespace.pod), container id fallback (sha1sum values)', () => {
  assert.equal(hostVethName({ K8S_POD_NAMESPACE: 'kube-system', K8S_POD_NAME: 'coredns-abc' }, 'x'), 'cali3d5d6ab04b5');
  assert.equal(hostVethName({}, 'ctr1'), 'cali4b47ec00a28');
  assert.equal(hostVethName({ K8S_POD_NAME: 'only-pod' }, 'ctr1'), 'cali4b47ec00a28');
  assert.equal(hostVethName({}, 'ctr1').length, 15);
});

test('attachment alias round trip; random MAC is unicast and locally administered', () => {
  assert.deepEqual(parseAttachmentAlias(attachmentAlias('c:1', 'eth0')), { containerID: 'c:1', ifname: 'eth0' });
  assert.equal(parseAttachmentAlias('something else'), undefined);
  assert.equal(parseAttachmentAlias(undefined), undefined);
  assert.equal(randomMac(Uint8Array.from([0xff, 1, 2, 3, 4, 5])), 'fe:01:02:03:04:05');
});

test('config: defaults, Calico field names, lib_dir from env, invalid values are error 7', () => {
  const c = pluginConfig(conf(), {}, 'node-a');
  assert.equal(c.ipamType, 'tabby-ipam');
  assert.equal(c.libDir, '/var/lib/tabby');
  assert.equal(c.logFile, '/var/log/tabby/cni.log');
  assert.equal(c.nodename, 'node-a');
  assert.equal(c.mtu, 0);
  assert.equal(c.datastoreConfigured, false);
  assert.equal(pluginConfig(conf(), { TABBY_LIB_DIR: '/x' }, 'n').libDir, '/x');
  const d = pluginConfig(conf({ mtu: '1440', nodename: 'n1', ipam: { type: 'host-local' }, datastore_type: 'etcdv3', lib_dir: '/l', log_file_path: '/f' }), { TABBY_LIB_DIR: '/x' }, 'h');
  assert.deepEqual([d.mtu, d.nodename, d.ipamType, d.datastoreConfigured, d.libDir, d.logFile], [1440, 'n1', 'host-local', true, '/l', '/f']);
  for (const bad of [{ mtu: 'big' }, { mtu: 20 }, { ipam: 'x' }, { lib_dir: 5 }, { 'cni.dev/valid-attachments': [{ containerID: 1 }] }]) {
    assert.throws(() => pluginConfig(conf(bad), {}, 'h'), (e: unknown) => e instanceof CniError && e.cniCode === CniCode.InvalidNetworkConfig);
  }
  const g = pluginConfig(conf({ 'cni.dev/valid-attachments': [{ containerID: 'a', ifname: 'eth0' }] }), {}, 'h');
  assert.deepEqual(g.validAttachments, [{ containerID: 'a', ifname: 'eth0' }]);
});

test('MTU: config wins, then the MTU file, then 1500', () => {
  assert.equal(resolveMtu(1400, '1450\n'), 1400);
  assert.equal(resolveMtu(0, '1450\n'), 1450);
  assert.equal(resolveMtu(0, 'garbage'), 1500);
  assert.equal(resolveMtu(0, undefined), 1500);
  assert.equal(parseMtu(undefined), 0);
});

test('CNI_IFNAME: longer than 15 or invalid characters is error 4', () => {
  checkIfname('eth0');
  checkIfname('a23456789012345');
  for (const bad of ['a234567890123456', '', 'a/b', 'a b', '..']) {
    assert.throws(() => checkIfname(bad), (e: unknown) => e instanceof CniError && e.cniCode === CniCode.InvalidEnv && /CNI_IFNAME/.test(e.message));
  }
});

test('IPAM result parsing ignores prefix length/gateway and accepts 0.3.x and 1.0 shapes', () => {
  const old = parseIpamResult({ cniVersion: '0.3.1', ips: [{ version: '4', address: '10.0.0.5/24', gateway: '10.0.0.1' }, { version: '6', address: 'fd00::5/64' }] }, 'x');
  assert.deepEqual(old.ips, [{ family: 4, ip: '10.0.0.5' }, { family: 6, ip: 'fd00::5' }]);
  assert.throws(() => parseIpamResult({ ips: [] }, 'x'), (e: unknown) => e instanceof CniError && e.cniCode === 110);
  assert.throws(() => parseIpamResult('nope', 'x'), (e: unknown) => e instanceof CniError && e.cniCode === CniCode.DecodeFailure);
});

test('result: built as Calico does and rendered per version (0.3.1 has ip version, 1.1.0 interface mtu)', () => {
  const r = buildResult({ hostIf: 'cali1', ifname: 'eth0', containerMac: '02:00:00:00:00:01', netns: '/ns', mtu: 1450, ips: [{ family: 4, ip: '10.0.0.5' }, { family: 6, ip: 'fd00::5' }] }, undefined);
  const v1 = renderResult(r, '1.1.0');
  assert.deepEqual(v1, {
    cniVersion: '1.1.0',
    interfaces: [{ name: 'cali1', mac: 'ee:ee:ee:ee:ee:ee' }, { name: 'eth0', mac: '02:00:00:00:00:01', sandbox: '/ns', mtu: 1450 }],
    ips: [{ address: '10.0.0.5/32', gateway: '169.254.1.1', interface: 1 }, { address: 'fd00::5/128', gateway: 'fe80::ecee:eeff:feee:eeee', interface: 1 }],
    routes: [{ dst: '0.0.0.0/0', gw: '169.254.1.1' }, { dst: '::/0', gw: 'fe80::ecee:eeff:feee:eeee' }],
    dns: {},
  });
  const v031 = renderResult(r, '0.3.1');
  assert.equal(v031.cniVersion, '0.3.1');
  assert.deepEqual((v031.ips as Array<{ version: string }>).map((x) => x.version), ['4', '6']);
  assert.equal((v031.interfaces as Array<{ mtu?: number }>)[1]?.mtu, undefined);
  // Round trip: an old-version result normalizes back to the version-free form.
  assert.deepEqual(renderResult(normalizeResult(v031), '1.1.0'), { ...v1, interfaces: [{ name: 'cali1', mac: 'ee:ee:ee:ee:ee:ee' }, { name: 'eth0', mac: '02:00:00:00:00:01', sandbox: '/ns' }] });
});

test('error JSON: spec code, msg, details', () => {
  const e = new CniError(CniCode.InvalidEnv, 'CNI_NETNS missing', 'set it');
  assert.deepEqual(e.toJSON('1.0.0'), { cniVersion: '1.0.0', code: 4, msg: 'CNI_NETNS missing', details: 'set it' });
});

test('workload endpoint: Calico name and fields', () => {
  assert.equal(wepName('node-1', 'k8s', 'my-pod', 'eth0'), 'node--1-k8s-my--pod-eth0');
  assert.equal(wepName('node-1', 'k8s', 'my-pod', 'eth0'), workloadEndpointName('node-1', 'my-pod', 'eth0'));
  const w = buildWep({ node: 'n1', args: { K8S_POD_NAMESPACE: 'ns1', K8S_POD_NAME: 'p1' }, containerId: 'c1', ifname: 'eth0', hostIf: 'cali1', mac: 'm', ipNetworks: ['10.0.0.5/32'] });
  assert.equal(w.metadata.name, 'n1-k8s-p1-eth0');
  assert.equal(w.metadata.namespace, 'ns1');
  assert.deepEqual([w.spec.pod, w.spec.node, w.spec.containerID, w.spec.interfaceName, w.spec.ipNetworks], ['p1', 'n1', 'c1', 'cali1', ['10.0.0.5/32']]);
  const c = buildWep({ node: 'n1', args: {}, containerId: 'c1', ifname: 'eth0', hostIf: 'cali1', mac: 'm', ipNetworks: [] });
  assert.equal(c.spec.orchestrator, 'cni');
});

const want: SetupParams = {
  netns: '/ns', ifname: 'eth0', hostIf: 'cali1', containerMac: '02:00:00:00:00:01', mtu: 1500,
  ips: [{ family: 4, ip: '10.0.0.5' }], alias: 'tabby:c1:eth0', allowIpForwarding: false,
};
function healthy(): ObservedPod {
  return {
    host: { mac: 'ee:ee:ee:ee:ee:ee', up: true, alias: 'tabby:c1:eth0', mtu: 1500 },
    hostRoutes: [{ dst: '10.0.0.5', scope: 'link' }],
    hostSysctls: hostSysctls('cali1', false),
    container: { mac: '02:00:00:00:00:01', up: true, mtu: 1500, addrs: ['10.0.0.5/32', 'fe80::1/64'] },
    containerRoutes: [{ dst: '169.254.1.1', scope: 'link' }, { dst: 'default', gateway: '169.254.1.1', scope: 'global' }],
  };
}

test('checkPod: healthy passes; each missing piece is named', () => {
  assert.deepEqual(checkPod(want, healthy()), []);
  const cases: Array<[string, (o: ObservedPod) => void]> = [
    ['host interface cali1 is missing', (o) => delete o.host],
    ['has MAC', (o) => { if (o.host) o.host.mac = '00:11:22:33:44:55'; }],
    ['host route 10.0.0.5', (o) => { o.hostRoutes = []; }],
    ['proxy_arp', (o) => { o.hostSysctls['net/ipv4/conf/cali1/proxy_arp'] = '0'; }],
    ['address 10.0.0.5/32 is missing', (o) => { if (o.container) o.container.addrs = []; }],
    ['MTU 9000', (o) => { if (o.container) o.container.mtu = 9000; }],
    ['default route via 169.254.1.1', (o) => { o.containerRoutes = o.containerRoutes.filter((r) => r.dst !== 'default'); }],
    ['169.254.1.1/32 scope link', (o) => { o.containerRoutes = o.containerRoutes.filter((r) => r.dst !== '169.254.1.1'); }],
  ];
  for (const [needle, mutate] of cases) {
    const o = healthy();
    mutate(o);
    const p = checkPod(want, o);
    assert.ok(p.some((x) => x.includes(needle)), `${needle}: ${p.join('; ')}`);
  }
});

/** A fake dataplane: records setups; `failSetup` makes the next setup throw. */
class FakeDataplane implements PodDataplane {
  links = new Map<string, { alias: string; p: SetupParams }>();
  failSetup = false;
  setup(p: SetupParams): Promise<void> {
    if (this.failSetup) return Promise.reject(new Error('RTNETLINK answers: File exists'));
    this.links.set(p.hostIf, { alias: p.alias, p });
    return Promise.resolve();
  }
  hostLink(name: string) {
    const l = this.links.get(name);
    return Promise.resolve(l ? { name, alias: l.alias } : undefined);
  }
  deleteLink(name: string) {
    this.links.delete(name);
    return Promise.resolve();
  }
  listHostLinks(prefix: string) {
    return Promise.resolve([...this.links].filter(([n]) => n.startsWith(prefix)).map(([name, l]) => ({ name, alias: l.alias })));
  }
  /** What a correct setup leaves behind, derived from the recorded parameters. */
  observe(q: { hostIf: string }): Promise<ObservedPod> {
    const l = this.links.get(q.hostIf);
    if (!l) return Promise.resolve({ hostRoutes: [], hostSysctls: {}, containerRoutes: [] });
    const p = l.p;
    return Promise.resolve({
      host: { mac: 'ee:ee:ee:ee:ee:ee', up: true, alias: p.alias, mtu: p.mtu },
      hostRoutes: p.ips.map((x) => ({ dst: x.ip, scope: 'link' })),
      hostSysctls: hostSysctls(p.hostIf, false),
      container: { mac: p.containerMac, up: true, mtu: p.mtu, addrs: p.ips.map((x) => `${x.ip}/32`) },
      containerRoutes: healthy().containerRoutes,
    });
  }
}

async function harness(t: { after: (fn: () => Promise<void>) => void }) {
  const dir = await mkdtemp(join(tmpdir(), 'tcn-unit-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const dp = new FakeDataplane();
  const calls: string[] = [];
  let next = 5;
  const held = new Map<string, string>();
  const delegate: Delegate = (type, command, _stdin, env) => {
    calls.push(`${type} ${command}`);
    const id = env.CNI_CONTAINERID ?? '';
    if (command === 'ADD') {
      const ip = held.get(id) ?? `10.0.0.${next++}`;
      held.set(id, ip);
      return Promise.resolve({ cniVersion: '1.0.0', ips: [{ address: `${ip}/26` }] });
    }
    if (command === 'DEL') held.delete(id);
    if (command === 'VERSION') return Promise.resolve({ supportedVersions: ['1.0.0'] });
    return Promise.resolve(undefined);
  };
  const ds = new MemoryDatastore();
  const handlers = tabbyHandlers({
    dataplane: () => Promise.resolve(dp),
    delegate,
    openDatastore: () => Promise.resolve({ ...ds, type: ds.type, get: ds.get.bind(ds), list: ds.list.bind(ds), create: ds.create.bind(ds), update: ds.update.bind(ds), delete: ds.delete.bind(ds), watch: ds.watch.bind(ds), close: () => Promise.resolve() }),
    logger: () => silentLog(),
    env: {},
    hostname: 'node-a',
  });
  const invoke = async (command: string, containerId: string, extra: Record<string, unknown> = {}, envExtra: Record<string, string> = {}) => {
    let out = '';
    const code = await runCni(handlers, {
      env: { CNI_COMMAND: command, CNI_CONTAINERID: containerId, CNI_NETNS: dir, CNI_IFNAME: 'eth0', CNI_PATH: '/nowhere', CNI_ARGS: 'K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=' + containerId, ...envExtra },
      stdin: () => Promise.resolve(JSON.stringify({ cniVersion: '1.0.0', name: 'net', type: 'tabby', lib_dir: dir, datastore_type: 'memory', ipam: { type: 'fake' }, ...extra })),
      stdout: (s) => { out += s; },
    });
    return { code, out: out ? (JSON.parse(out) as Record<string, unknown>) : undefined };
  };
  return { dir, dp, calls, held, ds, invoke };
}

test('handlers: ADD plumbs, records the WEP, is idempotent; DEL releases; DEL of unknown succeeds', async (t) => {
  const h = await harness(t);
  const a = await h.invoke('ADD', 'pod1');
  assert.equal(a.code, 0, JSON.stringify(a.out));
  assert.deepEqual((a.out?.ips as Array<{ address: string }>).map((x) => x.address), ['10.0.0.5/32']);
  assert.equal(h.dp.links.size, 1);
  const weps = await h.ds.list('WorkloadEndpoint');
  assert.equal(weps.items.length, 1);
  const again = await h.invoke('ADD', 'pod1');
  assert.deepEqual(again.out, a.out);
  assert.equal(h.calls.filter((c) => c === 'fake ADD').length, 1, 'retried ADD answers from the cache');
  const chk = await h.invoke('CHECK', 'pod1', { prevResult: a.out });
  assert.equal(chk.code, 0, JSON.stringify(chk.out));
  const hostIf = hostVethName({ K8S_POD_NAMESPACE: 'ns1', K8S_POD_NAME: 'pod1' }, 'pod1');
  const rec = h.dp.links.get(hostIf);
  if (rec) rec.p = { ...rec.p, mtu: 9000 };
  const bad = await h.invoke('CHECK', 'pod1', { prevResult: a.out });
  assert.equal(bad.out?.code, 111);
  assert.match(String(bad.out?.details), /MTU 9000/);
  assert.equal((await h.invoke('DEL', 'pod1')).code, 0);
  assert.equal(h.dp.links.size, 0);
  assert.equal(h.held.size, 0);
  assert.equal((await h.ds.list('WorkloadEndpoint')).items.length, 0);
  assert.equal((await h.invoke('DEL', 'never-added')).code, 0);
  assert.equal((await h.invoke('STATUS', 'x', { cniVersion: '1.1.0' })).out?.code, CniCode.PluginNotAvailable, 'node not registered');
});

test('handlers: a dataplane failure releases the IPAM allocation and leaves no link or WEP', async (t) => {
  const h = await harness(t);
  h.dp.failSetup = true;
  const a = await h.invoke('ADD', 'pod1');
  assert.equal(a.code, 1);
  assert.equal(a.out?.code, 112);
  assert.match(String(a.out?.msg), /File exists/);
  assert.deepEqual(h.calls, ['fake ADD', 'fake DEL']);
  assert.equal(h.held.size, 0);
  assert.equal((await h.ds.list('WorkloadEndpoint')).items.length, 0);
});

test('handlers: GC removes attachments not in valid-attachments; DEL leaves another attachment alone', async (t) => {
  const h = await harness(t);
  await h.invoke('ADD', 'keep');
  await h.invoke('ADD', 'gone');
  h.dp.links.set('cali-foreign', { alias: 'not ours', p: want });
  const g = await h.invoke('GC', 'x', { cniVersion: '1.1.0', 'cni.dev/valid-attachments': [{ containerID: 'keep', ifname: 'eth0' }] });
  assert.equal(g.code, 0, JSON.stringify(g.out));
  assert.deepEqual([...h.dp.links.keys()].sort(), ['cali-foreign', hostVethName({ K8S_POD_NAMESPACE: 'ns1', K8S_POD_NAME: 'keep' }, 'keep')].sort());
  assert.ok(!h.calls.includes('fake GC'), 'an IPAM plugin without 1.1.0 is not sent GC');
  const weps = await h.ds.list<WorkloadEndpoint>('WorkloadEndpoint');
  assert.deepEqual(weps.items.map((w) => w.spec.containerID), ['keep'], 'GC removed the WorkloadEndpoint of the gone attachment');
  // Same pod name, a new sandbox: DEL of the old container id keeps the new veth.
  await h.invoke('ADD', 'c-new', {}, { CNI_ARGS: 'K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web' });
  await h.invoke('DEL', 'c-old', {}, { CNI_ARGS: 'K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web' });
  assert.ok(h.dp.links.has(hostVethName({ K8S_POD_NAMESPACE: 'ns1', K8S_POD_NAME: 'web' }, '')));
});

test('handlers: bad input gets the spec codes and touches nothing', async (t) => {
  const h = await harness(t);
  const cases: Array<[number, RegExp, () => ReturnType<typeof h.invoke>]> = [
    [CniCode.InvalidEnv, /CNI_IFNAME/, () => h.invoke('ADD', 'p', {}, { CNI_IFNAME: 'a234567890123456' })],
    [CniCode.InvalidEnv, /does not exist/, () => h.invoke('ADD', 'p', {}, { CNI_NETNS: join(h.dir, 'missing') })],
    [CniCode.InvalidEnv, /CNI_NETNS/, () => h.invoke('ADD', 'p', {}, { CNI_NETNS: '' })],
    [CniCode.InvalidEnv, /CNI_CONTAINERID/, () => h.invoke('ADD', '')],
    [CniCode.IncompatibleVersion, /incompatible CNI version 9.9.9/, () => h.invoke('ADD', 'p', { cniVersion: '9.9.9' })],
    [CniCode.InvalidNetworkConfig, /mtu/, () => h.invoke('ADD', 'p', { mtu: 'x' })],
  ];
  for (const [code, msg, run] of cases) {
    const r = await run();
    assert.equal(r.code, 1);
    assert.equal(r.out?.code, code, JSON.stringify(r.out));
    assert.match(String(r.out?.msg), msg);
  }
  assert.deepEqual(h.calls, []);
  assert.equal(h.dp.links.size, 0);
});

test('runCni: malformed JSON is error 6 and VERSION lists 0.3.0–1.1.0', async () => {
  let out = '';
  const handlers = tabbyHandlers({ dataplane: () => Promise.reject(new Error('unused')), delegate: () => Promise.reject(new Error('unused')), openDatastore: () => Promise.reject(new Error('unused')), logger: () => silentLog(), env: {}, hostname: 'h' });
  const run = runCni;
  assert.equal(await run(handlers, { env: { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c', CNI_NETNS: '/x', CNI_IFNAME: 'eth0', CNI_PATH: '/p' }, stdin: () => Promise.resolve('{not json'), stdout: (s) => { out = s; } }), 1);
  assert.equal((JSON.parse(out) as { code: number }).code, CniCode.DecodeFailure);
  await run(handlers, { env: { CNI_COMMAND: 'VERSION' }, stdin: () => Promise.resolve(''), stdout: (s) => { out = s; } });
  assert.deepEqual((JSON.parse(out) as { supportedVersions: string[] }).supportedVersions, ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']);
});

test('file log: pino line format, level filter, errors serialized, never stdout', async (t) => {
  const { fileLog } = await import('../../cni/plugin/filelog.js');
  const { readFileSync } = await import('node:fs');
  const dir = await mkdtemp(join(tmpdir(), 'tcn-log-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'sub/cni.log');
  const log = fileLog({ name: 'tabby', file, level: 'info' });
  log.debug({ a: 1 }, 'hidden');
  log.info({ containerId: 'c1' }, 'pod network added');
  log.error({ err: new Error('boom') }, 'failed');
  const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines.length, 2);
  assert.equal(lines[0]?.level, 30);
  assert.equal(lines[0]?.name, 'tabby');
  assert.equal(lines[0]?.msg, 'pod network added');
  assert.equal(lines[0]?.containerId, 'c1');
  assert.equal(typeof lines[0]?.time, 'number');
  assert.equal(lines[1]?.level, 50);
  assert.equal((lines[1]?.err as { message: string }).message, 'boom');
});

test('result: appended to an earlier plugin\'s prevResult with shifted interface indices', async () => {
  const { mergeWithPrev } = await import('../../cni/plugin/result.js');
  const ours = buildResult({ hostIf: 'cali1', ifname: 'eth1', containerMac: '02:00:00:00:00:01', netns: '/ns', mtu: 1500, ips: [{ family: 4, ip: '10.0.0.5' }] }, undefined);
  const prev = normalizeResult({ cniVersion: '1.0.0', interfaces: [{ name: 'lo', sandbox: '/ns' }], ips: [{ address: '127.0.0.1/8', interface: 0 }], dns: { nameservers: ['10.0.0.10'] } });
  const m = mergeWithPrev(prev, ours);
  assert.deepEqual(m.interfaces?.map((i) => i.name), ['lo', 'cali1', 'eth1']);
  assert.deepEqual(m.ips?.map((i) => [i.address, i.interface]), [['127.0.0.1/8', 0], ['10.0.0.5/32', 2]]);
  assert.deepEqual(m.dns, { nameservers: ['10.0.0.10'] });
  assert.equal(mergeWithPrev(undefined, ours), ours);
});
