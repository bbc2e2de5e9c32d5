/**
 * tabby-node on the Kubernetes datastore (the API-faithful test server) peering with a real BIRD:
 * - the BGPPeer's TCP-MD5 password comes from a Secret in the agent's namespace: while the Secret
 *   is missing the peer is held back and `node status` says why; once it appears the session comes
 *   up Established with MD5;
 * - BIRD receives the BGPConfiguration serviceClusterIPs prefix carrying the configured community,
 *   a Service with externalTrafficPolicy Local and an endpoint on the node adds its /32 (withdrawn
 *   when the endpoint leaves), and a live BGPConfiguration change (serviceExternalIPs) arrives
 *   without the session restarting.
 *
 * Namespaces `tnm-n-<pid>` (tabby-node, 10.213.0.2) and `tnm-b-<pid>` (BIRD, 10.213.0.1 with the
 * password, 10.213.0.3 without) joined by a
 * veth pair. The test server listens on 127.0.0.1 in the root namespace; the node namespace
 * reaches it through a unix socket bridged by socat (127.0.0.1:18150 inside the namespace).
 * BGP ports: tabby 18100, BIRD 18101 and 18102. A password change re-keys only the session that uses it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { firstReason, needCommand, needRoot } from '../lib/skip.js';
import { readStatus } from '../../node/status.js';
import type { BGPConfiguration, BGPPeer, CalicoNodeStatus } from '../../api/types.js';
import { makeKddBirdLab, sh, until } from './kdd-bird-lab.js';

const NODE_NS = `tnm-n-${process.pid % 100000}`;
const BIRD_NS = `tnm-b-${process.pid % 100000}`;
const NODE_IP = '10.213.0.2';
const BIRD_IP = '10.213.0.1';
const TABBY_PORT = 18100;
const BIRD_PORT = 18101;
/** A second BIRD address for the peer without a password (TCP-MD5 keys are per peer address). */
const BIRD_IP2 = '10.213.0.3';
/** …and its own port (a second BIRD process). */
const BIRD_PORT2 = 18102;
const API_PORT = 18150;
const SECRET_NS = 'calico-system';
const PASSWORD = 'tnm-s3cret';
const PASSWORD2 = 'tnm-n3w-s3cret';

/** One BIRD per peer: BIRD 2.0.12 runs one session per neighbor address and one listening port. */
function birdConf(proto: string, local: string, port: number, password?: string): string {
  return `
log stderr all;
router id ${local};
protocol device { scan time 10; }
protocol bgp ${proto} {
  local ${local} port ${port} as 65100;
  neighbor ${NODE_IP} port ${TABBY_PORT} as 64512;
  ${password === undefined ? '' : `password "${password}";`}
  hold time 9; connect delay time 1; connect retry time 1; error wait time 1, 5;
  ipv4 { import all; export none; };
}
`;
}

