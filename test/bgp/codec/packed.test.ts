import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Reader } from '../../../bgp/codec/buffer.js';
import { BgpError, decodeNlriList, decodeUpdate, encodeUpdate, forEachV4, formatV4, packedNlri, type UpdateMessage } from '../../../bgp/codec/index.js';

const v4 = (nlri: Array<{ prefix: string; pathId?: number }>, withdraw: Array<{ prefix: string; pathId?: number }> = []): Omit<UpdateMessage, 'type'> => ({
  attributes: { origin: 0, asPath: [], nextHop: '10.0.0.1' },
  announce: [{ family: 'ipv4-unicast', nextHop: '10.0.0.1', nlri }],
  withdraw: withdraw.length ? [{ family: 'ipv4-unicast', nlri: withdraw }] : [],
});

test('IPv4 NLRI: kept as bytes, read as numbers (host bits cleared), and as the same Nlri list on demand', () => {
  const nlri = [{ prefix: '10.1.0.0/24' }, { prefix: '0.0.0.0/0' }, { prefix: '192.168.1.7/32' }, { prefix: '10.128.0.0/9' }];
  const r = decodeUpdate(encodeUpdate(v4(nlri, [{ prefix: '172.16.0.0/12' }])).subarray(19));
  const g = r.update.announce[0]!;
  const packed = packedNlri(g);
  assert.ok(packed);
  assert.equal(packed.count, 4);
  const seen: string[] = [];
  forEachV4(packed, 0, 10, (addr, len, pathId) => seen.push(`${formatV4(addr, len)}#${pathId}`));
  assert.deepEqual(seen, ['10.1.0.0/24#0', '0.0.0.0/0#0', '192.168.1.7/32#0', '10.128.0.0/9#0']);
  // In steps (the RIB's slices): an offset to go on from.
  const first: string[] = [];
  const off = forEachV4(packed, 0, 2, (a, l) => first.push(formatV4(a, l)));
  forEachV4(packed, off, 10, (a, l) => first.push(formatV4(a, l)));
  assert.deepEqual(first, nlri.map((n) => n.prefix));
  // Readers see ordinary objects.
  assert.deepEqual(r.update.announce, v4(nlri).announce);
  assert.deepEqual(r.update.withdraw, [{ family: 'ipv4-unicast', nlri: [{ prefix: '172.16.0.0/12' }] }]);
  assert.equal(packedNlri(r.update.withdraw[0]!)?.count, 1);
  assert.equal(JSON.parse(JSON.stringify(g)).nlri.length, 4);
  // Replacing the list drops the packed form (it would no longer say the same).
  g.nlri = [{ prefix: '10.9.0.0/16' }];
  assert.equal(packedNlri(g), undefined);
  assert.deepEqual(g.nlri, [{ prefix: '10.9.0.0/16' }]);
});

test('IPv4 NLRI with ADD-PATH: path ids read; host bits in the last byte cleared like decodeNlriList', () => {
  const opts = { addPath: ['ipv4-unicast' as const] };
  const bytes = Uint8Array.from([0, 0, 0, 9, 20, 10, 1, 0xff, 0, 0, 0, 1, 0]);
  const list = decodeNlriList(new Reader(bytes), 'ipv4-unicast', true);
  const r = decodeUpdate(Uint8Array.from([0, 0, 0, 0, ...bytes]), opts);
  assert.deepEqual(list, [{ prefix: '10.1.240.0/20', pathId: 9 }, { prefix: '0.0.0.0/0', pathId: 1 }]);
  // treat-as-withdraw (no attributes at all): the packed prefixes move to the withdrawals.
  assert.equal(r.treatAsWithdraw, true);
  assert.deepEqual(r.update.announce, []);
  assert.deepEqual(r.update.withdraw[0]?.nlri, list);
  assert.equal(packedNlri(r.update.withdraw[0]!)?.count, 2);
});

test('IPv4 NLRI errors are the same as before: too long, truncated, truncated path id', () => {
  for (const nlri of [[33, 1, 2, 3, 4, 5], [24, 10, 1], [0, 0, 0]]) {
    const addPath = nlri.length === 3 && nlri[0] === 0;
    const opts = addPath ? { addPath: ['ipv4-unicast' as const] } : {};
    const body = Uint8Array.from([0, 0, 0, 0, ...nlri]);
    let old: unknown;
    try {
      decodeNlriList(new Reader(Uint8Array.from(nlri)), 'ipv4-unicast', addPath);
    } catch (e) {
      old = e;
    }
    assert.ok(old instanceof BgpError);
    assert.throws(() => decodeUpdate(body, opts), (e: unknown) => e instanceof BgpError && e.notifCode === old.notifCode && e.notifSubcode === old.notifSubcode);
  }
});
