/**
 * tabby-bgp's kernel installation changed live (root, network namespace tbp-fib, loopback BGP
 * 127.0.0.1:18230 ⇐ 127.0.0.2:18231): fib off → on installs the Loc-RIB into the namespace's
 * table with our protocol; a BGPFilter setPriority becomes the kernel metric; a protocol change
 * moves the routes; off removes them; the session never resets. And the sink itself: a route kept
 * from a previous run with another metric is replaced, not doubled.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../../lib/log.js';
import { needRoot } from '../../lib/skip.js';
import { runDaemon } from '../../../bgp/daemon.js';
import { loopbackPeer } from '../speaker/loopback-peer.js';
import { nsName, sh, until } from './lab.js';
import { NetlinkFibSink } from '../../../bgp/fib/netlink.js';
import type { FibRoute } from '../../../bgp/fib/sink.js';

const NS = nsName('tbp-fib');

function delNs(): void {
  try {
    sh('ip', ['netns', 'del', NS]);
  } catch {
    // not there
  }
}

/** The namespace with a gateway the routes can use: 10.99.80.1 on a veth whose both ends live in it. */
function makeNs(t: { after(fn: () => unknown): void }): (proto: number) => string {
  delNs();
  sh('ip', ['netns', 'add', NS]);
  t.after(delNs);
  sh('ip', ['-n', NS, 'link', 'add', 'e0', 'type', 'veth', 'peer', 'name', 'e1']);
  sh('ip', ['-n', NS, 'addr', 'add', '10.99.80.2/24', 'dev', 'e0']);
  for (const l of ['e0', 'e1', 'lo']) sh('ip', ['-n', NS, 'link', 'set', l, 'up']);
  return (proto) => sh('ip', ['-n', NS, 'route', 'show', 'proto', String(proto)]);
}

test('NetlinkFibSink: a route kept from a previous run with another metric is replaced, not doubled', { skip: needRoot() ?? false }, async (t) => {
  const routes = makeNs(t);
  sh('ip', ['-n', NS, 'route', 'add', '10.244.5.0/26', 'via', '10.99.80.1', 'proto', '82', 'metric', '512']);
  sh('ip', ['-n', NS, 'route', 'add', '10.244.6.0/26', 'via', '10.99.80.1', 'proto', '82']);
  const sink = new NetlinkFibSink({ protocol: 82, netns: NS });
  t.after(() => sink.close());
  assert.equal((await sink.list()).length, 2);
  const route = (prefix: string, priority?: number): FibRoute => ({ family: 'ipv4-unicast', prefix, nextHops: [{ gateway: '10.99.80.1', peer: 'p' }], attrs: {}, ...(priority !== undefined ? { priority } : {}) });
  const res = await sink.applyBatch([{ kind: 'replace', route: route('10.244.5.0/26', 300) }, { kind: 'replace', route: route('10.244.6.0/26') }]);
  assert.deepEqual(res, [undefined, undefined]);
  const out = routes(82);
  assert.match(out, /10\.244\.5\.0\/26 via 10\.99\.80\.1 dev e0 metric 300/);
  assert.doesNotMatch(out, /metric 512/, 'the old-metric route is gone');
  assert.equal(out.split('\n').filter((l) => l.startsWith('10.244.6.0/26')).length, 1, 'same metric: replaced in place');
  await sink.replace(route('10.244.6.0/26', 77));
  assert.match(routes(82), /10\.244\.6\.0\/26 via 10\.99\.80\.1 dev e0 metric 77/);
  assert.equal(routes(82).split('\n').filter((l) => l.startsWith('10.244.6.0/26')).length, 1);
  await sink.delete('ipv4-unicast', '10.244.6.0/26');
  await sink.delete('ipv4-unicast', '10.244.5.0/26');
  assert.equal(routes(82), '');
});

test('fib: on, priorities as metrics, protocol change, off — without a session reset', { skip: needRoot() ?? false, timeout: 60_000 }, async (t) => {
  const routes = makeNs(t);

  const dir = await mkdtemp(join(tmpdir(), 'tbp-fib-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'bgp.json');
  const conf = (fib: unknown, prio = 512) =>
    JSON.stringify({
      routerId: '10.255.2.1',
      asNumber: 64512,
      listen: { address: '127.0.0.1', port: 18230 },
      peers: [{ address: '127.0.0.2', asNumber: 64513, passive: true, holdTime: 9, filters: ['prio'] }],
      filters: [{ name: 'prio', importV4: [{ action: 'Accept', cidr: '10.244.2.0/26', matchOperator: 'Equal', operations: [{ setPriority: { value: prio } }] }] }],
      fib,
    });
  await writeFile(file, conf({ install: false }));
  const d = await runDaemon({ configFile: file, logger: silentLogger(), signals: false, fibNetns: NS });
  const peer = await loopbackPeer(
    {
      routerId: '10.255.2.2',
      asNumber: 64513,
      peers: [{ address: '127.0.0.1', port: 18230, asNumber: 64512, sourceAddress: '127.0.0.2', holdTime: 9, nextHopSelf: { ipv4: '10.99.80.1' } }],
      originate: ['10.244.1.0/26', '10.244.2.0/26'],
    },
    18231,
  );
  const states = peer.states;
  t.after(async () => {
    await peer.close();
    await d.shutdown();
  });
  await until('routes learned', () => d.speaker.routes('10.244.0.0/16').length === 2);
  assert.equal(routes(80), '', 'fib off: nothing installed');

  await writeFile(file, conf({ install: true, protocol: 80, metric: 100 }));
  await d.reload();
  const on = routes(80);
  assert.match(on, /10\.244\.1\.0\/26 via 10\.99\.80\.1 dev e0 metric 100/);
  assert.match(on, /10\.244\.2\.0\/26 via 10\.99\.80\.1 dev e0 metric 512/, 'setPriority is the kernel metric');

  await writeFile(file, conf({ install: true, protocol: 81, metric: 100 }));
  await d.reload();
  assert.equal(routes(80), '', 'old protocol routes removed');
  assert.match(routes(81), /10\.244\.1\.0\/26 via 10\.99\.80\.1 dev e0 metric 100/);

  await writeFile(file, conf({ install: true, protocol: 81, metric: 200 }));
  await d.reload();
  const m = routes(81);
  assert.match(m, /10\.244\.1\.0\/26 via 10\.99\.80\.1 dev e0 metric 200/);
  assert.doesNotMatch(m, /metric 100/, 'the metric-100 route is gone, not doubled');
  assert.match(m, /10\.244\.2\.0\/26 .* metric 512/);

  // A new setPriority on the same sink: the route moves to the new metric (the old one is deleted).
  await writeFile(file, conf({ install: true, protocol: 81, metric: 200 }, 300));
  await d.reload();
  await until('metric 300', () => /10\.244\.2\.0\/26 .* metric 300/.test(routes(81)));
  assert.doesNotMatch(routes(81), /metric 512/);
  assert.match(routes(81), /10\.244\.1\.0\/26 .* metric 200/, 'other routes untouched');

  await writeFile(file, conf({ install: false }));
  await d.reload();
  assert.equal(routes(81), '', 'fib off: our routes removed');
  assert.deepEqual(states.filter((s) => s.from === 'Established'), [], 'no session reset');
  assert.equal(d.speaker.status().peers[0]?.state, 'Established');
});
