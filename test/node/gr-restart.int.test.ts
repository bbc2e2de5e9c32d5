/**
 * tabby-node as the restarting speaker of graceful restart (RFC 4724), BIRD 2 as the helper, on the
 * Kubernetes datastore (test/node/kdd-bird-lab.ts):
 * 1. first start: no felix routes in the kernel → no R bit (`node status` says "first start");
 *    BIRD gets the node's block and the service CIDR; felix blackholes the block (protocol 80);
 * 2. kill -9 tabby-node → BIRD keeps both routes as stale ("Neighbor graceful restart active": BIRD
 *    2.0.12 marks no single route stale in `show route all`); the kernel keeps felix's routes;
 * 3. while it is down the service CIDR is removed from the BGPConfiguration;
 * 4. restart → the agent finds its kernel routes (restarting: R bit — BIRD shows "Restart recovery"
 *    in the neighbor's capabilities), holds its advertisements until
 *    BIRD's End-of-RIB, then sends its table and End-of-RIB → BIRD's block route is fresh again
 *    and the service CIDR (no longer originated) is swept at our End-of-RIB;
 * 5. a later session (BIRD restarts the protocol) gets an OPEN without the R bit.
 * Also: the BGPPeer's password is an optional secretKeyRef to a missing Secret → the session runs
 * without TCP-MD5 (BIRD has no password).
 *
 * Namespaces tk5-grn-<pid> / tk5-grb-<pid>, veth 10.99.145.0/24, BGP ports 18400 (tabby) / 18401
 * (BIRD), API bridge 18402 inside the node namespace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { firstReason, needCommand, needRoot } from '../lib/skip.js';
import { readStatus } from '../../node/status.js';
import { Ipam } from '../../ipam/ipam.js';
import type { BGPConfiguration, BGPPeer, IPPool } from '../../api/types.js';
import { makeKddBirdLab, sh, until } from './kdd-bird-lab.js';

const NODE_NS = `tk5-grn-${process.pid % 10000}`;
const BIRD_NS = `tk5-grb-${process.pid % 10000}`;
const NODE_IP = '10.99.145.2';
const BIRD_IP = '10.99.145.1';
const TABBY_PORT = 18400;
const BIRD_PORT = 18401;
const NODE = 'tk5-gr-node';
const SERVICE_CIDR = '10.96.0.0/12';

const birdConf = `
log stderr all;
router id ${BIRD_IP};
protocol device { scan time 10; }
protocol bgp tabby {
  local ${BIRD_IP} port ${BIRD_PORT} as 65100;
  neighbor ${NODE_IP} port ${TABBY_PORT} as 64512;
  hold time 9; connect delay time 1; connect retry time 1; error wait time 1, 5;
  graceful restart on; graceful restart time 120;
  ipv4 { import all; export none; };
}
`;

test('tabby-node restarting with graceful restart: BIRD keeps our routes stale over a kill -9, resolves them at our End-of-RIB', { timeout: 240_000 }, async (t) => {
  const skip = firstReason(needRoot(), needCommand('bird', 'bird2'), needCommand('birdc', 'bird2'), needCommand('socat'));
  if (skip) return t.skip(skip);
  const lab = await makeKddBirdLab(t, { nodeNs: NODE_NS, birdNs: BIRD_NS, nodeIp: NODE_IP, birdIp: BIRD_IP, apiPort: 18402, link: 'tk5gr0', prefix: 'tk5-gr' });
  const { k } = lab;
  await k.ds.create<BGPConfiguration>({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPConfiguration',
    metadata: { name: 'default' },
    spec: { asNumber: 64512, listenPort: TABBY_PORT, nodeToNodeMeshEnabled: false, serviceClusterIPs: [{ cidr: SERVICE_CIDR }] },
  });
  await k.ds.create<BGPPeer>({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPPeer',
    metadata: { name: 'tor' },
    spec: { peerIP: `${BIRD_IP}:${BIRD_PORT}`, asNumber: 65100, password: { secretKeyRef: { name: 'no-such-secret', key: 'tor', optional: true } } },
  });
  await k.ds.create<IPPool>({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'pool4' }, spec: { cidr: '10.244.0.0/16', blockSize: 26, ipipMode: 'Never', vxlanMode: 'Never', natOutgoing: false, nodeSelector: 'all()' } });

  const bird = await lab.startBird('tor', birdConf);
  const runDir = join(lab.dir, 'run');
  const env: NodeJS.ProcessEnv = {
    NODENAME: NODE,
    IP: `${NODE_IP}/24`,
    NO_DEFAULT_POOLS: 'true',
    TABBY_RUN_DIR: runDir,
    TABBY_LIB_DIR: join(lab.dir, 'lib'),
    TABBY_CNI_SERVER: 'off',
    TABBY_IPAM_GC: 'off',
    FELIX_HEALTHENABLED: 'false',
    LOG_LEVEL: 'info',
  };
  let node = lab.startNode(env);
  const debug = (): string => {
    let protos = '';
    try {
      protos = `${bird.birdc('show', 'protocols', 'all', 'tabby')}\n${bird.birdc('show', 'route', 'all')}`;
    } catch (err) {
      protos = String(err);
    }
    return `--- tabby-node\n${lab.nodeLog().slice(-6000)}\n--- bird\n${lab.birdLog().slice(-2000)}\n${protos}`;
  };
  const established = (): boolean => /tabby\s+BGP\s+---\s+up\s+\S+\s+Established/.test(bird.birdc('show', 'protocols'));
  /** birdc exits non-zero when the table has no route for the prefix. */
  const birdRoute = (prefix: string): string => {
    try {
      return bird.birdc('show', 'route', 'all', 'for', prefix, 'protocol', 'tabby');
    } catch (err) {
      return String((err as { stdout?: unknown }).stdout ?? err);
    }
  };
  const has = (prefix: string): boolean => birdRoute(prefix).includes(prefix);
  /** The neighbor's graceful-restart capability as BIRD shows it (R bit: "Restart recovery"). */
  const neighborGr = (): string => bird.birdc('show', 'protocols', 'all', 'tabby').split('Neighbor capabilities')[1]?.split('4-octet')[0] ?? '';
  const kernel = (prefix: string): string => sh('ip', ['-n', NODE_NS, 'route', 'show', prefix]);

  // 1. First start; a pod address gives the node a confirmed block.
  await until('Node registered', async () => (await k.ds.list('Node')).items.some((n) => n.metadata.name === NODE), debug);
  const ipam = new Ipam({ datastore: k.ds });
  const pod = await ipam.autoAssign({ num4: 1, handleId: 'k8s-pod-network.tk5-gr', hostname: NODE, attrs: { node: NODE, namespace: 'ns', pod: 'p' } });
  const ip = pod.ipv4[0]!.ip;
  const block = (await ipam.store.listAffinities(NODE)).map((a) => a.spec.cidr)[0]!;
  assert.ok(block, `a block for ${ip}`);
  await until('BIRD Established (optional password Secret missing: no MD5)', established, debug);
  await until(`BIRD has ${block} and ${SERVICE_CIDR}`, () => has(block) && has(SERVICE_CIDR), debug);
  await until('felix blackholes the block (protocol 80)', () => /blackhole.*proto 80/.test(kernel(block)), debug);
  const first = await readStatus(runDir);
  assert.match(first.bgp.gracefulRestart ?? '', /^first start/);
  assert.doesNotMatch(neighborGr(), /Restart recovery/, 'no R bit on a first start');
  assert.match(lab.nodeLog(), /optional/, 'the missing optional Secret is logged');

  // 2. kill -9: BIRD keeps our routes as stale, our kernel keeps felix's.
  const gone = new Promise((r) => node.once('exit', r));
  node.kill('SIGKILL');
  await gone;
  await until('BIRD notices the loss', () => !established(), debug);
  const stale = birdRoute(block);
  assert.match(stale, new RegExp(block.replace(/\./g, '\\.')), 'BIRD keeps the block while we restart');
  assert.match(bird.birdc('show', 'protocols', 'all', 'tabby'), /Neighbor graceful restart active/);
  assert.ok(has(SERVICE_CIDR), 'BIRD keeps the service CIDR too');
  assert.match(kernel(block), /blackhole.*proto 80/, 'the kernel keeps felix routes');

  // 3. While down, the service CIDR stops being advertised.
  const bc = await k.ds.get<BGPConfiguration>('BGPConfiguration', 'default');
  const { serviceClusterIPs: _dropped, ...rest } = bc.spec;
  await k.ds.update<BGPConfiguration>({ ...bc, spec: rest });

  // 4. Restart: R bit, deferral until BIRD's End-of-RIB, our table + End-of-RIB.
  node = lab.startNode(env);
  const restarting = await until('status shows the restarting role', async () => {
    const g = (await readStatus(runDir)).bgp.gracefulRestart;
    return g?.startsWith('restart:') && g;
  }, debug);
  assert.match(restarting, /kernel route\(s\) of protocol 80 kept from the previous run/);
  await until('BIRD Established again', established, debug);
  assert.match(neighborGr(), /Restart recovery/, 'BIRD saw the R bit in our OPEN');
  assert.match(neighborGr(), /AF preserved: ipv4/, 'and the F bit');
  await until('advertisements released at End-of-RIB', () => /graceful restart: advertising after selection deferral/.test(lab.nodeLog()), debug);
  assert.match(lab.nodeLog(), /"why":"end-of-rib"[^\n]*advertising after selection deferral/, 'released by BIRD\'s End-of-RIB, not the bound');
  await until(`BIRD swept ${SERVICE_CIDR} at our End-of-RIB`, () => !has(SERVICE_CIDR), debug);
  assert.ok(has(block), 'the block route is there, refreshed');
  assert.doesNotMatch(bird.birdc('show', 'protocols', 'all', 'tabby'), /Neighbor graceful restart active/, 'BIRD left the helper mode');
  assert.match((await readStatus(runDir)).bgp.gracefulRestart ?? '', /restart done/);
  assert.match(kernel(block), /blackhole.*proto 80/);

  // 5. The restart is over: a new session (BIRD restarts its side) gets an OPEN without the R bit.
  const before = bird.birdc('show', 'protocols', 'tabby').match(/Established/) ? bird.birdc('show', 'protocols', 'tabby') : '';
  bird.birdc('restart', 'tabby');
  await until('BIRD Established once more', () => established() && bird.birdc('show', 'protocols', 'tabby') !== before, debug);
  assert.doesNotMatch(neighborGr(), /Restart recovery/, 'no R bit after the restart is over');
  assert.ok(has(block));
});
