import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rib, type RibOp } from '../../../bgp/rib/rib.js';
import { FibInstaller, MemoryFibSink } from '../../../bgp/fib/sink.js';
import { src } from './helpers.js';

const ann = (prefix: string, nextHop: string): RibOp => ({ kind: 'announce', family: 'ipv4-unicast', prefix, attrs: { origin: 0, asPath: [], nextHop } });

async function setup(maxPaths = 1) {
  const rib = new Rib({ local: { asn: 64512, routerId: '10.0.0.100' }, maxPaths });
  const sink = new MemoryFibSink();
  const fib = new FibInstaller(sink);
  rib.onChanges((c) => fib.apply(c));
  const a = src('10.0.0.1');
  const b = src('10.0.0.2');
  rib.addPeer({ source: a });
  rib.addPeer({ source: b });
  return { rib, sink, fib, a, b };
}

test('best paths are installed, ECMP as multipath, withdrawn on loss; local routes not installed', async () => {
  const { rib, sink, fib, a, b } = await setup(4);
  await rib.submit(a.id, [ann('10.1.0.0/24', '10.0.0.1')]);
  await rib.originate('ipv4-unicast', '10.244.1.0/26');
  await fib.flush();
  assert.deepEqual(sink.log, ['replace 10.1.0.0/24 via 10.0.0.1']);
  await rib.submit(b.id, [ann('10.1.0.0/24', '10.0.0.2')]);
  await fib.flush();
  assert.deepEqual(sink.log.at(-1), 'replace 10.1.0.0/24 via 10.0.0.1,10.0.0.2');
  await rib.removePeer(a.id);
  await rib.removePeer(b.id);
  await fib.flush();
  assert.deepEqual(sink.log.at(-1), 'delete 10.1.0.0/24');
  assert.equal(sink.routes.size, 0);
});

test('a failing sink keeps the change pending and the next flush converges', async () => {
  const { rib, sink, fib, a } = await setup();
  await rib.submit(a.id, [ann('10.1.0.0/24', '10.0.0.1')]);
  sink.failNext = 1;
  await fib.flush();
  assert.equal(fib.pending, 1);
  assert.match(fib.errors.get('10.1.0.0/24') ?? '', /injected/);
  await fib.flush();
  assert.equal(fib.pending, 0);
  assert.equal(fib.errors.size, 0);
  assert.equal(sink.routes.size, 1);
});

test('restart: installed routes are adopted and kept until release, then stale ones removed', async () => {
  const { rib, sink, fib, a } = await setup();
  sink.replace({ family: 'ipv4-unicast', prefix: '10.1.0.0/24', nextHops: [{ gateway: '10.0.0.1', peer: 'x' }], attrs: {} });
  sink.replace({ family: 'ipv4-unicast', prefix: '10.9.0.0/24', nextHops: [{ gateway: '10.0.0.1', peer: 'x' }], attrs: {} });
  sink.log.length = 0;
  assert.equal(await fib.adoptInstalled(), 2);
  await fib.flush();
  assert.equal(sink.routes.size, 2, 'nothing removed while holding');
  await rib.submit(a.id, [ann('10.1.0.0/24', '10.0.0.1')]);
  await fib.release();
  // Different prefixes: their order does not matter.
  assert.deepEqual([...sink.log].sort(), ['delete 10.9.0.0/24', 'replace 10.1.0.0/24 via 10.0.0.1']);
  assert.deepEqual([...sink.routes.keys()], ['10.1.0.0/24']);
});

test('restart: a kept route whose prefix became local is removed at release; a held removal gives way to a newer change', async () => {
  const { rib, sink, fib, a } = await setup();
  for (const p of ['10.1.0.0/24', '10.244.1.0/26']) sink.replace({ family: 'ipv4-unicast', prefix: p, nextHops: [{ gateway: '10.0.0.1', peer: 'x' }], attrs: {} });
  sink.log.length = 0;
  await fib.adoptInstalled();
  await rib.originate('ipv4-unicast', '10.244.1.0/26');
  await rib.submit(a.id, [ann('10.1.0.0/24', '10.0.0.1')]);
  await rib.submit(a.id, [{ kind: 'withdraw', family: 'ipv4-unicast', prefix: '10.1.0.0/24' }]);
  await fib.flush();
  assert.equal(sink.routes.size, 2, 'removals wait while holding');
  await rib.submit(a.id, [ann('10.1.0.0/24', '10.0.0.7')]);
  await fib.release();
  assert.deepEqual([...sink.routes.keys()], ['10.1.0.0/24']);
  assert.equal(sink.routes.get('10.1.0.0/24')?.nextHops[0]?.gateway, '10.0.0.7');
  assert.equal(fib.pending, 0);
});
