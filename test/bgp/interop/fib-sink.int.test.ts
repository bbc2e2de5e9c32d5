/**
 * NetlinkFibSink against a real kernel table (root, network namespace tk2-fib): a batch of many
 * routes where some cannot be installed reports exactly those, index-aligned, and installs the
 * rest; FibInstaller over it converges once the cause is gone. The metric map stays empty for
 * routes with the default metric.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { needRoot } from '../../lib/skip.js';
import { sh } from './lab.js';
import { NetlinkFibSink } from '../../../bgp/fib/netlink.js';
import { FibInstaller, type FibOp, type FibRoute } from '../../../bgp/fib/sink.js';

const NS = 'tk2-fib';
const PROTO = 83;

function delNs(): void {
  try {
    sh('ip', ['netns', 'del', NS]);
  } catch {
    // not there
  }
}

const route = (prefix: string, gateway: string): FibRoute => ({ family: 'ipv4-unicast', prefix, nextHops: [{ gateway, peer: 'p' }], attrs: {} });
const count = (): number => sh('ip', ['-n', NS, 'route', 'show', 'proto', String(PROTO)]).split('\n').filter(Boolean).length;

test('NetlinkFibSink: failures inside a batch are reported per route; the installer retries them', { skip: needRoot() ?? false, timeout: 60_000 }, async (t) => {
  delNs();
  sh('ip', ['netns', 'add', NS]);
  t.after(delNs);
  sh('ip', ['-n', NS, 'link', 'add', 'e0', 'type', 'veth', 'peer', 'name', 'e1']);
  sh('ip', ['-n', NS, 'addr', 'add', '10.99.81.2/24', 'dev', 'e0']);
  for (const l of ['e0', 'e1', 'lo']) sh('ip', ['-n', NS, 'link', 'set', l, 'up']);
  const sink = new NetlinkFibSink({ protocol: PROTO, netns: NS });
  t.after(() => sink.close());

  // 3000 routes (several netlink datagrams); every 500th has a gateway no interface reaches.
  const ops: FibOp[] = [];
  for (let i = 0; i < 3000; i++) ops.push({ kind: 'replace', route: route(`10.50.${i >> 8}.${i & 255}/32`, i % 500 === 499 ? '10.77.0.1' : '10.99.81.1') });
  const res = await sink.applyBatch(ops);
  const failed = res.map((e, i) => (e === undefined ? -1 : i)).filter((i) => i >= 0);
  assert.deepEqual(failed, [499, 999, 1499, 1999, 2499, 2999]);
  for (const i of failed) assert.match(String((res[i] as Error).message), /ENETUNREACH|unreachable/i);
  assert.equal(count(), 2994);
  // Deleting a route that is not there is not an error.
  assert.deepEqual(await sink.applyBatch([{ kind: 'delete', family: 'ipv4-unicast', prefix: '10.51.0.0/24' }]), [undefined]);
  assert.equal((sink as unknown as { metrics: Map<string, number> }).metrics.size, 0, 'default metrics are not remembered');

  // Through the installer: the failed ones are reported and stay pending until their gateway exists.
  const fib = new FibInstaller(sink, { onError: (prefix) => errors.push(prefix) });
  const errors: string[] = [];
  const changes = ops.map((op) => (op as { route: FibRoute }).route);
  // Feed the installer as the Loc-RIB would: one change per prefix with its best path.
  fib.apply(
    changes.map((r) => {
      const p = { family: r.family, prefix: r.prefix, pathId: 0, source: { id: 'p', type: 'ibgp', address: 'p', asn: 1, routerId: 'p', rrClient: false }, attrs: { origin: 0, asPath: [], nextHop: r.nextHops[0]!.gateway }, stale: false } as const;
      const dest = { prefix: r.prefix, family: r.family, best: p, multipath: [p] };
      return { dest, previousBest: undefined, bestChanged: true, multipathChanged: true, path: p, removed: false } as never;
    }),
  );
  await fib.flush();
  assert.equal(errors.length, 6);
  assert.equal(fib.pending, 6);
  sh('ip', ['-n', NS, 'addr', 'add', '10.77.0.2/24', 'dev', 'e0']);
  await fib.flush();
  assert.equal(fib.pending, 0);
  assert.equal(fib.errors.size, 0);
  assert.equal(count(), 3000);
  await fib.withdrawAll();
  assert.equal(count(), 0);
});
