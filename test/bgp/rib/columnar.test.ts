import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RefTable, V4Table } from '../../../bgp/rib/v4-table.js';
import { LocRib, V4View, type DestChange, type Destination } from '../../../bgp/rib/loc-rib.js';
import { Rib, type RibOp } from '../../../bgp/rib/rib.js';
import { AdjRibOut, type GroupSettings, type OutBatch } from '../../../bgp/rib/adj-rib-out.js';
import { formatV4, type PackedNlri } from '../../../bgp/codec/nlri.js';
import type { Path, PathSource } from '../../../bgp/rib/path.js';
import type { PathAttributes } from '../../../bgp/types.js';
import { IBGP_GROUP, path, src } from './helpers.js';

/** The table's live (addr, len) pairs, by walking its slots. */
function liveKeys(t: V4Table): string[] {
  const out: string[] = [];
  for (let i = 0; i < t.capacity; i++) if (t.isLive(i)) out.push(`${t.addrAt(i)}/${t.lenAt(i)}`);
  return out.sort();
}

test('V4Table: growth and rebuilds keep every key; tombstones keep probing past deletions', () => {
  const t = new V4Table();
  const n = 20_000;
  const addr = (i: number) => ((i * 256 + 0x0a000000) >>> 0) % 2 ** 32;
  for (let i = 0; i < n; i++) t.insert(addr(i), 24, i, i & 0xffff);
  assert.equal(t.size, n);
  assert.ok(t.capacity * 3 >= n * 4 && t.generation > 0, `capacity ${t.capacity}, generation ${t.generation}`);
  for (let i = 0; i < n; i++) {
    const s = t.find(addr(i), 24);
    assert.ok(s >= 0 && t.attrAt(s) === i && t.srcAt(s) === (i & 0xffff), `key ${i}`);
  }
  // Same address, other lengths: distinct keys.
  assert.equal(t.find(addr(5), 23), -1);
  assert.equal(t.find(addr(5), 25), -1);
  // Delete every other key: the rest stay reachable past the holes.
  for (let i = 0; i < n; i += 2) t.remove(t.find(addr(i), 24));
  assert.equal(t.size, n / 2);
  for (let i = 0; i < n; i++) assert.equal(t.find(addr(i), 24) >= 0, i % 2 === 1, `key ${i}`);
  // Reinsert into the holes, then shrink by deleting nearly everything.
  for (let i = 0; i < n; i += 2) t.insert(addr(i), 24, i, 0);
  assert.equal(liveKeys(t).length, n);
  const cap = t.capacity;
  for (let i = 0; i < n - 10; i++) t.remove(t.find(addr(i), 24));
  assert.equal(t.size, 10);
  assert.ok(t.capacity < cap, 'shrinks when nearly empty');
  assert.deepEqual(liveKeys(t), Array.from({ length: 10 }, (_, k) => `${addr(n - 10 + k)}/24`).sort());
});

test('V4Table agrees with a Map under random insert/remove (including the /0 and /32 edges)', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 63 }), fc.constantFrom(0, 8, 24, 32))), (ops) => {
      const t = new V4Table();
      const m = new Map<string, number>();
      let v = 0;
      for (const [add, k, len] of ops) {
        const addr = len === 0 ? 0 : (((k * 0x01010101) >>> 0) & (-1 << (32 - len))) >>> 0;
        const key = `${addr}/${len}`;
        const slot = t.find(addr, len);
        assert.equal(slot >= 0, m.has(key));
        if (add && slot < 0) {
          t.insert(addr, len, ++v, 0);
          m.set(key, v);
        } else if (!add && slot >= 0) {
          t.remove(slot);
          m.delete(key);
        }
      }
      assert.equal(t.size, m.size);
      assert.deepEqual(liveKeys(t), [...m.keys()].sort());
      for (const [key, val] of m) {
        const [a, l] = key.split('/').map(Number) as [number, number];
        assert.equal(t.attrAt(t.find(a, l)), val);
      }
    }),
    { numRuns: 300 },
  );
});

