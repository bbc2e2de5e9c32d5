import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rib, type RibOp } from '../../../bgp/rib/rib.js';
import { AdjRibOut, type GroupSettings, type OutBatch } from '../../../bgp/rib/adj-rib-out.js';
import { IBGP_GROUP, seq, src } from './helpers.js';

const local = { asn: 64512, routerId: '10.0.0.100' };
const base: GroupSettings = IBGP_GROUP;
const ann = (prefix: string, nextHop: string, extra = {}): RibOp => ({ kind: 'announce', family: 'ipv4-unicast', prefix, attrs: { origin: 0, asPath: [], nextHop, ...extra } });

function setup(reflector = false) {
  const rib = new Rib({ local });
  const out = new AdjRibOut(rib.loc, rib.interner, local, reflector);
  rib.onChanges((c) => out.apply(c));
  const sent = new Map<string, OutBatch[]>();
  out.onBatch((peer, b) => {
    const l = sent.get(peer) ?? [];
    l.push(b);
    sent.set(peer, l);
  });
  return { rib, out, sent };
}

function announced(batches: OutBatch[] | undefined): string[] {
  return (batches ?? []).flatMap((b) => b.announce.flatMap((a) => a.nlri.map((n) => n.prefix)));
}
function withdrawn(batches: OutBatch[] | undefined): string[] {
  return (batches ?? []).flatMap((b) => b.withdraw.map((n) => n.prefix));
}

test('peers with the same settings share one group and receive the same batch object', async () => {
  const { rib, out, sent } = setup();
  const e = src('192.0.2.1', 'ebgp');
  rib.addPeer({ source: e });
  out.join('10.0.0.1', base);
  out.join('10.0.0.2', base);
  out.join('192.0.2.9', { ...base, type: 'ebgp' });
  assert.equal(out.groupCount, 2);
  await rib.submit(e.id, [ann('10.1.0.0/24', '192.0.2.1', { asPath: seq(65000) }), ann('10.2.0.0/24', '192.0.2.1', { asPath: seq(65000) })]);
  const b1 = sent.get('10.0.0.1')!;
  const b2 = sent.get('10.0.0.2')!;
  assert.equal(b1.length, 1);
  assert.equal(b1[0], b2[0], 'one batch object for the whole group');
  assert.equal(b1[0]!.announce.length, 1, 'both prefixes share one attribute set');
  assert.deepEqual(announced(b1), ['10.1.0.0/24', '10.2.0.0/24']);
  assert.equal(b1[0]!.announce[0]!.attrs.localPref, 100);
  const eb = sent.get('192.0.2.9')!;
  assert.deepEqual(eb[0]!.announce[0]!.attrs.asPath, seq(64512, 65000));
  assert.equal(out.advertisedTo('10.0.0.1'), 2);
});

test('split horizon: a path is not sent back to its source; withdrawn there when the best moves to it', async () => {
  const { rib, out, sent } = setup();
  const e1 = src('192.0.2.1', 'ebgp');
  const e2 = src('192.0.2.2', 'ebgp');
  rib.addPeer({ source: e1 });
  rib.addPeer({ source: e2 });
  const ebgp = { ...base, type: 'ebgp' as const };
  out.join(e1.id, ebgp);
  out.join(e2.id, ebgp);
  await rib.submit(e1.id, [ann('10.1.0.0/24', '192.0.2.1', { asPath: seq(65001, 65009) })]);
  assert.deepEqual(announced(sent.get(e2.id)), ['10.1.0.0/24']);
  assert.equal(sent.get(e1.id), undefined);
  assert.equal(out.advertisedTo(e1.id), 0);
  sent.clear();
  // A shorter path from e2 becomes best: e1 gets it, e2 gets a withdraw of the old one.
  await rib.submit(e2.id, [ann('10.1.0.0/24', '192.0.2.2', { asPath: seq(65002) })]);
  assert.deepEqual(announced(sent.get(e1.id)), ['10.1.0.0/24']);
  assert.deepEqual(withdrawn(sent.get(e2.id)), ['10.1.0.0/24']);
});

test('iBGP-learned routes are not sent to iBGP peers unless we reflect', async () => {
  for (const reflector of [false, true]) {
    const { rib, out, sent } = setup(reflector);
    const client = src('10.0.0.3', 'ibgp', { rrClient: true, routerId: '3.3.3.3' });
    rib.addPeer({ source: client });
    out.join('10.0.0.4', { ...base, rrClient: true });
    out.join('10.0.0.5', base);
    await rib.submit(client.id, [ann('10.3.0.0/24', '10.0.0.3')]);
    if (!reflector) {
      assert.equal(sent.size, 0);
      continue;
    }
    const toClient = sent.get('10.0.0.4')![0]!.announce[0]!.attrs;
    assert.equal(toClient.originatorId, '3.3.3.3');
    assert.deepEqual(toClient.clusterList, ['10.0.0.100']);
    assert.equal(toClient.nextHop, '10.0.0.3');
    assert.deepEqual(announced(sent.get('10.0.0.5')), ['10.3.0.0/24']);
  }
});

