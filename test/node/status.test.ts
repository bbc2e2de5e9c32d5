import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatNodeStatus, readStatus, renderTable, startStatusServer, StatusUnavailableError, type NodeStatusSnapshot } from '../../node/status.js';
import { bgpReadiness, HealthAggregator, startHealthServer } from '../../node/health.js';
import { formatChecks, runChecks } from '../../node/checksystem.js';

const snap: NodeStatusSnapshot = {
  nodeName: 'node-1',
  pid: 1,
  startedAt: '2026-11-23T08:00:00Z',
  ip: { cidr: '10.0.0.5/24', source: 'autodetected: 10.0.0.5/24 on eth0 (method first-found)', explanation: ['docker0: skipped (excluded by default: ^docker.*)', 'eth0: chosen 10.0.0.5/24 (first up interface)'] },
  bgp: {
    enabled: true, routerId: '10.0.0.5', asNumber: 64512, exports: ['10.244.1.0/26'],
    peers: [
      { address: '172.17.8.102', type: 'node-to-node mesh', state: 'Established', since: '2026-11-23T23:30:04Z', info: 'Established' },
      { address: '10.3.67.92', type: 'global', state: 'Active', since: '2026-11-23T14:07:10Z', info: 'Active Socket: Connection refused' },
      { address: '10.3.67.93', type: 'node specific', state: 'Idle', since: '2026-11-20T14:07:10Z', info: 'Idle BGP Error: Bad peer AS' },
    ],
  },
  health: { live: true, ready: true, components: {} },
};

test('formatNodeStatus prints Calico’s table plus how the IP was chosen', () => {
  const text = formatNodeStatus(snap, new Date('2026-11-23T23:59:00Z'));
  assert.equal(
    text,
    [
      'tabby-node is running.',
      '',
      'Node name: node-1',
      'IPv4 address: 10.0.0.5/24',
      '  chosen autodetected: 10.0.0.5/24 on eth0 (method first-found)',
      'Readiness: ready',
      '',
      'IPv4 BGP status',
      '+--------------+-------------------+-------+------------+-----------------------------------+',
      '| PEER ADDRESS |     PEER TYPE     | STATE |   SINCE    |               INFO                |',
      '+--------------+-------------------+-------+------------+-----------------------------------+',
      '| 172.17.8.102 | node-to-node mesh | up    | 23:30:04   | Established                       |',
      '| 10.3.67.92   | global            | start | 14:07:10   | Active Socket: Connection refused |',
      '| 10.3.67.93   | node specific     | start | 2026-11-20 | Idle BGP Error: Bad peer AS       |',
      '+--------------+-------------------+-------+------------+-----------------------------------+',
      '',
      'IPv6 BGP status',
      'No IPv6 peers found.',
      '',
    ].join('\n'),
  );
  const v = formatNodeStatus({ ...snap, bgp: { enabled: false, reason: 'IP=none', peers: [], exports: [] }, health: { live: true, ready: false, components: { bgp: { ready: false, detail: 'BGP not established with 10.0.0.9' } } } }, new Date(), true);
  assert.match(v, /docker0: skipped/);
  assert.match(v, /BGP is not running on this node \(IP=none\)\./);
  assert.match(v, /Readiness: not ready\n {2}bgp: BGP not established with 10\.0\.0\.9/);
  assert.equal(renderTable(['a'], [['xyz']]).split('\n')[1], '|  A  |');
});

test('status socket: 0600, serves the snapshot; absent socket → NodeNotRunning', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tnd-status-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await assert.rejects(readStatus(dir), (err: unknown) => err instanceof StatusUnavailableError && err.code === 'NodeNotRunning');
  const srv = await startStatusServer(dir, () => snap);
  t.after(() => srv.close());
  assert.equal((await stat(srv.path)).mode & 0o777, 0o600);
  assert.deepEqual(await readStatus(dir), snap);
});

test('BGP readiness follows Calico’s 30 s grace rule', () => {
  assert.equal(bgpReadiness([], 0).ready, true);
  const peers = [{ address: '10.3.67.92', state: 'Established' }, { address: '10.3.67.93', state: 'Active' }];
  const early = bgpReadiness(peers, 10_000);
  assert.equal(early.ready, false);
  assert.equal(early.detail, 'BGP not established with 10.3.67.93');
  assert.equal(bgpReadiness(peers, 31_000).ready, true);
  assert.equal(bgpReadiness([{ address: 'x', state: 'Connect' }], 60_000).ready, false);
});

test('health server: 503 until every component is ready, then 200', async (t) => {
  const agg = new HealthAggregator();
  agg.register('datastore');
  agg.register('dataplane');
  const srv = await startHealthServer(agg, '127.0.0.1', 0);
  t.after(() => srv.close());
  const get = async (p: string) => {
    const r = await fetch(`http://127.0.0.1:${srv.port}${p}`);
    return { status: r.status, body: (await r.json()) as { components: Record<string, { detail?: string }> } };
  };
  assert.equal((await get('/liveness')).status, 200);
  const nr = await get('/readiness');
  assert.equal(nr.status, 503);
  assert.equal(nr.body.components.datastore?.detail, 'starting');
  agg.report('datastore', { live: true, ready: true });
  agg.report('dataplane', { live: true, ready: true });
  assert.equal((await get('/readiness')).status, 200);
  agg.report('dataplane', { live: false, ready: false, detail: 'stuck' });
  assert.equal((await get('/liveness')).status, 503);
  assert.equal((await fetch(`http://127.0.0.1:${srv.port}/x`)).status, 404);
});

test('checksystem formatting: missing features listed, optional ones do not fail', async () => {
  const res = await runChecks([
    { name: 'veth', required: true, probe: async () => ({ verdict: 'OK', detail: 'veth links can be created' }) },
    { name: 'ipip', required: false, probe: async () => ({ verdict: 'ABSENT', detail: 'kernel has no ipip link type' }) },
    { name: 'boom', required: false, probe: async () => { throw new Error('probe crashed'); } },
  ]);
  const f = formatChecks(res);
  assert.equal(f.ok, true);
  assert.match(f.text, /ipip: kernel has no ipip link type \(optional\)/);
  assert.match(f.text, /boom: probe crashed/);
  assert.match(f.text, /System meets minimum system requirements to run tabby-node!/);
  const bad = formatChecks(await runChecks([{ name: 'veth', required: true, probe: async () => ({ verdict: 'FAIL', detail: 'no' }) }]));
  assert.equal(bad.ok, false);
  assert.match(bad.text, /does NOT meet/);
});

test('peer INFO: the state alone when the reason repeats it, else state + reason', async () => {
  const { peerInfo } = await import('../../node/agent.js');
  assert.equal(peerInfo('Established', 'established'), 'Established');
  assert.equal(peerInfo('Established', undefined), 'Established');
  assert.equal(peerInfo('Active', 'Connection refused'), 'Active Connection refused');
});
