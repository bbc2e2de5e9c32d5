/** `tabbyctl bgp status / routes` against a status socket served with a fake speaker snapshot. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { serveStatusSocket } from '../../bgp/daemon/status-socket.js';
import type { RouteEntry, SpeakerStatus } from '../../bgp/ctl.js';
import { ctl } from './harness.js';

const status: SpeakerStatus = {
  routerId: '10.0.0.1',
  asNumber: 64512,
  listen: { port: 179 },
  deferringAdvertisements: false,
  routes: { 'ipv4-unicast': 2, 'ipv6-unicast': 0 },
  attributeSets: 2,
  peers: [
    {
      id: '10.0.0.2',
      address: '10.0.0.2',
      port: 179,
      asNumber: 64512,
      peerType: 'node-to-node mesh',
      state: 'Established',
      since: new Date(Date.now() - 60_000).toISOString(),
      info: '',
      routeReflectorClient: false,
      prefixes: { received: 1, accepted: 1, advertised: 1 },
      capabilities: ['ipv4-unicast', 'as4', 'route-refresh'],
      gracefulRestartStale: false,
    },
    {
      id: '10.0.0.3:1790',
      address: '10.0.0.3',
      port: 1790,
      asNumber: 64513,
      peerType: 'global',
      state: 'Active',
      since: new Date(Date.now() - 5_000).toISOString(),
      info: 'MD5 key mismatch / no answer',
      lastError: 'MD5 key mismatch / no answer',
      routeReflectorClient: false,
      prefixes: { received: 0, accepted: 0, advertised: 0 },
      capabilities: [],
      gracefulRestartStale: false,
    },
  ],
};

const routes: RouteEntry[] = [
  { family: 'ipv4-unicast', prefix: '10.244.1.0/26', reason: 'local-origin', paths: [{ from: 'local', asPath: '', origin: 'IGP', communities: [], pathId: 0, best: true, multipath: false, stale: false }] },
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

async function withSocket(t: { after(fn: () => unknown): void }): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tabby-ctl-bgp-'));
  const sock = path.join(dir, 'bgp.sock');
  const server = await serveStatusSocket(sock, { status: () => status, routes: (p) => (p === undefined ? routes : routes.filter((r) => r.prefix === p)) });
  t.after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return sock;
}

test('bgp status: peer table with state and info; -o json is the snapshot; -o details', async (t) => {
  const sock = await withSocket(t);
  const r = await ctl(undefined, ['bgp', 'status', '--socket', sock]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /BGP router id 10\.0\.0\.1, AS 64512/);
  assert.match(r.stdout, /\| 10\.0\.0\.2 +\| node-to-node mesh \| up +\| \d\d:\d\d:\d\d \| Established +\|/);
  assert.match(r.stdout, /\| 10\.0\.0\.3:1790 \| global +\| start \| .* \| Active MD5 key mismatch \/ no answer \|/);
  const j = await ctl(undefined, ['bgp', 'status', '--socket', sock, '-o', 'json']);
  assert.equal(j.code, 0, j.stderr);
  assert.deepEqual(JSON.parse(j.stdout), status);
  const d = await ctl(undefined, ['bgp', 'status', '--socket', sock, '-o', 'details']);
  assert.match(d.stdout, /10\.0\.0\.2 AS64512 Established +received 1 accepted 1 advertised 1\n +capabilities: ipv4-unicast, as4, route-refresh/);
  const bad = await ctl(undefined, ['bgp', 'status', '--socket', sock, '-o', 'yaml']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /unsupported output format "yaml"/);
});

test('bgp routes: all, one prefix, absent prefix (exit 1), json', async (t) => {
  const sock = await withSocket(t);
  const all = await ctl(undefined, ['bgp', 'routes', '--socket', sock]);
  assert.equal(all.code, 0, all.stderr);
  assert.match(all.stdout, /10\.244\.1\.0\/26 \| \*> +\| - +\| local/);
  assert.match(all.stdout, /10\.244\.2\.0\/26 \| \*> +\| 10\.0\.0\.2 .*64512:100 +\| higher LOCAL_PREF/);
  assert.match(all.stdout, /\| +S \| 10\.0\.0\.3 /, 'the stale non-best path is listed and marked');
  const one = await ctl(undefined, ['bgp', 'routes', '--socket', sock, '10.244.1.0/26']);
  assert.equal(one.code, 0);
  assert.doesNotMatch(one.stdout, /10\.244\.2\.0/);
  const none = await ctl(undefined, ['bgp', 'routes', '--socket', sock, '10.9.9.0/24']);
  assert.equal(none.code, 1);
  assert.match(none.stdout, /No route for 10\.9\.9\.0\/24\./);
  const j = await ctl(undefined, ['bgp', 'routes', '--socket', sock, '-o', 'json', '10.244.2.0/26']);
  assert.deepEqual(JSON.parse(j.stdout), [routes[1]]);
});

test('bgp status: no speaker on the socket → one error line with the cause, exit 1', async () => {
  const r = await ctl(undefined, ['bgp', 'status', '--socket', path.join(tmpdir(), `tabby-no-such-${process.pid}.sock`)]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot connect to .*tabby-no-such-\d+\.sock: ENOENT/);
});

test('bgp without a subcommand is a usage error', async () => {
  const r = await ctl(undefined, ['bgp']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /give a bgp subcommand: status or routes/);
});