test('RefTable: ids are reference counted, reused when free, and bounded', () => {
  const r = new RefTable<object>(2);
  const a = {};
  const b = {};
  const c = {};
  const ia = r.acquire(a);
  assert.equal(r.acquire(a), ia);
  const ib = r.acquire(b);
  assert.notEqual(ia, ib);
  assert.equal(r.acquire(c), -1, 'limit reached');
  r.release(ib);
  assert.equal(r.size, 1);
  assert.equal(r.acquire(c), ib, 'a freed id is reused');
  r.release(ia);
  assert.equal(r.get(ia), a, 'still one reference');
  r.release(ia);
  assert.equal(r.size, 1);
  assert.throws(() => r.get(ia));
});

test('LocRib: a lone plain IPv4 path is columnar; a second path promotes it; it becomes columnar again only after it is gone', () => {
  const loc = new LocRib();
  const a = src('10.0.0.1');
  const b = src('10.0.0.2');
  const p = '10.1.0.0/24';
  let c = loc.upsertIn(undefined, path(a, { med: 5 }, p), true);
  assert.equal(c.removed, false);
  assert.equal(c.previousBest, undefined);
  assert.ok(c.bestChanged && c.multipathChanged);
  assert.equal(c.path.attrs.med, 5);
  assert.equal(c.dest.best, c.path, 'the change shows its own path');
  const view = loc.get('ipv4-unicast', p);
  assert.ok(view instanceof V4View);
  assert.equal(view.best?.source, a);
  assert.equal(view.reason, 'only-path');
  assert.deepEqual(loc.bestCounts(), { 'ipv4-unicast': 1, 'ipv6-unicast': 0 });
  // Replace (same source): still columnar, the change carries the path before.
  c = loc.upsertIn(loc.get('ipv4-unicast', p), path(a, { med: 7 }, p), true);
  assert.equal(c.previousBest?.attrs.med, 5);
  assert.ok(loc.get('ipv4-unicast', p) instanceof V4View);
  assert.equal(loc.get('ipv4-unicast', p)?.best?.attrs.med, 7);
  // Second source: promoted to an object with both paths.
  c = loc.upsertIn(loc.get('ipv4-unicast', p), path(b, { localPref: 200 }, p), true);
  const d = loc.get('ipv4-unicast', p)!;
  assert.ok(!(d instanceof V4View));
  assert.equal(c.dest, d);
  assert.equal(d.paths.size, 2);
  assert.equal(d.best?.source, b);
  assert.equal(d.reason, 'local-pref');
  assert.equal(c.previousBest?.source, a);
  // Back to one path: it stays an object (a destination is not moved back while it exists).
  loc.remove('ipv4-unicast', p, b.id, 0);
  assert.equal(loc.get('ipv4-unicast', p), d);
  assert.equal(d.best?.source, a);
  c = loc.remove('ipv4-unicast', p, a.id, 0)!;
  assert.equal(c.removed, true);
  assert.equal(loc.get('ipv4-unicast', p), undefined);
  assert.equal(loc.size, 0);
  // Gone, then announced again: columnar.
  loc.upsertIn(undefined, path(a, {}, p), true);
  assert.ok(loc.get('ipv4-unicast', p) instanceof V4View);
  // getLive promotes (e.g. to mark the path stale in place).
  const live = loc.getLive('ipv4-unicast', p)!;
  assert.ok(!(live instanceof V4View));
  assert.equal(loc.get('ipv4-unicast', p), live);
  assert.equal(loc.size, 1);
  assert.deepEqual(loc.bestCounts(), { 'ipv4-unicast': 1, 'ipv6-unicast': 0 });
  // Not plain, ADD-PATH ids, IPv6, non-canonical text: objects.
  for (const [pp, plain] of [
    [path(a, {}, '10.2.0.0/24'), false],
    [path(a, {}, '10.3.0.0/24', 3), true],
    [path(a, {}, 'fd00::/64', 0, 'ipv6-unicast'), true],
    [path(a, {}, '10.4.0.1/24'), true],
  ] as Array<[Path, boolean]>) {
    loc.upsertIn(undefined, pp, plain);
    const got = loc.get(pp.family, pp.prefix);
    assert.ok(got && !(got instanceof V4View), pp.prefix);
  }
  // A removal from another source or path id leaves a columnar path alone.
  loc.upsertIn(undefined, path(a, {}, '10.5.0.0/24'), true);
  assert.equal(loc.remove('ipv4-unicast', '10.5.0.0/24', b.id, 0), undefined);
  assert.equal(loc.remove('ipv4-unicast', '10.5.0.0/24', a.id, 1), undefined);
  assert.ok(loc.get('ipv4-unicast', '10.5.0.0/24') instanceof V4View);
});

