import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AS_TRANS,
  BgpError,
  MessageFramer,
  buildEndOfRib,
  decodeMessage,
  decodeOpen,
  decodeUpdate,
  encodeKeepalive,
  encodeNotification,
  encodeOpen,
  encodeRouteRefresh,
  encodeUpdate,
  notificationName,
  packUpdates,
  packWithdrawals,
  toHex,
  type Capability,
  type UpdateMessage,
} from '../../../bgp/codec/index.js';
import type { Nlri } from '../../../bgp/types.js';

const hex = (s: string): Uint8Array => Buffer.from(s.replace(/[\s:]/g, ''), 'hex');
const MARKER = 'ff'.repeat(16);

test('KEEPALIVE is exactly 19 bytes; a longer one is 1/2', () => {
  const k = encodeKeepalive();
  assert.equal(toHex(k), `${MARKER}001304`);
  assert.deepEqual(decodeMessage(k).message, { type: 'keepalive' });
  const bad = hex(`${MARKER}001404 00`);
  assert.throws(() => decodeMessage(bad), (e: unknown) => e instanceof BgpError && e.notifCode === 1 && e.notifSubcode === 2 && toHex(e.data) === '0014');
});

test('header errors: marker 1/1, bad type 1/3 with the type as data, length > 4096 1/2', () => {
  const m = encodeKeepalive();
  m[3] = 0;
  assert.throws(() => decodeMessage(m), (e: unknown) => e instanceof BgpError && e.notifCode === 1 && e.notifSubcode === 1);
  assert.throws(() => decodeMessage(hex(`${MARKER}001309`)), (e: unknown) => e instanceof BgpError && e.notifSubcode === 3 && toHex(e.data) === '09');
  assert.throws(() => new MessageFramer().push(hex(`${MARKER}100102`)), (e: unknown) => e instanceof BgpError && e.notifSubcode === 2);
  // with extended messages the same length is fine (and still waits for the body)
  assert.deepEqual(new MessageFramer({ extendedMessage: true }).push(hex(`${MARKER}100102`)), []);
});

test('framer splits merged and fragmented messages', () => {
  const ka = encodeKeepalive();
  const eor = buildEndOfRib('ipv4-unicast');
  const all = new Uint8Array([...ka, ...eor, ...ka]);
  const f = new MessageFramer();
  const out: Uint8Array[] = [];
  for (let i = 0; i < all.length; i += 7) out.push(...f.push(all.subarray(i, i + 7)));
  assert.equal(out.length, 3);
  assert.deepEqual(out[1], eor);
  assert.equal(f.pending, 0);
});

test('OPEN round trip with every capability we speak', () => {
  const caps: Capability[] = [
    { kind: 'multiprotocol', afi: 1, safi: 1 },
    { kind: 'multiprotocol', afi: 2, safi: 1 },
    { kind: 'route-refresh' },
    { kind: 'enhanced-route-refresh' },
    { kind: 'extended-next-hop', tuples: [{ afi: 1, safi: 1, nextHopAfi: 2 }] },
    { kind: 'extended-message' },
    { kind: 'graceful-restart', restarting: true, notification: false, restartTime: 120, families: [{ afi: 1, safi: 1, forwarding: true }] },
    { kind: 'as4', asn: 4200000001 },
    { kind: 'add-path', families: [{ afi: 1, safi: 1, mode: 3 }] },
    { kind: 'llgr', value: new Uint8Array([0, 1, 1, 0x80, 0, 0, 10]) },
    { kind: 'fqdn', hostname: 'node-1', domain: 'cluster.local' },
    { kind: 'unknown', code: 200, value: new Uint8Array([1, 2]) },
  ];
  const bytes = encodeOpen({ version: 4, myAs: AS_TRANS, holdTime: 90, bgpId: '10.0.0.1', capabilities: caps });
  const m = decodeMessage(bytes).message;
  assert.deepEqual(m, { type: 'open', version: 4, myAs: AS_TRANS, holdTime: 90, bgpId: '10.0.0.1', capabilities: caps });
  // one capabilities parameter (BIRD style), standard 1-byte length
  assert.equal(bytes[19 + 9]! < 255, true);
  // GR flags: R bit + 120 s; family F bit
  assert.ok(toHex(bytes).includes('40068078000101' + '80'));
});

