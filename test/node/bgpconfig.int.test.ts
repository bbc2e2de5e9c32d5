/**
 * tabby-node on the Kubernetes datastore (the API-faithful test server) peering with a real BIRD:
 * - the BGPPeer's TCP-MD5 password comes from a Secret in the agent's namespace: while the Secret
 *   is missing the peer is held back and `node status` says why; once it appears the session comes
 *   up Established with MD5;
 * - BIRD receives the BGPConfiguration serviceClusterIPs prefix carrying the configured community,
 *   and a live BGPConfiguration change (serviceExternalIPs) arrives without the session restarting.
 *
 * Namespaces `tnm-n-<pid>` (tabby-node, 10.213.0.2) and `tnm-b-<pid>` (BIRD, 10.213.0.1) joined by a
 * veth pair. The test server listens on 127.0.0.1 in the root namespace; the node namespace
 * reaches it through a unix socket bridged by socat (127.0.0.1:18150 inside the namespace).
 * BGP ports: tabby 18100, BIRD 18101.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createConnection, createServer, type Server } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { firstReason, needCommand, needRoot } from '../lib/skip.js';
import { startK8sDatastore } from '../k8s-server/harness.js';
import { writeKubeconfig } from '../k8s-server/server.js';
import { readStatus } from '../../node/status.js';
import type { BGPConfiguration, BGPPeer } from '../../api/types.js';

const NODE_NS = `tnm-n-${process.pid % 100000}`;
const BIRD_NS = `tnm-b-${process.pid % 100000}`;
const NODE_IP = '10.213.0.2';
const BIRD_IP = '10.213.0.1';
const TABBY_PORT = 18100;
const BIRD_PORT = 18101;
const API_PORT = 18150;
const SECRET_NS = 'calico-system';
const PASSWORD = 'tnm-s3cret';
const ROOT = new URL('../../', import.meta.url).pathname;

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function delNs(ns: string): void {
  try {
    sh('ip', ['netns', 'del', ns]);
  } catch {
    /* not there */
  }
}

async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, debug: () => string, tries = 150): Promise<T> {
  let last = '';
  for (let i = 0; i < tries; i++) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = String(err);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`gave up waiting for ${what} ${last}\n${debug()}`);
}

function birdConf(): string {
  return `
log stderr all;
router id ${BIRD_IP};
protocol device { scan time 10; }
protocol bgp tabby {
  local ${BIRD_IP} port ${BIRD_PORT} as 65100;
  neighbor ${NODE_IP} port ${TABBY_PORT} as 64512;
  password "${PASSWORD}";
  hold time 9; connect delay time 1; connect retry time 1; error wait time 1, 5;
  ipv4 { import all; export none; };
}
`;
}

