import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RouteTable } from '../../felix/routes.js';
import type { DesiredRoute } from '../../felix/model.js';
import { FakeNetlink } from './fake-netlink.js';

const desired: DesiredRoute[] = [
  { dst: '10.244.1.5/32', kind: 'unicast', dev: 'cali1', scope: 'link', reason: 'workload' },
  { dst: '10.244.1.0/26', kind: 'blackhole', reason: 'blackhole' },
  { dst: '10.244.2.0/26', kind: 'unicast', gw: '10.0.0.2', dev: 'eth0', reason: 'noencap' },
  { dst: 'fd10::/122', kind: 'blackhole', reason: 'blackhole' },
];

async function setup(opts: { start?: boolean } = {}) {
  const nl = new FakeNetlink();
  nl.addLink('eth0');
  nl.addLink('cali1');
  const rt = new RouteTable({ nl, debounceMs: 1, retryMs: 5, refreshIntervalMs: 0, gracePeriodMs: 0 });
  rt.setRoutes(desired);
  if (opts.start !== false) {
    await rt.start();
    await rt.settled();
  }
  return { nl, rt };
}

/** Waits (bounded) until `cond` holds; the bound only stops a broken test, it is not a timing assertion. */
async function eventually(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 2));
  }
}

test('programs desired routes with protocol 80 and the right shape', async () => {
  const { nl, rt } = await setup();
  const wl = nl.find('10.244.1.5/32');
  assert.equal(wl?.protocol, 80);
  assert.equal(wl?.scope, 253);
  assert.equal(wl?.oif, nl.links.get('cali1')?.index);
  assert.equal(nl.find('10.244.1.0/26')?.type, 6);
  assert.equal(nl.find('10.244.2.0/26')?.gw, '10.0.0.2');
  assert.equal(nl.find('fd10::/122')?.priority, 1024);
  assert.equal(rt.stats.adds, 4);
  await rt.stop();
});

test('only owned routes are touched: foreign routes stay, stale owned routes go', async () => {
  const nl = new FakeNetlink();
  nl.addLink('eth0');
  const cali = nl.addLink('cali1');
  nl.inject({ dst: '192.168.0.0/24', gw: '10.0.0.254', protocol: 4 }); // static, foreign
  nl.inject({ dst: '10.50.0.0/16', gw: '10.0.0.254', protocol: 12 }); // BIRD, foreign
  nl.inject({ dst: '10.0.0.0/24', oif: 2, protocol: 2 }); // kernel
  nl.inject({ dst: '10.244.9.9/32', oif: cali.index, protocol: 3 }); // CNI leftover on cali*: ours
  nl.inject({ dst: '10.244.7.0/26', type: 6, protocol: 80 }); // stale felix blackhole: ours
  const rt = new RouteTable({ nl, debounceMs: 1, refreshIntervalMs: 0, gracePeriodMs: 0 });
  rt.setRoutes(desired);
  await rt.start();
  await rt.settled();
  assert.ok(nl.find('192.168.0.0/24') && nl.find('10.50.0.0/16') && nl.find('10.0.0.0/24'));
  assert.equal(nl.find('10.244.9.9/32'), undefined);
  assert.equal(nl.find('10.244.7.0/26'), undefined);
  assert.equal(rt.stats.dels, 2);
  await rt.stop();
});

test('minimal diff: an unchanged set writes nothing; a change writes only the difference', async () => {
  const { nl, rt } = await setup();
  const before = { ...nl.calls };
  rt.setRoutes(desired);
  await rt.settled();
  assert.equal(nl.calls.replace, before.replace);
  assert.equal(nl.calls.del, before.del);
  rt.setRoutes([...desired.slice(1), { dst: '10.244.3.0/26', kind: 'unicast', gw: '10.0.0.3', dev: 'eth0', reason: 'noencap' }]);
  await rt.settled();
  assert.equal(nl.calls.replace - before.replace, 1);
  assert.equal(nl.calls.del - before.del, 1);
  assert.equal(nl.find('10.244.1.5/32'), undefined);
  await rt.stop();
});

test('drift: a route deleted by hand or changed by someone else is repaired from events', async () => {
  const { nl, rt } = await setup();
  nl.remove('10.244.2.0/26');
  await eventually(() => nl.find('10.244.2.0/26') !== undefined);
  nl.inject({ dst: '10.244.1.0/26', gw: '10.0.0.7', protocol: 3 }); // someone replaced our blackhole
  await eventually(() => nl.find('10.244.1.0/26')?.type === 6);
  await rt.settled();
  assert.equal(nl.find('10.244.1.0/26')?.protocol, 80);
  await rt.stop();
});