test('OPEN: RFC 9072 extended parameters are sent only when needed and accepted both ways', () => {
  const many: Capability[] = Array.from({ length: 70 }, (_, i) => ({ kind: 'multiprotocol', afi: 1, safi: i + 1 }) as Capability);
  const bytes = encodeOpen({ version: 4, myAs: 65001, holdTime: 90, bgpId: '1.1.1.1', capabilities: many });
  assert.equal(bytes[28], 255);
  assert.equal(bytes[29], 255);
  const m = decodeMessage(bytes).message;
  assert.equal(m.type === 'open' && m.capabilities.length, 70);
  // one parameter per capability (as ExaBGP/mini-tools send) also decodes
  const perParam = hex('04 fde8 005a 01010101 14 0206 0104 00010001 0206 4104 0000fde8 0202 0200'.replace(/ /g, ''));
  const o = decodeOpen(perParam.subarray(0));
  assert.deepEqual(o.capabilities.map((c) => c.kind), ['multiprotocol', 'as4', 'route-refresh']);
});

test('OPEN: truncated extended length (CVE-2022-40302 shape) is a typed error', () => {
  for (const body of ['04fde8005a01010101ff', '04fde8005a01010101ffff', '04fde8005a01010101ffff00', '04fde8005a01010101ffff0005020003']) {
    assert.throws(() => decodeOpen(hex(body)), BgpError, body);
  }
  // unknown optional parameter type → 2/4
  assert.throws(() => decodeOpen(hex('04fde8005a01010101 03 0101 00'.replace(/ /g, ''))), (e: unknown) => e instanceof BgpError && e.notifCode === 2 && e.notifSubcode === 4);
});

test('NOTIFICATION with RFC 9003 shutdown communication and names', () => {
  const b = encodeNotification(6, 2, undefined, 'maintenance: back in 5 min');
  const m = decodeMessage(b).message;
  assert.equal(m.type === 'notification' && m.shutdownMessage, 'maintenance: back in 5 min');
  assert.equal(notificationName(6, 7), 'Cease / Connection Collision Resolution (6/7)');
  assert.equal(notificationName(2, 11), 'OPEN Message Error / Role Mismatch (2/11)');
  assert.equal(notificationName(4, 0), 'Hold Timer Expired (4/0)');
  const long = encodeNotification(6, 4, undefined, 'é'.repeat(200));
  const lm = decodeMessage(long).message;
  assert.ok(lm.type === 'notification' && lm.data[0]! <= 255 && lm.shutdownMessage?.length === 127);
});

test('ROUTE-REFRESH with BoRR/EoRR; bad length is 7/1', () => {
  for (const st of [0, 1, 2]) {
    const m = decodeMessage(encodeRouteRefresh('ipv6-unicast', st)).message;
    assert.deepEqual(m, { type: 'route-refresh', afi: 2, safi: 1, subtype: st, family: 'ipv6-unicast' });
  }
  assert.throws(() => decodeMessage(hex(`${MARKER}001805 0001000100`.replace(/ /g, ''))), (e: unknown) => e instanceof BgpError && e.notifCode === 7 && e.notifSubcode === 1);
});

test('End-of-RIB for ipv4, ipv6 and a foreign family is built and detected', () => {
  assert.equal(toHex(buildEndOfRib('ipv4-unicast')), `${MARKER}00170200000000`);
  assert.equal(toHex(buildEndOfRib('ipv6-unicast')), `${MARKER}001e0200000007900f0003000201`);
  for (const [f, afi, safi] of [['ipv4-unicast', 1, 1], ['ipv6-unicast', 2, 1], [undefined, 1, 133]] as const) {
    const b = buildEndOfRib(f ?? { afi, safi });
    const m = decodeMessage(b).message as UpdateMessage;
    assert.deepEqual(m.endOfRib, { afi, safi, family: f });
  }
});

const baseAttrs = { origin: 0 as const, asPath: [{ type: 2 as const, asns: [65001, 4200000001] }], nextHop: '10.0.0.1', localPref: 100 };