test('tabby-node on KDD: MD5 password from a Secret (missing → reason → Established), service CIDR with community at BIRD', async (t) => {
  const skip = firstReason(needRoot(), needCommand('bird', 'bird2'), needCommand('birdc', 'bird2'), needCommand('socat'));
  if (skip) return t.skip(skip);

  const dir = await mkdtemp(join(tmpdir(), 'tnm-int-'));
  const k = await startK8sDatastore();
  const procs: ChildProcess[] = [];
  const sock = join(dir, 'k8s.sock');
  // API server bridge: unix socket (root namespace) → test server; socat inside the node namespace.
  const bridge: Server = createServer((c) => {
    const up = createConnection(k.srv.port, '127.0.0.1');
    c.pipe(up).pipe(c);
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
  });
  let nodeLog = '';
  t.after(async () => {
    for (const p of procs) {
      if (p.exitCode === null && p.signalCode === null) {
        await new Promise<void>((resolve) => {
          p.once('exit', () => resolve());
          p.kill('SIGKILL');
        });
      }
    }
    await new Promise<void>((r) => (bridge.listening ? bridge.close(() => r()) : r()));
    delNs(NODE_NS);
    delNs(BIRD_NS);
    await k.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  // Namespaces + veth.
  delNs(NODE_NS);
  delNs(BIRD_NS);
  sh('ip', ['netns', 'add', NODE_NS]);
  sh('ip', ['netns', 'add', BIRD_NS]);
  sh('ip', ['-n', NODE_NS, 'link', 'add', 'tnm0', 'type', 'veth', 'peer', 'name', 'tnm0', 'netns', BIRD_NS]);
  for (const [ns, ip] of [[NODE_NS, NODE_IP], [BIRD_NS, BIRD_IP]] as const) {
    sh('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'tnm0']);
    sh('ip', ['-n', ns, 'link', 'set', 'tnm0', 'up']);
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }

  await new Promise<void>((r) => bridge.listen(sock, () => r()));
  const spawnIn = (ns: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess => {
    const p = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(p);
    return p;
  };
  spawnIn(NODE_NS, 'socat', [`TCP-LISTEN:${API_PORT},bind=127.0.0.1,fork,reuseaddr`, `UNIX-CONNECT:${sock}`]);
  const kubeconfig = await writeKubeconfig(join(dir, 'kubeconfig-ns'), { url: `http://127.0.0.1:${API_PORT}`, token: k.srv.token });

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

  // BIRD.
  const conf = join(dir, 'bird.conf');
  const ctl = join(dir, 'bird.ctl');
  await writeFile(conf, birdConf());
  sh('bird', ['-p', '-c', conf]);
  let birdLog = '';
  const bird = spawnIn(BIRD_NS, 'bird', ['-f', '-c', conf, '-s', ctl]);
  bird.stderr?.on('data', (d: Buffer) => (birdLog += d.toString()));
  const birdc = (...args: string[]): string => sh('birdc', ['-s', ctl, ...args]);

  // tabby-node.
  const runDir = join(dir, 'run');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODENAME: 'tnm-node-1',
    DATASTORE_TYPE: 'kubernetes',
    KUBECONFIG: kubeconfig,
    IP: `${NODE_IP}/24`,
    NO_DEFAULT_POOLS: 'true',
    TABBY_RUN_DIR: runDir,
    TABBY_LIB_DIR: join(dir, 'lib'),
    FELIX_HEALTHENABLED: 'false',
    NAMESPACE: SECRET_NS,
    TABBY_SECRET_REFRESH_SECONDS: '1',
    LOG_LEVEL: 'info',
  };
  delete env.NODE_EXTRA_CA_CERTS;
  const node = spawnIn(NODE_NS, process.execPath, ['--import', 'tsx', join(ROOT, 'node/main.ts')], env);
  node.stdout?.on('data', (d: Buffer) => (nodeLog += d.toString()));
  node.stderr?.on('data', (d: Buffer) => (nodeLog += d.toString()));
  const debug = (): string => `--- tabby-node\n${nodeLog.slice(-4000)}\n--- bird\n${birdLog.slice(-2000)}`;

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
  await until('BIRD Established', () => /tabby\s+BGP\s+---\s+up\s+\S+\s+Established/.test(birdc('show', 'protocols')), debug);
  const st = await readStatus(runDir);
  const peer = st.bgp.peers.find((p) => p.address === BIRD_IP);
  assert.equal(peer?.state, 'Established');
  assert.equal(peer?.port, BIRD_PORT);
  const since = peer?.since;

  // 3. BIRD holds the service CIDR with the configured communities.
  const route = await until('10.96.0.0/12 at BIRD', () => {
    const out = birdc('show', 'route', 'all', 'for', '10.96.0.0/12');
    return out.includes('10.96.0.0/12') && out;
  }, debug);
  assert.match(route, /BGP\.community: \(65000,300\)/);
  assert.match(route, /BGP\.large_community: \(65000, 1, 2\)/);
  assert.match(route, new RegExp(`via ${NODE_IP.replace(/\./g, '\\.')}`));

  // 4. Live BGPConfiguration change: a new service range arrives, the session stays up.
  const bc = await k.ds.get<BGPConfiguration>('BGPConfiguration', 'default');
  await k.ds.update<BGPConfiguration>({ ...bc, spec: { ...bc.spec, serviceExternalIPs: [{ cidr: '192.0.2.0/24' }] } });
  const ext = await until('192.0.2.0/24 at BIRD', () => {
    const out = birdc('show', 'route', 'all', 'for', '192.0.2.0/24');
    return out.includes('192.0.2.0/24') && out;
  }, debug);
  assert.doesNotMatch(ext, /community/, 'the community is only for prefixes inside 10.96.0.0/12');
  const after = (await readStatus(runDir)).bgp.peers.find((p) => p.address === BIRD_IP);
  assert.equal(after?.state, 'Established');
  assert.equal(after?.since, since, 'session not restarted by the BGPConfiguration change');
  assert.ok(!nodeLog.includes(PASSWORD), 'the password never reaches the log');
});
