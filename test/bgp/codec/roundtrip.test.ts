/** Property: any UPDATE we can build encodes and decodes back to itself (both AS4 modes, ADD-PATH). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeUpdate, encodeUpdate, packUpdates, type UpdateMessage } from '../../../bgp/codec/index.js';
import type { AsPathSegment, Nlri, PathAttributes } from '../../../bgp/types.js';

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.'));
const ipv6 = fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }).map((g) => {
  const b = Buffer.alloc(16);
  g.forEach((v, i) => b.writeUInt16BE(v, i * 2));
  // canonical text via the URL parser
  return new URL(`http://[${g.map((x) => x.toString(16)).join(':')}]`).hostname.slice(1, -1);
});

function v4Prefix(): fc.Arbitrary<string> {
  return fc.tuple(u32, fc.integer({ min: 0, max: 32 })).map(([a, len]) => {
    const m = len === 0 ? 0 : (a & (0xffffffff << (32 - len))) >>> 0;
    return `${m >>> 24}.${(m >>> 16) & 255}.${(m >>> 8) & 255}.${m & 255}/${len}`;
  });
}
function v6Prefix(): fc.Arbitrary<string> {
  return fc.tuple(fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }), fc.integer({ min: 0, max: 128 })).map(([g, len]) => {
    const bits = g.map((v, i) => {
      const keep = Math.max(0, Math.min(16, len - i * 16));
      return keep === 0 ? 0 : v & ((0xffff << (16 - keep)) & 0xffff);
    });
    return `${new URL(`http://[${bits.map((x) => x.toString(16)).join(':')}]`).hostname.slice(1, -1)}/${len}`;
  });
}

const asn = fc.oneof(fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 65536, max: 0xffffffff }));
const segment: fc.Arbitrary<AsPathSegment> = fc.record({
  type: fc.constantFrom(1, 2) as fc.Arbitrary<1 | 2>,
  asns: fc.array(asn, { minLength: 1, maxLength: 4 }),
}, { noNullPrototype: true });

const attrs: fc.Arbitrary<PathAttributes> = fc.record(
  {
    origin: fc.constantFrom(0, 1, 2) as fc.Arbitrary<0 | 1 | 2>,
    asPath: fc.array(segment, { maxLength: 3 }),
    med: u32,
    localPref: u32,
    atomicAggregate: fc.constant(true),
    aggregator: fc.record({ asn, address: ipv4 }, { noNullPrototype: true }),
    communities: fc.array(u32, { minLength: 1, maxLength: 5 }),
    originatorId: ipv4,
    clusterList: fc.array(ipv4, { minLength: 1, maxLength: 3 }),
    extCommunities: fc.array(fc.uint8Array({ minLength: 8, maxLength: 8 }).map((b) => Buffer.from(b).toString('hex')), { minLength: 1, maxLength: 3 }),
    largeCommunities: fc.array(fc.tuple(u32, u32, u32), { minLength: 1, maxLength: 3 }),
  },
  { requiredKeys: ['origin', 'asPath'], noNullPrototype: true },
);

test('property: encodeUpdate → decodeUpdate is the identity (IPv4 + IPv6, AS4 on/off, ADD-PATH)', () => {
  fc.assert(
    fc.property(
      attrs,
      ipv4,
      fc.array(v4Prefix(), { maxLength: 20 }),
      fc.array(v4Prefix(), { maxLength: 20 }),
      ipv6,
      fc.array(v6Prefix(), { maxLength: 10 }),
      fc.boolean(),
      fc.boolean(),
      (a, nh, ann, wd, nh6, ann6, as4, addPath) => {
        const ap = addPath ? (['ipv4-unicast', 'ipv6-unicast'] as const) : ([] as const);
        const withId = (p: string, i: number): Nlri => (addPath ? { prefix: p, pathId: i } : { prefix: p });
        const attributes: PathAttributes = { ...a, nextHop: nh };
        const u: Omit<UpdateMessage, 'type'> = {
          attributes,
          announce: [
            ...(ann.length ? [{ family: 'ipv4-unicast' as const, nextHop: nh, nlri: ann.map(withId) }] : []),
            ...(ann6.length ? [{ family: 'ipv6-unicast' as const, nextHop: nh6, nlri: ann6.map(withId), mp: true }] : []),
          ],
          withdraw: wd.length ? [{ family: 'ipv4-unicast', nlri: wd.map(withId) }] : [],
        };
        const opts = { as4, addPath: [...ap] };
        const r = decodeUpdate(encodeUpdate(u, opts).subarray(19), opts);
        assert.equal(r.treatAsWithdraw, false, JSON.stringify(r.notes));
        // RFC 6793 §4.2.3: behind a 2-byte AGGREGATOR that is not AS_TRANS, AS4_PATH is ignored,
        // so the receiver sees the AS_TRANS-mapped path.
        const expected =
          !as4 && a.aggregator && a.aggregator.asn <= 0xffff && a.asPath
            ? { ...attributes, asPath: a.asPath.map((g) => ({ type: g.type, asns: g.asns.map((x) => (x > 0xffff ? 23456 : x)) })) }
            : attributes;
        assert.deepEqual(r.update.attributes, expected);
        assert.deepEqual(r.update.announce, u.announce);
        assert.deepEqual(r.update.withdraw, u.withdraw);
      },
    ),
    { numRuns: 3000, seed: 20260 },
  );
});

test('property: packUpdates splits losslessly for any attribute set', () => {
  fc.assert(
    fc.property(attrs, fc.array(v6Prefix(), { minLength: 1, maxLength: 600 }), (a, list) => {
      const nlri = list.map((prefix) => ({ prefix }));
      const msgs = packUpdates({ family: 'ipv6-unicast', attributes: a, nextHop: '2001:db8::1', nlri });
      const back = msgs.flatMap((m) => {
        assert.ok(m.length <= 4096);
        return decodeUpdate(m.subarray(19)).update.announce.flatMap((g) => g.nlri);
      });
      assert.deepEqual(back, nlri);
    }),
    { numRuns: 200, seed: 4760 },
  );
});