test('LocRib.destinations(): objects and columnar views; a rebuild during iteration starts the columns over (nothing missed)', () => {
  const loc = new LocRib();
  const a = src('10.0.0.1');
  const prefixes = Array.from({ length: 600 }, (_, i) => formatV4(((10 << 24) | (i << 8)) >>> 0, 24));
  for (const p of prefixes) loc.upsertIn(undefined, path(a, {}, p), true);
  loc.upsertIn(undefined, path(a, {}, 'fd00::/64', 0, 'ipv6-unicast'), true);
  const seen = new Set<string>();
  const it = loc.destinations();
  for (let i = 0; i < 100; i++) seen.add(it.next().value!.prefix);
  // Enough inserts to rebuild the table while the iterator is paused.
  const more = Array.from({ length: 2000 }, (_, i) => formatV4(((11 << 24) | (i << 8)) >>> 0, 24));
  for (const p of more) loc.upsertIn(undefined, path(a, {}, p), true);
  for (let r = it.next(); !r.done; r = it.next()) seen.add(r.value.prefix);
  for (const p of [...prefixes, 'fd00::/64']) assert.ok(seen.has(p), p);
  assert.equal(loc.size, prefixes.length + more.length + 1);
  // Iteration order does not matter to readers: the same set either way.
  assert.deepEqual([...loc.destinations()].map((d) => d.prefix).sort(), [...prefixes, ...more, 'fd00::/64'].sort());
});

// ─── the columnar RIB against the object RIB ──────────────────────────────────────────────────

const local = { asn: 64512, routerId: '10.0.0.100' };

/** IPv4 prefixes as UPDATE NLRI bytes (what the decoder keeps). */
function pack(list: ReadonlyArray<{ addr: number; len: number; pathId: number }>, addPath: boolean): PackedNlri {
  const bytes: number[] = [];
  for (const n of list) {
    if (addPath) bytes.push((n.pathId >>> 24) & 255, (n.pathId >>> 16) & 255, (n.pathId >>> 8) & 255, n.pathId & 255);
    bytes.push(n.len);
    for (let i = 0; i < (n.len + 7) >> 3; i++) bytes.push((n.addr >>> (24 - 8 * i)) & 255);
  }
  return { bytes: Uint8Array.from(bytes), addPath, count: list.length };
}

/** Everything a reader can see of a destination. */
function show(d: Destination | undefined): unknown {
  if (!d || d.paths.size === 0) return undefined;
  const p = (x: Path | undefined) => (x ? [x.source.id, x.pathId, JSON.stringify(x.attrs), x.stale] : undefined);
  return {
    prefix: d.prefix,
    family: d.family,
    paths: [...d.paths.values()].map(p).sort(),
    best: p(d.best),
    reason: d.reason,
    multipath: d.multipath.map(p),
  };
}

function showChange(c: DestChange): unknown {
  const p = (x: Path | undefined) => (x ? [x.source.id, x.pathId, JSON.stringify(x.attrs), x.stale] : undefined);
  return { prefix: c.dest.prefix, removed: c.removed, best: c.bestChanged, multi: c.multipathChanged, previous: p(c.previousBest), path: p(c.path), dest: show(c.dest) };
}

type Step =
  | { op: 'announce'; peer: number; prefixes: number[]; pathId: number; attr: number }
  | { op: 'withdraw'; peer: number; prefixes: number[]; pathId: number }
  | { op: 'stale' | 'sweep' | 'remove'; peer: number };

