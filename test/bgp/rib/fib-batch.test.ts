/** FibInstaller with a sink that takes batches (applyBatch): same results as one-by-one, fewer calls. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rib, type RibOp } from '../../../bgp/rib/rib.js';
import { FibInstaller, MemoryFibSink, type FibOp } from '../../../bgp/fib/sink.js';
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
