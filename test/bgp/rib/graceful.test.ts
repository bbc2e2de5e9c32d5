import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rib, type RibOp } from '../../../bgp/rib/rib.js';
import { GracefulRestartHelper, SelectionDeferral, type GrEvent, type PeerGrCapability } from '../../../bgp/rib/graceful.js';
import { FakeClock } from './fake-clock.js';
import { src } from './helpers.js';

const ann = (prefix: string): RibOp => ({ kind: 'announce', family: 'ipv4-unicast', prefix, attrs: { origin: 0, asPath: [], nextHop: '10.0.0.1' } });
const cap = (forwarding = true, restartTime = 120): PeerGrCapability => ({ restartTime, restarting: false, families: [{ family: 'ipv4-unicast', forwarding }] });
const tick = () => new Promise((r) => setImmediate(r));

async function setup() {
  const rib = new Rib({ local: { asn: 64512, routerId: '10.0.0.100' } });
  const clock = new FakeClock();
  const events: GrEvent[] = [];
  const gr = new GracefulRestartHelper(rib, clock, (e) => events.push(e));
  const a = src('10.0.0.1');
  rib.addPeer({ source: a });
  await rib.submit(a.id, [ann('10.1.0.0/24'), ann('10.2.0.0/24')]);
  return { rib, clock, events, gr, a };
}

test('helper: routes kept stale on session loss, refreshed ones survive End-of-RIB, the rest swept', async () => {
  const { rib, gr, a, events } = await setup();
  assert.equal(await gr.peerDown(a.id, cap(), ['ipv4-unicast']), 'stale');
  assert.equal(rib.loc.size, 2);
  assert.equal(rib.loc.get('ipv4-unicast', '10.1.0.0/24')?.best?.stale, true);
  await gr.peerUp(a.id, cap());
  await rib.submit(a.id, [ann('10.1.0.0/24')]);
  await gr.endOfRib(a.id, 'ipv4-unicast');
  assert.equal(rib.loc.size, 1);
  assert.equal(rib.loc.get('ipv4-unicast', '10.1.0.0/24')?.best?.stale, false);
  assert.equal(gr.isStale(a.id), false);
  assert.deepEqual(events.map((e) => e.kind), ['stale', 'swept']);
});

test('helper: restart timer expiry sweeps stale routes', async () => {
  const { rib, gr, a, clock, events } = await setup();
  await gr.peerDown(a.id, cap(true, 30), ['ipv4-unicast']);
  clock.advance(29_000);
  await tick();
  assert.equal(rib.loc.size, 2);
  clock.advance(1_000);
  await rib.drain();
  assert.equal(rib.loc.size, 0);
  const last = events.at(-1);
  assert.equal(last?.kind === 'swept' ? last.why : undefined, 'timer');
});

test('helper: no GR capability removes routes at once; F bit clear on return flushes them', async () => {
  const s1 = await setup();
  assert.equal(await s1.gr.peerDown(s1.a.id, undefined, ['ipv4-unicast']), 'removed');
  assert.equal(s1.rib.loc.size, 0);
  assert.equal(s1.rib.hasPeer(s1.a.id), true, 'peer stays configured');
  const s2 = await setup();
  await s2.gr.peerDown(s2.a.id, cap(), ['ipv4-unicast']);
  await s2.gr.peerUp(s2.a.id, cap(false));
  assert.equal(s2.rib.loc.size, 0);
  assert.equal(s2.clock.pending, 0, 'timer cancelled');
});

test('restarting role: release after End-of-RIB from non-restarting peers only (no mutual wait, Calico #7144)', () => {
  const clock = new FakeClock();
  const released: string[] = [];
  const d = new SelectionDeferral(120, (why) => released.push(why), clock);
  d.peerEstablished('a', cap());
  d.peerEstablished('b', { ...cap(), restarting: true }); // restarting too: not awaited
  d.peerEstablished('c', undefined); // no GR: not awaited
  d.endOfRib('b');
  assert.equal(d.active, true);
  d.endOfRib('a');
  assert.deepEqual(released, ['end-of-rib']);
  assert.equal(d.active, false);
  assert.equal(clock.pending, 0);
});

test('restarting role: the bound releases when a peer never sends End-of-RIB', () => {
  const clock = new FakeClock();
  const released: string[] = [];
  const d = new SelectionDeferral(60, (why) => released.push(why), clock);
  d.peerEstablished('a', cap());
  clock.advance(59_999);
  assert.deepEqual(released, []);
  clock.advance(1);
  assert.deepEqual(released, ['timer']);
  d.endOfRib('a');
  assert.deepEqual(released, ['timer'], 'released once');
  const none: string[] = [];
  new SelectionDeferral(0, (why) => none.push(why), clock);
  assert.deepEqual(none, ['nothing-to-wait-for']);
});
