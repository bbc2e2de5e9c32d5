import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rib, type RibNotice, type RibOp } from '../../../bgp/rib/rib.js';
import type { DestChange } from '../../../bgp/rib/loc-rib.js';
import type { PathAttributes } from '../../../bgp/types.js';
import { seq, src } from './helpers.js';

const local = { asn: 64512, routerId: '10.0.0.100' };
const ann = (prefix: string, nextHop: string, extra = {}, pathId?: number): RibOp => ({
  kind: 'announce',
  family: 'ipv4-unicast',
  prefix,
  ...(pathId !== undefined ? { pathId } : {}),
  attrs: { origin: 0, asPath: [], nextHop, ...extra },
});
const wd = (prefix: string, pathId?: number): RibOp => ({ kind: 'withdraw', family: 'ipv4-unicast', prefix, ...(pathId !== undefined ? { pathId } : {}) });

function setup(opts: Partial<ConstructorParameters<typeof Rib>[0]> = {}) {
  const rib = new Rib({ local, ...opts });
  const changes: DestChange[] = [];
  const notices: RibNotice[] = [];
  rib.onChanges((c) => changes.push(...c));
  rib.onNotice((n) => notices.push(n));
  return { rib, changes, notices };
}

test('announce, best-path change, withdraw', async () => {
  const { rib, changes } = setup();
  const a = src('10.0.0.1');
  const b = src('10.0.0.2');
  rib.addPeer({ source: a });
  rib.addPeer({ source: b });
  await rib.submit(a.id, [ann('10.1.0.0/24', '10.0.0.1')]);
  await rib.submit(b.id, [ann('10.1.0.0/24', '10.0.0.2', { localPref: 200 })]);
  const d = rib.loc.get('ipv4-unicast', '10.1.0.0/24')!;
  assert.equal(d.best?.source.id, b.id);
  assert.equal(d.reason, 'local-pref');
  assert.equal(changes.filter((c) => c.bestChanged).length, 2);
  await rib.submit(b.id, [wd('10.1.0.0/24')]);
  assert.equal(rib.loc.get('ipv4-unicast', '10.1.0.0/24')?.best?.source.id, a.id);
  await rib.submit(a.id, [wd('10.1.0.0/24')]);
  assert.equal(rib.loc.get('ipv4-unicast', '10.1.0.0/24'), undefined);
  assert.equal(rib.loc.size, 0);
  assert.equal(rib.interner.size, 0, 'every attribute reference released');
});

test('ADD-PATH: several paths from one peer coexist by path id', async () => {
  const { rib } = setup({ maxPaths: 4 });
  const a = src('10.0.0.1');
  rib.addPeer({ source: a });
  await rib.submit(a.id, [ann('10.1.0.0/24', '10.0.0.7', {}, 1), ann('10.1.0.0/24', '10.0.0.8', {}, 2)]);
  const d = rib.loc.get('ipv4-unicast', '10.1.0.0/24')!;
  assert.equal(d.paths.size, 2);
  assert.equal(d.reason, 'path-id');
  assert.deepEqual(d.multipath.map((p) => p.attrs.nextHop), ['10.0.0.7', '10.0.0.8']);
  await rib.submit(a.id, [wd('10.1.0.0/24', 1)]);
  assert.equal(rib.loc.get('ipv4-unicast', '10.1.0.0/24')!.paths.size, 1);
  assert.deepEqual(rib.counts(a.id), { received: 1, accepted: 1 });
});

test('import policy: rejected routes stay in pre-policy Adj-RIB-In, reimport after a policy change', async () => {
  const { rib } = setup();
  const a = src('10.0.0.1');
  let allow = false;
  rib.addPeer({ source: a, accept: () => allow });
  await rib.submit(a.id, [ann('10.1.0.0/24', '10.0.0.1'), ann('10.2.0.0/24', '10.0.0.1')]);
  assert.deepEqual(rib.counts(a.id), { received: 2, accepted: 0 });
  assert.equal(rib.loc.size, 0);
  assert.equal([...rib.adjRibIn(a.id)].filter((e) => !e.accepted).length, 2);
  allow = true;
  await rib.reimport(a.id);
  assert.deepEqual(rib.counts(a.id), { received: 2, accepted: 2 });
  assert.equal(rib.loc.size, 2);
});

