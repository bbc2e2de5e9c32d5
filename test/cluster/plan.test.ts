import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { validateResource } from '../../api/validate.js';
import { parseManifest } from '../../ctl/manifest.js';
import {
  ClusterError,
  allNamespaces,
  birdConfig,
  birdProtocolName,
  clusterManifests,
  cniNetconf,
  defaultOptions,
  emptyState,
  makePlan,
  nodeEnv,
  nodeManifests,
  parseState,
  sameShape,
  serializeState,
  tabbyctlConfig,
} from '../../cluster/plan.js';
import { formatPingMatrix, parseIpamBlocks, parsePingRtt } from '../../cluster/report.js';
import { binAvailable } from '../../cluster/daemons.js';
import { Progress } from '../../cluster/state.js';

test('demo defaults: 3 nodes × 2 pods on one subnet, tdm- prefix, /run/tabby-demo', () => {
  const o = defaultOptions();
  assert.equal(o.prefix, 'tdm-');
  assert.equal(o.stateDir, '/run/tabby-demo');
  const plan = makePlan(o);
  assert.deepEqual(plan.nodes.map((n) => [n.name, n.netns, n.ip, n.subnet]), [
    ['node-1', 'tdm-node-1', '172.31.254.11', 'a'],
    ['node-2', 'tdm-node-2', '172.31.254.12', 'a'],
    ['node-3', 'tdm-node-3', '172.31.254.13', 'a'],
  ]);
  assert.equal(plan.etcdEndpoint, 'http://172.31.254.2:23890');
  assert.equal(plan.hostLink, 'tdm-host');
  assert.deepEqual(plan.nodes[1]?.pods.map((p) => p.netns), ['tdm-pod-node-2-1', 'tdm-pod-node-2-2']);
  const ns = allNamespaces(plan);
  assert.equal(ns.length, 6 + 3 + 2);
  assert.ok(ns.every((n) => n.startsWith('tdm-')));
  assert.equal(ns.at(-1), 'tdm-fabric', 'fabric removed last');
  // Every interface name fits IFNAMSIZ.
  for (const l of [plan.hostLink, ...plan.nodes.map((n) => n.fabricLink)]) assert.ok(l.length <= 15, l);
});

test('vxlan/ipip default to nodes on two subnets; even nodes on subnet B behind the ToR', () => {
  const plan = makePlan(defaultOptions({ prefix: 'te2-', encap: 'vxlan', subnetA: '172.31.252', subnetB: '172.31.253', stateDir: '/tmp/x' }));
  assert.equal(plan.options.crossSubnet, true);
  assert.deepEqual(plan.nodes.map((n) => `${n.ip} via ${n.gateway}`), ['172.31.252.11 via 172.31.252.1', '172.31.253.12 via 172.31.253.1', '172.31.252.13 via 172.31.252.1']);
  assert.equal(defaultOptions({ encap: 'vxlan', crossSubnet: false }).crossSubnet, false);
  assert.equal(defaultOptions().crossSubnet, false);
});

test('options are validated with a reason', () => {
  assert.throws(() => defaultOptions({ nodes: 0 }), /--nodes 0/);
  assert.throws(() => defaultOptions({ prefix: 'Bad_' }), ClusterError);
  assert.throws(() => defaultOptions({ encap: 'gre' as never }), /--encap gre/);
  assert.equal(defaultOptions({ datastore: 'kubernetes', kubeconfig: '/k' }).kubeconfig, '/k');
  assert.throws(() => defaultOptions({ datastore: 'kubernetes', kubeconfig: '' }), /empty path/);
  assert.equal(defaultOptions({ prefix: 'te2-' }).stateDir, '/run/tabby-cluster-te2');
});

test('BIRD ToR config: one passive session per node, source address = the BGPPeer peerIP (also for subnet B), import all / export none', () => {
  const plan = makePlan(defaultOptions({ encap: 'vxlan' }));
  const conf = birdConfig(plan);
  assert.match(conf, /router id 172\.31\.254\.1;/);
  assert.match(conf, /protocol direct \{ ipv4; interface "eth\*"; \}/);
  assert.match(conf, /ipv4 \{ import all; export none; \};/);
  for (const n of plan.nodes) {
    assert.ok(conf.includes(`protocol bgp ${birdProtocolName(n)} from tabby_node { neighbor ${n.ip} as 64512; source address 172.31.254.1; }`), n.name);
  }
  assert.doesNotMatch(conf, /multihop/, 'iBGP needs no multihop');
  const ebgp = birdConfig(makePlan(defaultOptions({ torAs: 65001 })));
  assert.match(ebgp, /local as 65001;/);
  assert.match(ebgp, /neighbor 172\.31\.254\.11 as 64512; source address 172\.31\.254\.1; multihop 2; \}/);
  assert.equal(birdProtocolName(plan.nodes[0]!), 'tabby_node_1');
});