test('routes wait for their interface and are written when it appears', async () => {
  const { nl, rt } = await setup();
  rt.setRoutes([...desired, { dst: '10.244.1.6/32', kind: 'unicast', dev: 'cali2', scope: 'link', reason: 'workload' }]);
  await rt.settled();
  assert.equal(rt.stats.waitingForInterface, 1);
  assert.deepEqual(rt.waiting(), ['10.244.1.6/32']);
  nl.addLink('cali2');
  await eventually(() => nl.find('10.244.1.6/32') !== undefined);
  await rt.settled();
  assert.equal(rt.stats.waitingForInterface, 0);
  await rt.stop();
});

for (const scenario of ['route op fails', 'dump fails'] as const) {
  test(`converges after failures: ${scenario}`, async () => {
    const nl = new FakeNetlink();
    nl.addLink('eth0');
    nl.addLink('cali1');
    if (scenario === 'route op fails') nl.failNextRouteOps = 2;
    else nl.failNextDump = 1;
    const rt = new RouteTable({ nl, debounceMs: 1, retryMs: 5, refreshIntervalMs: 0 });
    rt.setRoutes(desired);
    await rt.start();
    await eventually(() => desired.every((d) => nl.find(d.dst) !== undefined));
    await rt.settled();
    assert.ok(rt.stats.errors >= 1);
    assert.ok(rt.stats.lastError);
    await rt.stop();
  });
}

test('stop leaves routes in place; a new table adopts them without rewriting', async () => {
  const { nl, rt } = await setup();
  await rt.stop();
  assert.equal(nl.routes.length, 4);
  const before = nl.calls.replace;
  const rt2 = new RouteTable({ nl, refreshIntervalMs: 0 });
  rt2.setRoutes(desired);
  await rt2.start();
  await rt2.settled();
  assert.equal(nl.calls.replace, before);
  await rt2.stop();
});

test('configurable protocol: routes of another felix protocol are foreign', async () => {
  const nl = new FakeNetlink();
  nl.addLink('eth0');
  nl.inject({ dst: '10.9.0.0/26', type: 6, protocol: 80 });
  const rt = new RouteTable({ nl, names: { routeProtocol: 99, interfacePrefix: 'tfx' }, refreshIntervalMs: 0 });
  rt.setRoutes([{ dst: '10.244.1.0/26', kind: 'blackhole', reason: 'blackhole' }]);
  await rt.start();
  await rt.settled();
  assert.equal(nl.find('10.9.0.0/26')?.protocol, 80);
  assert.equal(nl.find('10.244.1.0/26')?.protocol, 99);
  await rt.stop();
});

test('grace period: a CNI route on a new workload interface is kept until the grace expires', async () => {
  let now = 1_000_000;
  const nl = new FakeNetlink();
  nl.addLink('eth0');
  const rt = new RouteTable({ nl, debounceMs: 1, refreshIntervalMs: 0, gracePeriodMs: 10_000, now: () => now });
  rt.setRoutes([]);
  await rt.start();
  await rt.settled();
  const cali = nl.addLink('cali9');
  nl.inject({ dst: '10.244.1.9/32', oif: cali.index, protocol: 3, scope: 253 }); // the CNI plugin's route
  await new Promise((r) => setTimeout(r, 20));
  await rt.settled();
  assert.ok(nl.find('10.244.1.9/32'), 'kept during the grace period');
  nl.inject({ dst: '10.244.7.0/26', type: 6, protocol: 80 }); // unwanted, not on a workload iface: no grace
  await eventually(() => nl.find('10.244.7.0/26') === undefined);
  now += 10_001;
  rt.queueResync(0);
  await eventually(() => nl.find('10.244.1.9/32') === undefined);
  await rt.stop();
});

test('event socket overflow triggers a full resync', async () => {
  const { nl, rt } = await setup();
  const resyncs = rt.stats.resyncs;
  nl.routes = nl.routes.filter((r) => r.dst !== '10.244.2.0/26'); // lost without an event
  (nl as unknown as { emit(ev: unknown): void }).emit({ kind: 'overflow' });
  await eventually(() => nl.find('10.244.2.0/26') !== undefined);
  assert.ok(rt.stats.resyncs > resyncs);
  await rt.stop();
});