test('loop drops and eBGP LOCAL_PREF reset', async () => {
  const { rib, notices } = setup();
  const e = src('192.0.2.1', 'ebgp');
  rib.addPeer({ source: e });
  await rib.submit(e.id, [ann('10.1.0.0/24', '192.0.2.1', { asPath: seq(65000, 64512) }), ann('10.2.0.0/24', '192.0.2.1', { asPath: seq(65000), localPref: 999 })]);
  assert.equal(rib.loc.get('ipv4-unicast', '10.1.0.0/24'), undefined);
  assert.deepEqual(notices, [{ kind: 'import-drop', peerId: e.id, prefix: '10.1.0.0/24', reason: 'as-path-loop' }]);
  assert.equal(rib.loc.get('ipv4-unicast', '10.2.0.0/24')?.best?.attrs.localPref, 100);
});

test('max-prefix raises one notice when the accepted count exceeds the limit', async () => {
  const { rib, notices } = setup();
  const a = src('10.0.0.1');
  rib.addPeer({ source: a, maxPrefixes: 2 });
  await rib.submit(a.id, [ann('10.1.0.0/24', '10.0.0.1'), ann('10.2.0.0/24', '10.0.0.1'), ann('10.3.0.0/24', '10.0.0.1'), ann('10.4.0.0/24', '10.0.0.1')]);
  assert.deepEqual(notices, [{ kind: 'max-prefix', peerId: a.id, limit: 2, count: 3 }]);
});

test('graceful restart: mark stale, refresh clears stale, sweep removes the rest', async () => {
  const { rib } = setup();
  const a = src('10.0.0.1');
  const b = src('10.0.0.2');
  rib.addPeer({ source: a });
  rib.addPeer({ source: b });
  await rib.submit(a.id, [ann('10.1.0.0/24', '10.0.0.1', { localPref: 300 }), ann('10.2.0.0/24', '10.0.0.1')]);
  await rib.submit(b.id, [ann('10.1.0.0/24', '10.0.0.2')]);
  assert.equal(await rib.markStale(a.id), 2);
  // Stale path loses to the fresh one from b even with the higher LOCAL_PREF; still kept.
  assert.equal(rib.loc.get('ipv4-unicast', '10.1.0.0/24')?.best?.source.id, b.id);
  assert.equal(rib.loc.get('ipv4-unicast', '10.2.0.0/24')?.best?.stale, true);
  await rib.submit(a.id, [ann('10.1.0.0/24', '10.0.0.1', { localPref: 300 })]);
  assert.equal(rib.loc.get('ipv4-unicast', '10.1.0.0/24')?.best?.source.id, a.id);
  assert.equal(await rib.sweepStale(a.id), 1);
  assert.equal(rib.loc.get('ipv4-unicast', '10.2.0.0/24'), undefined);
});

test('originate and withdraw local routes; removePeer drops all its paths', async () => {
  const { rib } = setup();
  await rib.originate('ipv4-unicast', '10.244.1.0/26');
  const d = rib.loc.get('ipv4-unicast', '10.244.1.0/26')!;
  assert.equal(d.best?.source.type, 'local');
  assert.deepEqual(rib.originated(), [{ family: 'ipv4-unicast', prefix: '10.244.1.0/26' }]);
  await rib.withdrawLocal('ipv4-unicast', '10.244.1.0/26');
  assert.equal(rib.loc.size, 0);
  const a = src('10.0.0.1');
  rib.addPeer({ source: a });
  await rib.submit(a.id, [ann('10.1.0.0/24', '10.0.0.1')]);
  await rib.removePeer(a.id);
  assert.equal(rib.loc.size, 0);
  assert.equal(rib.hasPeer(a.id), false);
});

test('large submissions are processed in chunks and yield to the event loop', async () => {
  const { rib } = setup({ chunkSize: 100 });
  const a = src('10.0.0.1');
  rib.addPeer({ source: a });
  const ops: RibOp[] = [];
  for (let i = 0; i < 5000; i++) ops.push(ann(`10.${i >> 8}.${i & 255}.0/24`, '10.0.0.1'));
  let ticks = 0;
  const timer = setInterval(() => ticks++, 0);
  // A timer scheduled before the work must get to run while it is processed.
  let sawTimerMidway = false;
  rib.onChanges(() => {
    if (ticks > 0 && rib.loc.size < 5000) sawTimerMidway = true;
  });
  await rib.submit(a.id, ops);
  clearInterval(timer);
  assert.equal(rib.loc.size, 5000);
  assert.ok(sawTimerMidway, 'timers ran between chunks');
  assert.equal(rib.interner.size, 1);
});