test('manifests are valid projectcalico.org/v3 resources (pool with the encap, ToR peer, nodes)', () => {
  for (const [encap, vx, ip] of [['none', 'Never', 'Never'], ['vxlan', 'CrossSubnet', 'Never'], ['ipip', 'Never', 'CrossSubnet']] as const) {
    const plan = makePlan(defaultOptions({ encap }));
    const docs = parseManifest(clusterManifests(plan));
    assert.equal(docs.length, 2);
    const [pool, peer] = docs.map((d) => validateResource(d.resource)) as unknown as [Record<string, Record<string, unknown>>, Record<string, Record<string, unknown>>];
    assert.equal(pool.kind, 'IPPool');
    assert.equal(pool.spec?.cidr, '10.244.0.0/16');
    assert.equal(pool.spec?.vxlanMode, vx);
    assert.equal(pool.spec?.ipipMode, ip);
    assert.equal(peer.kind, 'BGPPeer');
    assert.equal(peer.spec?.peerIP, '172.31.254.1');
    assert.equal(peer.spec?.node, undefined, 'global peer');
  }
  const nodes = parseManifest(nodeManifests(makePlan(defaultOptions())));
  assert.deepEqual(nodes.map((d) => validateResource(d.resource).metadata.name), ['node-1', 'node-2', 'node-3']);
});

test('tabby-node env and CNI netconf point at the cluster etcd and per-node dirs', () => {
  const plan = makePlan(defaultOptions());
  const n = plan.nodes[2]!;
  const env = nodeEnv(plan, n);
  assert.equal(env.NODENAME, 'node-3');
  assert.equal(env.IP, '172.31.254.13/24');
  assert.equal(env.ETCD_ENDPOINTS, plan.etcdEndpoint);
  assert.equal(env.TABBY_RUN_DIR, '/run/tabby-demo/node-3/run');
  assert.equal(env.TABBY_LIB_DIR, '/run/tabby-demo/node-3/lib');
  assert.equal(env.CALICO_IPV4POOL_VXLAN, 'Never');
  const conf = cniNetconf(plan, n);
  assert.equal(conf.type, 'tabby');
  assert.equal(conf.etcd_endpoints, plan.etcdEndpoint);
  assert.deepEqual(conf.ipam, { type: 'tabby-ipam', run_dir: n.runDir, assign_ipv4: 'true', assign_ipv6: 'false' });
  assert.match(tabbyctlConfig(plan), /etcdEndpoints: http:\/\/172\.31\.254\.2:23890/);
});

test('--datastore kubernetes: without --kubeconfig the harness runs the API test server on the fabric address; every component uses one kubeconfig', () => {
  const own = makePlan(defaultOptions({ datastore: 'kubernetes' }));
  assert.equal(own.ownApiServer, true);
  assert.equal(own.apiEndpoint, 'http://172.31.254.2:23891');
  assert.equal(own.kubeconfig, '/run/tabby-demo/kube/kubeconfig');
  const n = own.nodes[0]!;
  assert.equal(nodeEnv(own, n).KUBECONFIG, own.kubeconfig);
  assert.equal(nodeEnv(own, n).DATASTORE_TYPE, 'kubernetes');
  assert.equal(nodeEnv(own, n).ETCD_ENDPOINTS, undefined);
  assert.deepEqual(cniNetconf(own, n).kubernetes, { node_name: 'node-1', kubeconfig: own.kubeconfig });
  assert.equal(cniNetconf(own, n).etcd_endpoints, undefined);
  assert.match(tabbyctlConfig(own), /datastoreType: kubernetes\n {2}kubeconfig: \/run\/tabby-demo\/kube\/kubeconfig/);
  const given = makePlan(defaultOptions({ datastore: 'kubernetes', kubeconfig: '/etc/k' }));
  assert.equal(given.ownApiServer, false);
  assert.equal(nodeEnv(given, n).KUBECONFIG, '/etc/k');
  assert.equal(makePlan(defaultOptions()).ownApiServer, false);
  assert.deepEqual(cniNetconf(makePlan(defaultOptions()), n).kubernetes, { node_name: 'node-1' });
});

