/** FibInstaller with a sink that takes batches (applyBatch): same results as one-by-one, fewer calls. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rib, type RibOp } from '../../../bgp/rib/rib.js';
import { FibInstaller, MemoryFibSink, type FibOp, type FibRoute } from '../../../bgp/fib/sink.js';
import type { Family } from '../../../bgp/types.js';
import { src } from './helpers.js';

const ann = (prefix: string, nextHop: string): RibOp => ({ kind: 'announce', family: 'ipv4-unicast', prefix, attrs: { origin: 0, asPath: [], nextHop } });

class BatchSink extends MemoryFibSink {
  calls: number[] = [];
  failPrefix: string | undefined;
  applyBatch(ops: readonly FibOp[]): Promise<Array<unknown>> {
    this.calls.push(ops.length);
    return Promise.resolve(
      ops.map((op) => {
        const prefix = op.kind === 'replace' ? op.route.prefix : op.prefix;
        if (prefix === this.failPrefix) return new Error(`injected failure for ${prefix}`);
        if (op.kind === 'replace') this.replace(op.route);
        else this.delete(op.family, op.prefix);
        return undefined;
      }),
    );
  }
}

async function setup() {
  const rib = new Rib({ local: { asn: 64512, routerId: '10.0.0.100' } });
  const sink = new BatchSink();
  const fib = new FibInstaller(sink);
  rib.onChanges((c) => fib.apply(c));
  const a = src('10.0.0.1');
  rib.addPeer({ source: a });
  return { rib, sink, fib, a };
}

test('batched flush: 10k routes in few applyBatch calls; withdrawals batched too', async () => {
  const { rib, sink, fib, a } = await setup();
  const ops: RibOp[] = [];
  for (let i = 0; i < 10_000; i++) ops.push(ann(`10.${i >> 8}.${i & 255}.0/24`, '10.0.0.1'));
  await rib.submit(a.id, ops);
  await fib.flush();
  assert.equal(sink.routes.size, 10_000);
  assert.equal(fib.pending, 0);
  assert.deepEqual(sink.calls, [4096, 4096, 1808]);
  await fib.flush();
  assert.equal(sink.calls.length, 3, 'nothing to do: no call');
  await rib.removePeer(a.id);
  await fib.flush();
  assert.equal(sink.routes.size, 0);
  assert.equal(sink.calls.length, 6);
});

test('batched flush: a failed route stays pending with its error, the others are done', async () => {
  const { rib, sink, fib, a } = await setup();
  sink.failPrefix = '10.0.1.0/24';
  await rib.submit(a.id, [ann('10.0.0.0/24', '10.0.0.1'), ann('10.0.1.0/24', '10.0.0.1'), ann('10.0.2.0/24', '10.0.0.1')]);
  await fib.flush();
  assert.equal(sink.routes.size, 2);
  assert.equal(fib.pending, 1);
  assert.match(fib.errors.get('10.0.1.0/24') ?? '', /injected/);
  sink.failPrefix = undefined;
  await fib.flush();
  assert.equal(sink.routes.size, 3);
  assert.equal(fib.pending, 0);
  assert.equal(fib.errors.size, 0);
});

test('a prefix that changes many times before a flush is written once, with its last state', async () => {
  const { rib, sink, fib, a } = await setup();
  for (let i = 1; i <= 5; i++) await rib.submit(a.id, [ann('10.0.0.0/24', `10.0.0.${i}`)]);
  await rib.submit(a.id, [ann('10.0.1.0/24', '10.0.0.1')]);
  assert.equal(fib.pending, 2, 'one pending entry per prefix, not per change');
  await fib.flush();
  assert.deepEqual(sink.calls, [2]);
  assert.deepEqual(sink.log, ['replace 10.0.0.0/24 via 10.0.0.5', 'replace 10.0.1.0/24 via 10.0.0.1']);
});

test('changes made while a batch is in flight are applied by the same flush; batches stay bounded', async () => {
  const { rib, sink, fib, a } = await setup();
  const first: RibOp[] = [];
  for (let i = 0; i < 5000; i++) first.push(ann(`10.1.${i >> 8}.${i & 255}/32`, '10.0.0.1'));
  await rib.submit(a.id, first);
  let injected = false;
  const inner = sink.applyBatch.bind(sink);
  sink.applyBatch = async (ops) => {
    if (!injected) {
      injected = true;
      // Arrives while the first batch is with the kernel: a new prefix and a change of a queued one.
      await rib.submit(a.id, [ann('10.2.0.0/24', '10.0.0.1'), ann('10.1.19.135/32', '10.0.0.9')]);
    }
    return inner(ops);
  };
  await fib.flush();
  assert.ok(sink.calls.every((n) => n <= 4096), `batches: ${sink.calls.join(',')}`);
  assert.equal(sink.routes.size, 5001);
  assert.equal(sink.routes.get('10.1.19.135/32')?.nextHops[0]?.gateway, '10.0.0.9');
  assert.equal(fib.pending, 0);
});

test('every failed route of a batch is reported (onError and errors), none is dropped', async () => {
  const rib = new Rib({ local: { asn: 64512, routerId: '10.0.0.100' } });
  const sink = new BatchSink();
  const reported: string[] = [];
  const fib = new FibInstaller(sink, { onError: (prefix, err) => reported.push(`${prefix}: ${(err as Error).message}`) });
  rib.onChanges((c) => fib.apply(c));
  const a = src('10.0.0.1');
  rib.addPeer({ source: a });
  const bad = new Set<string>();
  const ops: RibOp[] = [];
  for (let i = 0; i < 5000; i++) {
    const prefix = `10.3.${i >> 8}.${i & 255}/32`;
    if (i % 1000 === 7) bad.add(prefix); // in both batches (4096 + 904)
    ops.push(ann(prefix, '10.0.0.1'));
  }
  sink.applyBatch = (batch) => Promise.resolve(batch.map((op) => (op.kind === 'replace' && !bad.has(op.route.prefix) ? sink.replace(op.route) : new Error('ENETUNREACH'))));
  await rib.submit(a.id, ops);
  await fib.flush();
  assert.equal(reported.length, 5, reported.join('; '));
  assert.equal(fib.errors.size, 5);
  assert.equal(fib.pending, 5, 'failed routes stay pending for the next flush');
  assert.equal(sink.routes.size, 4995);
});

test('local prefixes cost no kernel operation; withdrawAll removes what the sink lists', async () => {
  const { rib, sink, fib, a } = await setup();
  await rib.originate('ipv4-unicast', '10.244.1.0/26');
  await rib.submit(a.id, [ann('10.0.0.0/24', '10.0.0.1')]);
  await fib.flush();
  assert.deepEqual(sink.log, ['replace 10.0.0.0/24 via 10.0.0.1']);
  // A route of ours the installer did not write (kept from an earlier run): withdrawAll finds it too.
  sink.routes.set('10.9.0.0/24', { family: 'ipv4-unicast', prefix: '10.9.0.0/24', nextHops: [{ gateway: '10.0.0.1', peer: 'x' }], attrs: {} });
  await fib.withdrawAll();
  assert.equal(sink.routes.size, 0);
});

test('a sink without list(): withdrawAll removes the routes the installer wrote', async () => {
  const rib = new Rib({ local: { asn: 64512, routerId: '10.0.0.100' } });
  const mem = new MemoryFibSink();
  const sink = { replace: (r: FibRoute) => mem.replace(r), delete: (f: Family, p: string) => mem.delete(f, p) };
  const fib = new FibInstaller(sink);
  rib.onChanges((c) => fib.apply(c));
  const a = src('10.0.0.1');
  rib.addPeer({ source: a });
  await rib.submit(a.id, [ann('10.0.0.0/24', '10.0.0.1'), ann('10.0.1.0/24', '10.0.0.1')]);
  await fib.flush();
  assert.equal(mem.routes.size, 2);
  await fib.withdrawAll();
  assert.equal(mem.routes.size, 0);
});