test('UPDATE round trip: ipv4 classic + all attributes', () => {
  const u: Omit<UpdateMessage, 'type'> = {
    attributes: {
      ...baseAttrs,
      med: 5,
      atomicAggregate: true,
      aggregator: { asn: 4200000001, address: '1.2.3.4' },
      communities: [0xfde80064, 0xffffff01],
      originatorId: '9.9.9.9',
      clusterList: ['1.1.1.1', '2.2.2.2'],
      extCommunities: ['0002fde800000064'],
      largeCommunities: [[4200000001, 1, 2]],
      unknown: [{ flags: 0xc0, type: 0xf0, value: new Uint8Array([1, 2]) }],
    },
    announce: [{ family: 'ipv4-unicast', nextHop: '10.0.0.1', nlri: [{ prefix: '10.244.1.0/26' }, { prefix: '0.0.0.0/0' }] }],
    withdraw: [{ family: 'ipv4-unicast', nlri: [{ prefix: '10.9.0.0/16' }] }],
  };
  const r = decodeUpdate(encodeUpdate(u).subarray(19));
  assert.equal(r.treatAsWithdraw, false);
  assert.deepEqual(r.notes, []);
  const a = r.update.attributes;
  assert.deepEqual(a.unknown, [{ flags: 0xe0, type: 0xf0, value: new Uint8Array([1, 2]) }], 'passed on with the Partial bit');
  assert.deepEqual({ ...a, unknown: undefined }, { ...u.attributes, unknown: undefined });
  assert.deepEqual(r.update.announce, u.announce);
  assert.deepEqual(r.update.withdraw, u.withdraw);
});

test('UPDATE: ipv6 MP_REACH with 32-byte next hop, MP_UNREACH, ADD-PATH path ids', () => {
  const u: Omit<UpdateMessage, 'type'> = {
    attributes: { origin: 0, asPath: [] },
    announce: [{ family: 'ipv6-unicast', nextHop: '2001:db8::1', linkLocalNextHop: 'fe80::1', nlri: [{ prefix: '2001:db8:1::/48', pathId: 7 }], mp: true }],
    withdraw: [{ family: 'ipv6-unicast', nlri: [{ prefix: 'fd00::/8', pathId: 1 }], mp: true }],
  };
  const opts = { addPath: ['ipv6-unicast' as const] };
  const r = decodeUpdate(encodeUpdate(u, opts).subarray(19), opts);
  assert.deepEqual(r.update.announce, u.announce);
  assert.deepEqual(r.update.withdraw, u.withdraw);
  // without the add-path option the same bytes mean something else (path id is read as prefix) → typed error or other prefixes
  try {
    const x = decodeUpdate(encodeUpdate(u, opts).subarray(19));
    assert.notDeepEqual(x.update.announce, u.announce);
  } catch (e) {
    assert.ok(e instanceof BgpError);
  }
});

test('UPDATE: ipv4 NLRI with an IPv6 next hop (RFC 8950) goes in MP_REACH', () => {
  const u: Omit<UpdateMessage, 'type'> = {
    attributes: { origin: 0, asPath: [] },
    announce: [{ family: 'ipv4-unicast', nextHop: '2001:db8::1', nlri: [{ prefix: '10.1.0.0/24' }], mp: true }],
    withdraw: [],
  };
  const r = decodeUpdate(encodeUpdate(u).subarray(19));
  assert.deepEqual(r.update.announce, u.announce);
});

