/**
 * FibInstaller with lookupV4: columnar IPv4 changes are queued as (addr, len) and resolved against
 * the Loc-RIB when their batch is built. The kernel must end where an installer that keeps the
 * path objects ends, and where the Loc-RIB is.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Rib, type RibOp } from '../../../bgp/rib/rib.js';
import { FibInstaller, MemoryFibSink, type FibOp } from '../../../bgp/fib/sink.js';
import { src } from './helpers.js';

class BatchSink extends MemoryFibSink {
  applyBatch(ops: readonly FibOp[]): Promise<Array<unknown>> {
    return Promise.resolve(
      ops.map((op) => {
        if (op.kind === 'replace') this.replace(op.route);
        else this.delete(op.family, op.prefix);
        return undefined;
      }),
    );
  }
}

const snapshot = (sink: MemoryFibSink): string[] =>
  [...sink.routes.values()].map((r) => `${r.prefix} ${r.nextHops.map((h) => h.gateway).sort().join(',')}`).sort();

function setup() {
  const rib = new Rib({ local: { asn: 64512, routerId: '10.0.0.100' }, maxPaths: 2 });
  const lazySink = new BatchSink();
  const eagerSink = new BatchSink();
  const lazy = new FibInstaller(lazySink, { lookupV4: (a, l) => rib.loc.destinationV4(a, l) });
  const eager = new FibInstaller(eagerSink);
  rib.onChanges((c) => {
    lazy.apply(c);
    eager.apply(c);
  });
  const peers = [src('10.0.0.1'), src('10.0.0.2')];
  for (const p of peers) rib.addPeer({ source: p });
  return { rib, lazy, eager, lazySink, eagerSink, peers };
}

/** The Loc-RIB's installable best paths, in the sink's snapshot shape. */
function expected(rib: Rib): string[] {
  const out: string[] = [];
  for (const d of rib.loc.destinations()) {
    if (!d.best) continue;
    out.push(`${d.prefix} ${d.multipath.map((p) => p.attrs.nextHop).sort().join(',')}`);
  }
  return out.sort();
}

test('lookupV4: a table load is queued as numbers and installs the newest state', async () => {
  const { rib, lazy, lazySink, peers } = setup();
  const a = peers[0]!;
  const ops: RibOp[] = [];
  for (let i = 0; i < 5000; i++) ops.push({ kind: 'announce', family: 'ipv4-unicast', prefix: `10.${i >> 8}.${i & 255}.0/24`, attrs: { origin: 0, asPath: [], nextHop: '10.0.0.1' } });
  await rib.submit(a.id, ops);
  assert.equal(lazy.pending, 5000);
  // Changed again before the installer ran: the kernel gets the newer next hop directly.
  await rib.submit(a.id, [{ kind: 'announce', family: 'ipv4-unicast', prefix: '10.0.7.0/24', attrs: { origin: 0, asPath: [], nextHop: '10.0.0.9' } }]);
  await rib.submit(a.id, [{ kind: 'withdraw', family: 'ipv4-unicast', prefix: '10.0.8.0/24' }]);
  await lazy.flush();
  assert.equal(lazySink.routes.size, 4999);
  assert.equal(lazySink.routes.get('10.0.7.0/24')?.nextHops[0]?.gateway, '10.0.0.9');
  assert.equal(lazySink.routes.has('10.0.8.0/24'), false);
  assert.deepEqual(snapshot(lazySink), expected(rib));
  await rib.removePeer(a.id);
  await lazy.flush();
  assert.equal(lazySink.routes.size, 0);
  assert.equal(lazy.pending, 0);
});

test('lookupV4: random announce/withdraw/peer-down sequences end like the object queue and the Loc-RIB', async () => {
  const op = fc.record({
    peer: fc.integer({ min: 0, max: 1 }),
    prefix: fc.integer({ min: 0, max: 40 }),
    kind: fc.constantFrom('announce', 'announce', 'withdraw', 'down', 'flush'),
    hop: fc.integer({ min: 1, max: 3 }),
  });
  await fc.assert(
    fc.asyncProperty(fc.array(op, { maxLength: 60 }), async (steps) => {
      const { rib, lazy, eager, lazySink, eagerSink, peers } = setup();
      for (const s of steps) {
        const p = peers[s.peer]!;
        const prefix = `10.1.${s.prefix}.0/24`;
        if (s.kind === 'flush') {
          await Promise.all([lazy.flush(), eager.flush()]);
        } else if (s.kind === 'down') {
          await rib.removePeer(p.id);
          rib.addPeer({ source: p });
        } else if (s.kind === 'announce') {
          await rib.submit(p.id, [{ kind: 'announce', family: 'ipv4-unicast', prefix, attrs: { origin: 0, asPath: [], nextHop: `10.0.${s.peer}.${s.hop}` } }]);
        } else {
          await rib.submit(p.id, [{ kind: 'withdraw', family: 'ipv4-unicast', prefix }]);
        }
      }
      await rib.drain();
      await Promise.all([lazy.flush(), eager.flush()]);
      assert.deepEqual(snapshot(lazySink), snapshot(eagerSink));
      assert.deepEqual(snapshot(lazySink), expected(rib));
      assert.equal(lazy.pending, 0);
    }),
    { numRuns: 300 },
  );
});