const PEERS: PathSource[] = [src('10.0.0.1'), src('10.0.0.2'), src('10.0.0.3', 'ebgp', { asn: 65001 }), src('10.0.0.4', 'ibgp', { rrClient: true })];
const ATTRS: PathAttributes[] = [{}, { med: 10 }, { localPref: 100 }, { localPref: 300 }, { asPath: [{ type: 2, asns: [65001, 65002] }] }];
/** A few /24s, a /32, a /0 and a /16 sharing address bits. */
const PREFIXES = [
  { addr: 0x0a010000, len: 24 },
  { addr: 0x0a010100, len: 24 },
  { addr: 0x0a010000, len: 16 },
  { addr: 0x0a010001, len: 32 },
  { addr: 0, len: 0 },
  { addr: 0xc0a80000, len: 24 },
];

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant('announce' as const), peer: fc.nat(3), prefixes: fc.array(fc.nat(PREFIXES.length - 1), { minLength: 1, maxLength: 4 }), pathId: fc.constantFrom(0, 0, 0, 1, 2), attr: fc.nat(ATTRS.length - 1) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('withdraw' as const), peer: fc.nat(3), prefixes: fc.array(fc.nat(PREFIXES.length - 1), { minLength: 1, maxLength: 4 }), pathId: fc.constantFrom(0, 0, 1) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constantFrom('stale' as const, 'sweep' as const, 'remove' as const), peer: fc.nat(3) }) },
);

const GROUP: GroupSettings = IBGP_GROUP;
/** Receivers of the Adj-RIB-Out: eBGP, iBGP non-client, an RR client that is also a source (split horizon), ADD-PATH. */
const OUT_PEERS: Array<[string, GroupSettings]> = [
  ['192.0.2.1', { ...GROUP, type: 'ebgp' }],
  ['192.0.2.2', GROUP],
  ['10.0.0.4', { ...GROUP, rrClient: true }],
  ['192.0.2.3', { ...GROUP, rrClient: true, addPathTx: true }],
];

/** A batch as a set (the order of a whole-peer job's changes differs between the two RIBs). */
function showBatch(b: OutBatch): unknown {
  return {
    announce: b.announce.map((a) => [JSON.stringify(a.attrs), a.nlri.map((n) => `${n.prefix}#${n.pathId}`).sort()]).sort(),
    withdraw: b.withdraw.map((n) => `${n.prefix}#${n.pathId}`).sort(),
  };
}

async function run(rib: Rib, steps: readonly Step[], packed: boolean, rejectMed: boolean): Promise<{ batches: unknown[]; table: unknown[]; counts: unknown[]; sent: Record<string, unknown[]> }> {
  const batches: unknown[] = [];
  const out = new AdjRibOut(rib.loc, rib.interner, local, true);
  // Per receiver, in order (which group's batch goes out first follows change order).
  const sent: Record<string, unknown[]> = {};
  out.onBatch((peer, b) => (sent[peer] ??= []).push(showBatch(b)));
  for (const [peer, settings] of OUT_PEERS) await out.join(peer, settings);
  rib.onChanges((cs) => out.apply(cs));
  // Whole-peer jobs visit a peer's routes in table order, which differs between the two: compare
  // each batch sorted by prefix (stable, so the changes of one prefix keep their order).
  rib.onChanges((cs) => batches.push(cs.map(showChange).sort((x, y) => ((x as { prefix: string }).prefix < (y as { prefix: string }).prefix ? -1 : (x as { prefix: string }).prefix > (y as { prefix: string }).prefix ? 1 : 0))));
  for (const s of PEERS) {
    const peer: Parameters<Rib['addPeer']>[0] = { source: s, maxPrefixes: 5 };
    // One peer with an import policy that rejects some routes and rewrites others.
    if (rejectMed && s.id === '10.0.0.2') peer.accept = (ctx) => (ctx.attrs.med !== undefined ? false : ctx.prefix.endsWith('/16') ? { ...ctx.attrs, med: 99 } : true);
    rib.addPeer(peer);
  }
  for (const st of steps) {
    const peer = PEERS[st.peer]!.id;
    if (st.op === 'announce' || st.op === 'withdraw') {
      const list = st.prefixes.map((i) => ({ ...PREFIXES[i]!, pathId: st.pathId }));
      const addPath = st.pathId !== 0;
      let op: RibOp;
      if (packed) op = st.op === 'announce' ? { kind: 'announce-v4', nlri: pack(list, addPath), attrs: { origin: 0, asPath: [], nextHop: peer, ...ATTRS[st.attr]! } } : { kind: 'withdraw-v4', nlri: pack(list, addPath) };
      else {
        const nlri = list.map((n) => (addPath ? { prefix: formatV4(n.addr, n.len), pathId: n.pathId } : { prefix: formatV4(n.addr, n.len) }));
        op = st.op === 'announce' ? { kind: 'announce-nlri', family: 'ipv4-unicast', nlri, attrs: { origin: 0, asPath: [], nextHop: peer, ...ATTRS[st.attr]! } } : { kind: 'withdraw-nlri', family: 'ipv4-unicast', nlri };
      }
      await rib.submit(peer, [op]);
    } else if (st.op === 'stale') await rib.markStale(peer);
    else if (st.op === 'sweep') await rib.sweepStale(peer);
    else {
      await rib.removePeer(peer, false);
    }
  }
  await rib.drain();
  const table = [...rib.loc.destinations()].map(show).sort((x, y) => (JSON.stringify(x) < JSON.stringify(y) ? -1 : 1));
  const counts = PEERS.map((s) => [rib.counts(s.id), [...rib.adjRibIn(s.id)].map((e) => [e.prefix, e.pathId, e.accepted, JSON.stringify(e.pre)]).sort()]);
  return { batches, table, counts: [counts, rib.loc.bestCounts(), rib.loc.size, rib.interner.size], sent };
}