test('a late joiner gets the group table; a new group is computed from the Loc-RIB', async () => {
  const { rib, out, sent } = setup();
  await rib.originate('ipv4-unicast', '10.244.1.0/26');
  out.join('10.0.0.1', base);
  assert.deepEqual(announced(sent.get('10.0.0.1')), ['10.244.1.0/26']);
  assert.equal(sent.get('10.0.0.1')![0]!.announce[0]!.attrs.nextHop, '10.0.0.100');
  out.join('10.0.0.2', base);
  assert.deepEqual(announced(sent.get('10.0.0.2')), ['10.244.1.0/26']);
  out.leave('10.0.0.1');
  out.leave('10.0.0.2');
  assert.equal(out.groupCount, 0);
  await rib.withdrawLocal('ipv4-unicast', '10.244.1.0/26');
  assert.equal(rib.interner.size, 0, 'group tables released their references');
});

test('ADD-PATH send: every path with its own local path id', async () => {
  const { rib, out, sent } = setup(true);
  const a = src('10.0.0.1', 'ibgp', { rrClient: true });
  const b = src('10.0.0.2', 'ibgp', { rrClient: true });
  rib.addPeer({ source: a });
  rib.addPeer({ source: b });
  out.join('10.0.0.9', { ...base, rrClient: true, addPathTx: true });
  await rib.submit(a.id, [ann('10.1.0.0/24', '10.0.0.1')]);
  await rib.submit(b.id, [ann('10.1.0.0/24', '10.0.0.2')]);
  const ids = (sent.get('10.0.0.9') ?? []).flatMap((x) => x.announce.flatMap((an) => an.nlri.map((n) => n.pathId)));
  assert.deepEqual(ids, [1, 2]);
  sent.clear();
  await rib.submit(a.id, [{ kind: 'withdraw', family: 'ipv4-unicast', prefix: '10.1.0.0/24' }]);
  assert.deepEqual(sent.get('10.0.0.9')!.flatMap((x) => x.withdraw), [{ family: 'ipv4-unicast', prefix: '10.1.0.0/24', pathId: 1 }]);
});

test('export policy and prefix decoration are applied per prefix', async () => {
  const { rib, out, sent } = setup();
  await rib.originate('ipv4-unicast', '10.244.1.0/26');
  await rib.originate('ipv4-unicast', '10.99.0.0/24');
  out.join('10.0.0.1', {
    ...base,
    policyId: 'p1',
    accept: (c) => c.prefix !== '10.99.0.0/24',
    decorate: (prefix, a) => (prefix.startsWith('10.244.') ? { ...a, communities: [0xfde80064] } : a),
  });
  const b = sent.get('10.0.0.1')!;
  assert.deepEqual(announced(b), ['10.244.1.0/26']);
  assert.deepEqual(b[0]!.announce[0]!.attrs.communities, [0xfde80064]);
});

test('a join over a large table is handed out in chunks that yield; changes meanwhile stay consistent', async () => {
  const rib = new Rib({ local });
  const out = new AdjRibOut(rib.loc, rib.interner, local, false, 10);
  rib.onChanges((c) => out.apply(c));
  const e = src('192.0.2.1', 'ebgp');
  rib.addPeer({ source: e });
  const ops: RibOp[] = [];
  for (let i = 0; i < 100; i++) ops.push(ann(`10.9.${i}.0/24`, '192.0.2.1', { asPath: seq(65000) }));
  await rib.submit(e.id, ops);
  const got = new Map<string, boolean>();
  let batches = 0;
  out.onBatch((_peer, b) => {
    batches++;
    for (const a of b.announce) for (const n of a.nlri) got.set(n.prefix, true);
    for (const w of b.withdraw) got.set(w.prefix, false);
  });
  const joined = out.join('10.0.0.1', base);
  assert.ok(got.size <= 10, 'only the first chunk is sent synchronously');
  // A withdraw and a new route while the table is still being handed out.
  const wd = rib.submit(e.id, [{ kind: 'withdraw', family: 'ipv4-unicast', prefix: '10.9.99.0/24' }, ann('10.8.0.0/24', '192.0.2.1', { asPath: seq(65000) })]);
  await joined;
  await wd;
  assert.ok(batches >= 10);
  const live = [...got].filter(([, v]) => v).map(([k]) => k);
  assert.equal(live.length, 100);
  assert.ok(!live.includes('10.9.99.0/24'));
  assert.ok(live.includes('10.8.0.0/24'));
  assert.equal(out.advertisedTo('10.0.0.1'), 100);
});
