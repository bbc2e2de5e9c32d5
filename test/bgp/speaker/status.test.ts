import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveStatusSocket } from '../../../bgp/daemon/status-socket.js';
import { formatPeerTable, formatRoutes, queryRoutes, queryStatus, StatusSocketError, type RouteEntry, type SpeakerStatus } from '../../../bgp/ctl.js';

const status: SpeakerStatus = {
  routerId: '10.0.0.1',
  asNumber: 64512,
  deferringAdvertisements: false,
  routes: { 'ipv4-unicast': 1, 'ipv6-unicast': 0 },
  attributeSets: 1,
  peers: [
    { id: '10.0.0.2', address: '10.0.0.2', port: 179, asNumber: 64512, peerType: 'node-to-node mesh', state: 'Established', since: '2026-11-23T08:00:00.000Z', info: 'established', routeReflectorClient: false, prefixes: { received: 1, accepted: 1, advertised: 1 }, capabilities: ['ipv4-unicast'], gracefulRestartStale: false },
    { id: '10.0.0.3:1790', address: '10.0.0.3', port: 1790, asNumber: 64513, peerType: 'eBGP', state: 'Connect', since: '2026-11-20T08:00:00.000Z', info: 'tcp-failed: no answer (MD5 key mismatch or filtered)', routeReflectorClient: false, prefixes: { received: 0, accepted: 0, advertised: 0 }, capabilities: [], gracefulRestartStale: false },
  ],
};
const routes: RouteEntry[] = [
  {
    family: 'ipv4-unicast',
    prefix: '10.244.2.0/26',
    reason: 'local-pref',
    paths: [
      { from: '10.0.0.2', nextHop: '10.0.0.2', asPath: '', origin: 'IGP', localPref: 200, communities: ['64512:100'], pathId: 0, best: true, multipath: false, stale: false },
      { from: '10.0.0.3', nextHop: '10.0.0.3', asPath: '64513', origin: 'IGP', localPref: 100, communities: [], pathId: 0, best: false, multipath: false, stale: true },
    ],
  },
];

test('peer table looks like calicoctl node status', () => {
  const out = formatPeerTable(status, new Date('2026-11-23T09:00:00Z'));
  const lines = out.split('\n');
  assert.match(lines[1]!, /^\| PEER ADDRESS +\| PEER TYPE +\| STATE +\| SINCE +\| INFO +\|$/);
  assert.match(out, /\| 10\.0\.0\.2 +\| node-to-node mesh \| up +\| 08:00:00 +\| Established +\|/);
  assert.match(out, /\| 10\.0\.0\.3:1790 +\| eBGP +\| start \| 2026-11-20 \| Connect tcp-failed: no answer \(MD5 key mismatch or filtered\) \|/);
});

test('route listing shows best, stale and the reason', () => {
  const out = formatRoutes(routes);
  assert.match(out, /10\.244\.2\.0\/26 \| \*> +\| 10\.0\.0\.2 .*\| 200 .*64512:100 .*\| higher LOCAL_PREF \|/);
  assert.match(out, /\| +S \| 10\.0\.0\.3/);
});

test('status socket serves status and routes; clients get typed errors', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tabby-bgp-sock-'));
  const path = join(dir, 's.sock');
  const srv = await serveStatusSocket(path, { status: () => status, routes: (p) => routes.filter((r) => !p || r.prefix === p) });
  t.after(async () => {
    await srv.close();
    await rm(dir, { recursive: true, force: true });
  });
  assert.deepEqual(await queryStatus(path), status);
  assert.deepEqual(await queryRoutes(path, '10.244.2.0/26'), routes);
  assert.deepEqual(await queryRoutes(path, '10.0.0.0/8'), []);
  await assert.rejects(queryStatus(join(dir, 'missing.sock')), StatusSocketError);
});