test('tabby-node on KDD: MD5 password from a Secret (missing → reason → Established), service CIDR with community at BIRD', async (t) => {
  const skip = firstReason(needRoot(), needCommand('bird', 'bird2'), needCommand('birdc', 'bird2'), needCommand('socat'));
  if (skip) return t.skip(skip);

  const lab = await makeKddBirdLab(t, { nodeNs: NODE_NS, birdNs: BIRD_NS, nodeIp: NODE_IP, birdIp: BIRD_IP, apiPort: API_PORT, link: 'tnm0', prefix: 'tnm-int' });
  const { k, dir } = lab;
  sh('ip', ['-n', BIRD_NS, 'addr', 'add', `${BIRD_IP2}/24`, 'dev', 'tnm0']);

  // Cluster configuration: the peer needs the Secret, which does not exist yet.
  await k.ds.create<BGPConfiguration>({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPConfiguration',
    metadata: { name: 'default' },
    spec: {
      asNumber: 64512,
      listenPort: TABBY_PORT,
      nodeToNodeMeshEnabled: false,
      serviceClusterIPs: [{ cidr: '10.96.0.0/12' }],
      communities: [{ name: 'svc', value: '65000:300' }],
      prefixAdvertisements: [{ cidr: '10.96.0.0/12', communities: ['svc', '65000:1:2'] }],
    },
  });
  await k.ds.create<BGPPeer>({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPPeer',
    metadata: { name: 'tor' },
    spec: { peerIP: `${BIRD_IP}:${BIRD_PORT}`, asNumber: 65100, password: { secretKeyRef: { name: 'bgp-secrets', key: 'tor' } } },
  });
  await k.ds.create<BGPPeer>({ apiVersion: 'projectcalico.org/v3', kind: 'BGPPeer', metadata: { name: 'tor-plain' }, spec: { peerIP: `${BIRD_IP2}:${BIRD_PORT2}`, asNumber: 65100 } });
  await k.ds.create<CalicoNodeStatus>({ apiVersion: 'projectcalico.org/v3', kind: 'CalicoNodeStatus', metadata: { name: 'tnm-status' }, spec: { node: 'tnm-node-1', classes: ['Agent', 'BGP', 'Routes'], updatePeriodSeconds: 1 } });

  // BIRD.
  const { conf, birdc } = await lab.startBird('tor', birdConf('tabby', BIRD_IP, BIRD_PORT, PASSWORD));
  const plainBird = await lab.startBird('plain', birdConf('plain', BIRD_IP2, BIRD_PORT2));

  // tabby-node.
  const runDir = join(dir, 'run');
  lab.startNode({
    NODENAME: 'tnm-node-1',
    IP: `${NODE_IP}/24`,
    NO_DEFAULT_POOLS: 'true',
    TABBY_RUN_DIR: runDir,
    TABBY_LIB_DIR: join(dir, 'lib'),
    FELIX_HEALTHENABLED: 'false',
    NAMESPACE: SECRET_NS,
    TABBY_SECRET_REFRESH_SECONDS: '1',
    LOG_LEVEL: 'info',
  });
  const protocols = (): string => {
    try {
      return `${birdc('show', 'protocols', 'all')}\n${plainBird.birdc('show', 'protocols', 'all')}`;
    } catch (err) {
      return String(err);
    }
  };
  const debug = (): string => `--- tabby-node\n${lab.nodeLog().slice(-6000)}\n--- bird\n${lab.birdLog().slice(-2000)}\n${protocols()}`;

  // 1. Missing Secret: the peer is held back and the status says why.
  const held = await until(
    'held-back peer in status',
    async () => (await readStatus(runDir)).bgp.peers.find((p) => p.address === BIRD_IP && p.info.includes('not found')),
    debug,
  );
  assert.equal(held.state, 'Idle');
  assert.equal(held.info, `Idle password unavailable: Secret ${SECRET_NS}/bgp-secrets not found`);

  // 2. The Secret appears: Established with MD5 (BIRD insists on the password).
  k.srv.setSecret(SECRET_NS, 'bgp-secrets', { tor: PASSWORD });
  const established = (proto: string) => new RegExp(`${proto}\\s+BGP\\s+---\\s+up\\s+\\S+\\s+Established`);
  await until('BIRD Established', () => established('tabby').test(birdc('show', 'protocols')) && established('plain').test(plainBird.birdc('show', 'protocols')), debug);
  const peerOf = async (addr: string) => (await readStatus(runDir)).bgp.peers.find((p) => p.address === addr);
  const peer = await peerOf(BIRD_IP);
  assert.equal(peer?.state, 'Established');
  const since = peer?.since;
  const plainSince = (await peerOf(BIRD_IP2))?.since;

  // 3. BIRD holds the service CIDR with the configured communities.
  const route = await until('10.96.0.0/12 at BIRD', () => {
    const out = birdc('show', 'route', 'all', 'for', '10.96.0.0/12');
    return out.includes('10.96.0.0/12') && out;
  }, debug);
  assert.match(route, /BGP\.community: \(65000,300\)/);
  assert.match(route, /BGP\.large_community: \(65000, 1, 2\)/);
  assert.match(route, new RegExp(`via ${NODE_IP.replace(/\./g, '\\.')}`));

  // 3b. A Service with externalTrafficPolicy Local and an endpoint on this node: its cluster IP /32.
  k.srv.setCoreObject('services', { metadata: { namespace: 'web', name: 'front' }, spec: { type: 'ClusterIP', clusterIP: '10.96.0.10', externalTrafficPolicy: 'Local' } });
  k.srv.setCoreObject('endpoints', { metadata: { namespace: 'web', name: 'front' }, subsets: [{ addresses: [{ ip: '10.244.7.5', nodeName: 'tnm-node-1' }] }] });
  const host = await until('10.96.0.10/32 at BIRD', () => {
    const out = birdc('show', 'route', 'all', 'for', '10.96.0.10/32');
    return out.includes('10.96.0.10/32') && out;
  }, debug);
  assert.match(host, /BGP\.community: \(65000,300\)/);
  k.srv.deleteCoreObject('endpoints', 'web', 'front');
  await until('10.96.0.10/32 withdrawn', () => !birdc('show', 'route', 'for', '10.96.0.10/32').includes('10.96.0.10/32'), debug);

  // 4. Live BGPConfiguration change: a new service range arrives, the session stays up.
  const bc = await k.ds.get<BGPConfiguration>('BGPConfiguration', 'default');
  await k.ds.update<BGPConfiguration>({ ...bc, spec: { ...bc.spec, serviceExternalIPs: [{ cidr: '192.0.2.0/24' }] } });
  const ext = await until('192.0.2.0/24 at BIRD', () => {
    const out = birdc('show', 'route', 'all', 'for', '192.0.2.0/24');
    return out.includes('192.0.2.0/24') && out;
  }, debug);
  assert.doesNotMatch(ext, /community/, 'the community is only for prefixes inside 10.96.0.0/12');
  const after = await peerOf(BIRD_IP);
  assert.equal(after?.state, 'Established');
  assert.equal(after?.since, since, 'session not restarted by the BGPConfiguration change');

  // 5. CalicoNodeStatus naming this node: written with this node's view.
  const cns = await until('CalicoNodeStatus status', async () => {
    const o = await k.ds.get<CalicoNodeStatus>('CalicoNodeStatus', 'tnm-status');
    return o.status?.bgp?.numberEstablishedV4 === 2 && o;
  }, debug);
  assert.equal(cns.status?.agent?.birdV4?.state, 'Ready');
  assert.equal(cns.status?.agent?.birdV4?.routerID, NODE_IP);
  assert.deepEqual(cns.status?.bgp?.peersV4?.map((p) => [p.peerIP, p.type, p.state]).sort(), [[BIRD_IP, 'GlobalPeer', 'Established'], [BIRD_IP2, 'GlobalPeer', 'Established']]);
  assert.ok(cns.status?.routes?.routesV4?.some((r) => r.destination === '10.96.0.0/12' && r.learnedFrom?.sourceType === 'Static'));
  assert.deepEqual(cns.spec, { node: 'tnm-node-1', classes: ['Agent', 'BGP', 'Routes'], updatePeriodSeconds: 1 });

  // 6. The password changes (BIRD first, then the Secret): only that session is re-keyed.
  await writeFile(conf, birdConf('tabby', BIRD_IP, BIRD_PORT, PASSWORD2));
  birdc('configure');
  k.srv.setSecret(SECRET_NS, 'bgp-secrets', { tor: PASSWORD2 });
  await until('re-keyed session Established', async () => {
    const p = await peerOf(BIRD_IP);
    return p?.state === 'Established' && p.since !== since && established('tabby').test(birdc('show', 'protocols'));
  }, debug);
  assert.equal((await peerOf(BIRD_IP2))?.since, plainSince, 'the session without a password was not touched');
  assert.equal((await peerOf(BIRD_IP2))?.state, 'Established');
  assert.ok(!lab.nodeLog().includes(PASSWORD) && !lab.nodeLog().includes(PASSWORD2), 'passwords never reach the log');
});