test('state file round-trips; garbage and foreign files are refused with a reason', () => {
  const o = defaultOptions();
  const s = emptyState(o, new Date('2026-01-01T00:00:00Z'));
  s.netns.push('tdm-fabric');
  s.procs.push({ role: 'etcd', pid: 42, netns: 'tdm-fabric', match: '/run/tabby-demo/etcd/data', log: '/x' });
  assert.deepEqual(parseState(serializeState(s)), s);
  assert.throws(() => parseState('{'), /not JSON/);
  assert.throws(() => parseState('{"version":2}'), /not a tabby cluster state file/);
  assert.equal(sameShape(o, defaultOptions({ stateDir: '/elsewhere' })), true);
  assert.equal(sameShape(o, defaultOptions({ nodes: 4 })), false);
});

test('ping matrix: ✔ with latency, ✘ without reply, summary line', () => {
  const plan = makePlan(defaultOptions({ nodes: 2, podsPerNode: 1 }));
  const pods = plan.nodes.flatMap((n) => n.pods).map((pod, i) => ({ pod, ip: `10.244.0.${i + 1}` }));
  const text = formatPingMatrix(pods, [
    [{ ok: true }, { ok: true, ms: 0.123 }],
    [{ ok: false }, { ok: true }],
  ]);
  const lines = text.split('\n');
  assert.match(lines[1] ?? '', /^pod-1-1 10\.244\.0\.1\s+·\s+✔ 0\.12$/);
  assert.match(lines[2] ?? '', /^pod-2-1 10\.244\.0\.2\s+✘\s+·$/);
  assert.equal(lines[3], '1/2 pod pairs answered (latency in ms)');
  assert.match(formatPingMatrix(pods, [[{ ok: true }, { ok: true }], [{ ok: true }, { ok: true }]]), /2\/2 pod pairs answered — all ✔/);
  assert.equal(parsePingRtt('64 bytes from 10.0.0.1: icmp_seq=1 ttl=63 time=0.071 ms'), 0.071);
  assert.equal(parsePingRtt('1 packets transmitted, 0 received'), undefined);
});

test('binAvailable tells a landed executable from the stub bundle of a branch not merged yet', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tcl-bin-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'dist/bin'), { recursive: true });
  await writeFile(join(dir, 'dist/bin/tabby-node.mjs'), 'function notImplemented(p, w) {}\nnotImplemented("tabby-node", "the per-node agent comes with the tabby-node issue");\n');
  await writeFile(join(dir, 'dist/bin/tabby.mjs'), 'await runCni(tabbyHandlers({}));\n');
  assert.match(binAvailable(dir, 'tabby-node').why ?? '', /tabby-node not available yet/);
  assert.deepEqual(binAvailable(dir, 'tabby'), { ok: true });
  assert.match(binAvailable(dir, 'tabby-ipam').why ?? '', /missing \(run `npm run build`\)/);
  // tabby-node's bundle is one CommonJS file (scripts/build.mjs).
  await rm(join(dir, 'dist/bin/tabby-node.mjs'));
  await writeFile(join(dir, 'dist/bin/tabby-node.cjs'), 'void main(process.argv.slice(2));\n');
  assert.deepEqual(binAvailable(dir, 'tabby-node'), { ok: true });
});

test('progress lines name the step and its duration; a failing step is marked', async () => {
  const lines: string[] = [];
  const p = new Progress({ out: (l) => lines.push(l), err: (l) => lines.push(l) }, 3);
  assert.equal(await p.step('first', async () => 7, (v) => `got ${v}`), 7);
  p.skip('second', 'not yet');
  await assert.rejects(p.step('third', async () => Promise.reject(new Error('boom'))), /boom/);
  assert.match(lines[0] ?? '', /^\[ 1\/3\] first\s+ok\s+\d+ ms {2}got 7$/);
  assert.match(lines[1] ?? '', /^\[ 2\/3\] second\s+skipped: not yet$/);
  assert.match(lines[2] ?? '', /^\[ 3\/3\] third\s+FAILED after \d+ ms$/);
});

test('block CIDRs are read from ipam show --show-blocks', () => {
  const text = [
    '| IP Pool  | 10.244.0.0/16     |     65536 | 6 (0%)     | 65530 (100%) |',
    '| Block    | 10.244.195.0/26   |        64 | 2 (3%)     | 62 (97%)     |',
    '| Block    | 10.244.94.192/26  |        64 | 2 (3%)     | 62 (97%)     |',
  ].join('\n');
  assert.deepEqual(parseIpamBlocks(text), ['10.244.195.0/26', '10.244.94.192/26']);
});