test('a peer re-added while its removal is queued keeps the routes it sends afterwards', async () => {
  const { rib } = setup({ chunkSize: 10 });
  const a = src('10.0.0.1');
  rib.addPeer({ source: a });
  const ops: RibOp[] = [];
  for (let i = 0; i < 50; i++) ops.push(ann(`10.7.${i}.0/24`, '10.0.0.1'));
  await rib.submit(a.id, ops);
  const removed = rib.removePeer(a.id);
  rib.addPeer({ source: a }); // the session came back before the removal finished
  const again = rib.submit(a.id, [ann('10.6.0.0/24', '10.0.0.1')]);
  await removed;
  await again;
  assert.equal(rib.hasPeer(a.id), true);
  assert.equal(rib.loc.get('ipv4-unicast', '10.6.0.0/24')?.best?.source.id, a.id);
  assert.equal(rib.loc.get('ipv4-unicast', '10.7.0.0/24'), undefined);
});

test('Adj-RIB-In across plain, changed and rejected routes: counts, listing, withdraw and attribute references', async () => {
  const { rib } = setup();
  const e = src('192.0.2.1', 'ebgp');
  const i = src('10.0.0.1');
  let reject = '';
  rib.addPeer({ source: e, accept: (c) => c.prefix !== reject });
  rib.addPeer({ source: i });
  // eBGP with LOCAL_PREF 999: accepted with changed attributes (kept as received + as accepted).
  await rib.submit(e.id, [ann('10.1.0.0/24', '192.0.2.1', { asPath: seq(65000), localPref: 999 }), ann('10.2.0.0/24', '192.0.2.1', { asPath: seq(65000) })]);
  // Batched: one operation for several prefixes, with ADD-PATH ids.
  const attrs: PathAttributes = { origin: 0, asPath: [], nextHop: '10.0.0.1' };
  await rib.submit(i.id, [{ kind: 'announce-nlri', family: 'ipv4-unicast', nlri: [{ prefix: '10.1.0.0/24' }, { prefix: '10.3.0.0/24', pathId: 7 }], attrs }]);
  assert.deepEqual(rib.counts(e.id), { received: 2, accepted: 2 });
  assert.deepEqual(rib.counts(i.id), { received: 2, accepted: 2 });
  const listed = [...rib.adjRibIn(e.id)].map((x) => [x.prefix, x.accepted, x.pre?.localPref]).sort();
  assert.deepEqual(listed, [['10.1.0.0/24', true, 999], ['10.2.0.0/24', true, undefined]]);
  assert.deepEqual([...rib.adjRibIn(i.id)].map((x) => [x.prefix, x.pathId]).sort(), [['10.1.0.0/24', 0], ['10.3.0.0/24', 7]]);
  assert.equal(rib.loc.get('ipv4-unicast', '10.1.0.0/24')?.paths.size, 2);
  // A plain route becomes rejected, then accepted again.
  reject = '10.2.0.0/24';
  await rib.reimport(e.id);
  assert.deepEqual(rib.counts(e.id), { received: 2, accepted: 1 });
  assert.equal(rib.loc.get('ipv4-unicast', '10.2.0.0/24'), undefined);
  reject = '';
  await rib.reimport(e.id);
  assert.deepEqual(rib.counts(e.id), { received: 2, accepted: 2 });
  assert.equal(rib.loc.get('ipv4-unicast', '10.2.0.0/24')?.best?.source.id, e.id);
  // Withdraws (batched and not), then the peer goes: nothing left, every attribute set released.
  await rib.submit(i.id, [{ kind: 'withdraw-nlri', family: 'ipv4-unicast', nlri: [{ prefix: '10.3.0.0/24', pathId: 7 }] }, wd('10.1.0.0/24')]);
  assert.deepEqual(rib.counts(i.id), { received: 0, accepted: 0 });
  assert.equal(rib.loc.get('ipv4-unicast', '10.1.0.0/24')?.best?.source.id, e.id);
  await rib.removePeer(e.id);
  assert.equal(rib.loc.size, 0);
  assert.equal(rib.interner.size, 0);
});