test('property: the columnar RIB (packed NLRI) and the object RIB agree on random announce/withdraw/stale/sweep/remove sequences (Loc-RIB, Adj-RIB-In, changes, Adj-RIB-Out)', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(stepArb, { maxLength: 40 }), fc.boolean(), fc.constantFrom(1, 2), async (steps, rejectMed, maxPaths) => {
      const col = await run(new Rib({ local, maxPaths, sliceMs: 1000 }), steps, true, rejectMed);
      const obj = await run(new Rib({ local, maxPaths, sliceMs: 1000, columnar: false }), steps, false, rejectMed);
      assert.deepEqual(col.table, obj.table);
      assert.deepEqual(col.counts, obj.counts);
      assert.deepEqual(col.batches, obj.batches);
      assert.deepEqual(col.sent, obj.sent);
    }),
    { numRuns: 300 },
  );
});

test('graceful restart on columnar routes: marked stale in place (no objects), refreshed by a new announcement, swept on End-of-RIB', async () => {
  // Small slices: whole-peer jobs and packed operations resume mid-way.
  const rib = new Rib({ local, chunkSize: 7 });
  const a = src('10.0.0.1');
  rib.addPeer({ source: a });
  const list = Array.from({ length: 50 }, (_, i) => ({ addr: (0x0a000000 + i * 256) >>> 0, len: 24, pathId: 0 }));
  const attrs: PathAttributes = { origin: 0, asPath: [], nextHop: a.address };
  await rib.submit(a.id, [{ kind: 'announce-v4', nlri: pack(list, false), attrs }]);
  assert.equal(rib.loc.size, 50);
  assert.equal(await rib.markStale(a.id), 50);
  const d = rib.loc.get('ipv4-unicast', '10.0.0.0/24');
  assert.ok(d instanceof V4View);
  assert.equal(d.best?.stale, true);
  assert.equal([...rib.loc.objectDestinations()].length, 0, 'nothing became an object');
  // The restarted session announces 10 of them again: those are fresh, the rest swept.
  await rib.submit(a.id, [{ kind: 'announce-v4', nlri: pack(list.slice(0, 10), false), attrs }]);
  assert.equal(rib.loc.get('ipv4-unicast', '10.0.0.0/24')?.best?.stale, false);
  assert.equal(await rib.sweepStale(a.id), 40);
  assert.equal(rib.loc.size, 10);
  assert.deepEqual(rib.counts(a.id), { received: 10, accepted: 10 });
  await rib.removePeer(a.id);
  assert.equal(rib.loc.size, 0);
  assert.equal(rib.interner.size, 0, 'every attribute reference released');
});
