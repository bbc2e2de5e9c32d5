/**
 * tabby-node against a real etcd, both inside a `tnd-` network namespace: Node registered (autodetected
 * address), default pool created, /readiness served, metrics served, status socket answers,
 * `tabbyctl node status` prints the BGP table, SIGTERM exits cleanly. The agent is the shipped one:
 * `npm run build`'s bundle (one CommonJS file) started through bin/tabby-node.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { firstReason, needCommand, needRoot } from '../lib/skip.js';
import { readStatus, type NodeStatusSnapshot } from '../../node/status.js';
import { checksystemCommand, nodeStatusCommand } from '../../node/ctl.js';
import { defaultChecks } from '../../node/checksystem.js';
import { runCtl } from '../../ctl/cli.js';

const NS = `tnd-int-${process.pid % 10000}`;
const ETCD = 'http://127.0.0.1:23851';
const ROOT = new URL('../../', import.meta.url).pathname;

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'pipe' });
}
function inNs(cmd: string, args: string[]): string {
  return execFileSync('ip', ['netns', 'exec', NS, cmd, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, tries = 150): Promise<T> {
  let last: unknown;
  for (let i = 0; i < tries; i++) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`gave up waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}
function etcdGet(prefix: string): Array<Record<string, unknown>> {
  const out = inNs('etcdctl', ['--endpoints', ETCD, 'get', '--prefix', '--print-value-only', prefix]);
  return out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
}
function stopProc(p: ChildProcess | undefined, sig: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve(p?.exitCode ?? null);
  return new Promise((resolve) => {
    p.once('exit', (code) => resolve(code));
    p.kill(sig);
  });
}

test('tabby-node in a netns against real etcd', async (t) => {
  const skip = firstReason(needRoot(), needCommand('etcd', 'etcd-server'), needCommand('etcdctl', 'etcd-client'));
  if (skip) return t.skip(skip);
  const dir = await mkdtemp(join(tmpdir(), 'tnd-int-'));
  const procs: { etcd?: ChildProcess; node?: ChildProcess } = {};
  let nodeLog = '';
  t.after(async () => {
    await stopProc(procs.node);
    await stopProc(procs.etcd);
    try {
      ip('netns', 'del', NS);
    } catch {
      /* already gone */
    }
    await rm(dir, { recursive: true, force: true });
  });

  ip('netns', 'add', NS);
  ip('-n', NS, 'link', 'set', 'lo', 'up');
  ip('-n', NS, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'docker0');
  ip('-n', NS, 'addr', 'add', '10.77.0.2/24', 'dev', 'eth0');
  ip('-n', NS, 'addr', 'add', '172.17.0.1/16', 'dev', 'docker0');
  ip('-n', NS, 'link', 'set', 'eth0', 'up');
  ip('-n', NS, 'link', 'set', 'docker0', 'up');

  procs.etcd = spawn('ip', ['netns', 'exec', NS, 'etcd', '--name', 'tnd', '--data-dir', join(dir, 'etcd'),
    '--listen-client-urls', ETCD, '--advertise-client-urls', ETCD,
    '--listen-peer-urls', 'http://127.0.0.1:23861', '--initial-advertise-peer-urls', 'http://127.0.0.1:23861',
    '--initial-cluster', 'tnd=http://127.0.0.1:23861', '--log-level', 'error'], { stdio: 'ignore' });
  await until('etcd', () => {
    inNs('etcdctl', ['--endpoints', ETCD, 'endpoint', 'health']); // throws until healthy
    return true;
  });

  // A global peer nobody answers: the status table then shows a real reason.
  inNs('etcdctl', ['--endpoints', ETCD, 'put', '/calico/resources/v3/projectcalico.org/bgppeers/tor',
    JSON.stringify({ apiVersion: 'projectcalico.org/v3', kind: 'BGPPeer', metadata: { name: 'tor', uid: 'u1', creationTimestamp: '2026-11-23T00:00:00Z' }, spec: { peerIP: '10.77.0.1', asNumber: 65100 } })]);

  const runDir = join(dir, 'run');
  const env = {
    ...process.env,
    NODENAME: 'tnd-node-1', DATASTORE_TYPE: 'etcdv3', ETCD_ENDPOINTS: ETCD,
    IP: 'autodetect', IP_AUTODETECTION_METHOD: 'first-found', CALICO_IPV4POOL_CIDR: '10.244.0.0/16',
    FELIX_HEALTHPORT: '19092', FELIX_PROMETHEUSMETRICSENABLED: 'true', FELIX_PROMETHEUSMETRICSPORT: '19093',
    TABBY_RUN_DIR: runDir, TABBY_LIB_DIR: join(dir, 'lib'), LOG_LEVEL: 'info',
  };
  const built = spawnSync(process.execPath, [join(ROOT, 'scripts/build.mjs')], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(built.status, 0, `build: ${built.stdout}${built.stderr}`);
  // The launcher's shebang finds node on PATH; its V8 code cache goes to the temp dir.
  Object.assign(env, { PATH: `${dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}`, TABBY_CODE_CACHE: join(dir, 'v8-cache') });
  const node = (procs.node = spawn('ip', ['netns', 'exec', NS, join(ROOT, 'bin/tabby-node')], { env, cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] }));
  node.stderr!.on('data', (c: Buffer) => (nodeLog += c.toString()));
  t.after(() => {
    if (process.exitCode) process.stderr.write(nodeLog);
  });

  const snap = await until<NodeStatusSnapshot>('status socket', async () => {
    const s = await readStatus(runDir);
    return s.bgp.peers.length > 0 ? s : undefined;
  });
  assert.equal(snap.nodeName, 'tnd-node-1');
  assert.equal(snap.ip.cidr, '10.77.0.2/24');
  assert.match(snap.ip.source, /autodetected: 10\.77\.0\.2\/24 on eth0 \(method first-found\)/);
  assert.ok(snap.ip.explanation.includes('docker0: skipped (excluded by default: ^docker.*)'));

  const nodes = etcdGet('/calico/resources/v3/projectcalico.org/nodes/');
  assert.equal(nodes.length, 1);
  assert.deepEqual((nodes[0]!.spec as { bgp: unknown }).bgp, { ipv4Address: '10.77.0.2/24' });
  const pools = etcdGet('/calico/resources/v3/projectcalico.org/ippools/');
  assert.deepEqual(pools.map((p) => (p.spec as { cidr: string }).cidr), ['10.244.0.0/16']);
  assert.equal(etcdGet('/calico/resources/v3/projectcalico.org/clusterinformations/').length, 1);

  // Readiness: not ready while the only peer is down (the 30 s grace rule needs ≥1 Established).
  const code = (path: string, port = 19092): string => inNs('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${port}${path}`]);
  assert.equal(code('/liveness'), '200');
  assert.equal(code('/readiness'), '503');
  assert.match(inNs('curl', ['-s', 'http://127.0.0.1:19093/metrics']), /tabby_bgp_peer_established\{peer="10\.77\.0\.1",type="global"\} 0/);

  const io = { stdout: '', stderr: '' };
  const code0 = await runCtl(['node', 'status', '--run-dir', runDir], { out: (x) => void (io.stdout += x), err: (x) => void (io.stderr += x), readStdin: async () => '', env: {} });
  const out = { code: code0, stdout: io.stdout };
  assert.equal(out.code, 0);
  assert.match(out.stdout, /^tabby-node is running\.\n/);
  assert.match(out.stdout, /\| PEER ADDRESS \| +PEER TYPE +\| STATE \|/);
  assert.match(out.stdout, /\| 10\.77\.0\.1 +\| global +\| start +\| \d\d:\d\d:\d\d \| (Active|Connect|Idle)[^|]*\|/);

  // Removing the peer: live reconfiguration → no peers → ready.
  inNs('etcdctl', ['--endpoints', ETCD, 'del', '/calico/resources/v3/projectcalico.org/bgppeers/tor']);
  await until('ready', () => (code('/readiness') === '200' ? true : undefined));

  assert.equal(await stopProc(node, 'SIGTERM'), 0);
  const gone = await nodeStatusCommand({ runDir });
  assert.equal(gone.code, 1);
  assert.equal(gone.stdout, 'tabby-node is not running.\n');
});

test('checksystem on this kernel: veth/vxlan OK, ipip reported absent, says what is missing', async (t) => {
  const skip = needRoot();
  if (skip) return t.skip(skip);
  const ns = `tnd-ck-${process.pid % 10000}`;
  ip('netns', 'add', ns);
  t.after(() => ip('netns', 'del', ns));
  const out = await checksystemCommand(defaultChecks(ns));
  assert.match(out.stdout, /veth\s+\tOK/);
  assert.match(out.stdout, /vxlan\s+\tOK/);
  assert.match(out.stdout, /ipip\s+\t(OK|ABSENT)/);
  if (/ipip\s+\tABSENT/.test(out.stdout)) assert.match(out.stdout, /- ipip: kernel has no ipip link type/);
  assert.match(out.stdout, /System meets minimum system requirements to run tabby-node!/);
  assert.equal(out.code, 0);
});