test('AS4: encoding for a 2-byte peer uses AS_TRANS + AS4_PATH/AS4_AGGREGATOR, decoding merges back', () => {
  const attrs = { ...baseAttrs, aggregator: { asn: 4200000001, address: '1.2.3.4' } };
  const u: Omit<UpdateMessage, 'type'> = { attributes: attrs, announce: [{ family: 'ipv4-unicast', nextHop: '10.0.0.1', nlri: [{ prefix: '10.0.0.0/8' }] }], withdraw: [] };
  const bytes = encodeUpdate(u, { as4: false });
  const h = toHex(bytes);
  assert.ok(h.includes('40020602 02fde95ba0'.replace(/ /g, '')), 'AS_PATH 2-byte with AS_TRANS (23456 = 0x5ba0)');
  assert.ok(h.includes('c0110a0202 0000fde9 fa56ea01'.replace(/ /g, '')), 'AS4_PATH with the real ASNs');
  assert.ok(h.includes('c01208fa56ea0101020304'), 'AS4_AGGREGATOR');
  const r = decodeUpdate(bytes.subarray(19), { as4: false });
  assert.deepEqual(r.update.attributes.asPath, attrs.asPath);
  assert.deepEqual(r.update.attributes.aggregator, attrs.aggregator);
  // a 2-byte-only path needs no AS4_PATH (maghemite #294)
  const small = encodeUpdate({ ...u, attributes: { ...baseAttrs, asPath: [{ type: 2, asns: [65001] }] } }, { as4: false });
  assert.ok(!toHex(small).includes('c011'));
});

test('AS4 merge keeps leading AS_PATH ASNs (RFC 6793 §4.2.3) and ignores a longer AS4_PATH', () => {
  // AS_PATH: SEQ [100 23456 23456], AS4_PATH: SEQ [4200000001 4200000002]
  const body = hex(
    '0000 0023 400101 00 40020802030064 5ba0 5ba0 400304 0a000001 c0110a0202 fa56ea01 fa56ea02 08 0a'.replace(/ /g, ''),
  );
  const r = decodeUpdate(body, { as4: false });
  assert.deepEqual(r.update.attributes.asPath, [{ type: 2, asns: [100] }, { type: 2, asns: [4200000001, 4200000002] }]);
  const longer = hex('0000 002b 400101 00 40020802030064 5ba0 5ba0 400304 0a000001 c011120204 fa56ea01 fa56ea02 fa56ea03 fa56ea04 08 0a'.replace(/ /g, ''));
  const r2 = decodeUpdate(longer, { as4: false });
  assert.deepEqual(r2.update.attributes.asPath, [{ type: 2, asns: [100, 23456, 23456] }]);
});

test('packUpdates: many NLRI share one attribute block, every message ≤ 4096, nothing lost', () => {
  const nlri: Nlri[] = [];
  for (let i = 0; i < 3000; i++) nlri.push({ prefix: `10.${i >> 8}.${i & 255}.0/24`, pathId: i });
  const opts = { addPath: ['ipv4-unicast' as const, 'ipv6-unicast' as const] };
  for (const [family, nextHop, list] of [
    ['ipv4-unicast', '10.0.0.1', nlri],
    ['ipv6-unicast', '2001:db8::1', nlri.map((n, i) => ({ prefix: `2001:db8:${(i + 1).toString(16)}::/48`, pathId: n.pathId }))],
  ] as const) {
    const msgs = packUpdates({ family, attributes: baseAttrs, nextHop, nlri: list }, opts);
    assert.ok(msgs.length > 1 && msgs.length < 30, `${family}: ${msgs.length} messages`);
    const back: Nlri[] = [];
    for (const m of msgs) {
      assert.ok(m.length <= 4096);
      const r = decodeUpdate(m.subarray(19), opts);
      assert.equal(r.treatAsWithdraw, false);
      for (const g of r.update.announce) {
        assert.equal(g.nextHop, nextHop);
        back.push(...g.nlri);
      }
    }
    assert.deepEqual(back, list);
    const wd = packWithdrawals(family, list, opts);
    const wback = wd.flatMap((m) => decodeUpdate(m.subarray(19), opts).update.withdraw.flatMap((g) => g.nlri));
    assert.deepEqual(wback, list);
  }
});

test('framer returns the whole messages before a bad header, then reports the error', () => {
  const f = new MessageFramer();
  const bad = hex(`${'00'.repeat(16)}001304`);
  const out = f.push(new Uint8Array([...encodeKeepalive(), ...bad]));
  assert.equal(out.length, 1);
  assert.ok(f.failed instanceof BgpError && f.failed.notifSubcode === 1);
  assert.throws(() => f.push(encodeKeepalive()), BgpError);
});
