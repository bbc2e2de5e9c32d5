// Decoders run over kernel replies captured from iproute2 (golden/*-dump.hex, error-*.hex) and over
// hand-made edge cases: attribute alignment and nesting, bounds, extended ACK, fuzzed input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  NLMSG,
  NLM_F,
  NetlinkDecodeError,
  NetlinkError,
  NetlinkInputError,
  RTN,
  Reader,
  Writer,
  decodeError,
  decodeEvent,
  decodeLink,
  decodeRoute,
  encodeRoute,
  parseAttrs,
  parseCidr,
  parseMessages,
  routeMatches,
  type NetlinkEvent,
  RTM,
} from '../../netlink/index.js';
import { loadHex } from './fixtures.js';

function events(name: string): NetlinkEvent[] {
  return parseMessages(loadHex(name))
    .map(decodeEvent)
    .filter((e): e is NetlinkEvent => e !== undefined);
}
const routes = (name: string) => events(name).flatMap((e) => (e.kind === 'route' ? [e.route] : []));
const links = (name: string) => events(name).flatMap((e) => (e.kind === 'link' ? [e.link] : []));

test('route dump reply: unicast, blackhole, unreachable, onlink, multipath, mtu, via inet6', () => {
  const rs = routes('route-dump');
  const by = (dst: string) => rs.find((r) => r.dst === dst);
  assert.equal(by('10.3.0.0/26')?.type, RTN.BLACKHOLE);
  assert.equal(by('10.3.0.0/26')?.protocol, 80);
  assert.equal(by('10.3.1.0/26')?.type, RTN.UNREACHABLE);
  assert.deepEqual([by('10.4.0.0/26')?.onlink, by('10.4.0.0/26')?.gw, by('10.4.0.0/26')?.oif], [true, '192.168.9.9', 4]);
  assert.deepEqual(
    by('10.5.0.0/24')?.multipath?.map((n) => [n.gw, n.oif, n.weight]),
    [
      ['10.1.0.2', 4, 1],
      ['10.1.0.3', 4, 2],
    ],
  );
  assert.equal(by('10.6.0.0/24')?.mtu, 1400);
  assert.equal(by('10.7.0.0/24')?.gw, 'fe80::1');
  assert.equal(by('10.1.0.0/24')?.prefsrc, '10.1.0.1');
  assert.ok(rs.every((r) => r.table === 254));
  assert.equal(rs.filter((r) => routeMatches(r, { protocol: 80 })).length, 2);
  assert.equal(rs.filter((r) => routeMatches(r, { table: 100 })).length, 0);
});

test('IPv6 route dump reply', () => {
  const r = routes('route-dump-v6').find((x) => x.dst === 'fd00:1::/64');
  assert.equal(r?.gw, 'fd00::2');
  assert.equal(r?.priority, 1024);
  assert.equal(r?.family, 10);
});

test('link dump reply: bridge, veth (peer in another netns), vxlan details', () => {
  const ls = links('link-dump');
  const by = (n: string) => ls.find((l) => l.name === n);
  assert.equal(by('tnlbr0')?.kind, 'bridge');
  assert.deepEqual([by('tnlv0')?.kind, by('tnlv0')?.mtu, by('tnlv0')?.address, by('tnlv0')?.up], ['veth', 1300, '66:00:00:00:00:01', true]);
  assert.equal(by('tnlv2')?.linkNetnsId, 0);
  assert.deepEqual(by('tnlvx0')?.vxlan, { id: 4096, local: '10.0.0.1', ttl: 0, learning: false, port: 4789 });
  assert.deepEqual(by('tnlvx1')?.vxlan, { id: 42, group: '239.1.1.1', linkIndex: 2, ttl: 0, learning: true, port: 4790 });
});

test('addr and neigh dump replies', () => {
  const addrs = events('addr-dump').flatMap((e) => (e.kind === 'addr' ? [e.addr] : []));
  assert.ok(addrs.some((a) => a.address === '10.1.0.1/24' && a.ifindex === 4 && a.label === 'tnlv0'));
  assert.ok(addrs.some((a) => a.address === 'fd00::1/64' && ((a.flags ?? 0) & 0x2) !== 0));
  const neighs = events('neigh-dump').flatMap((e) => (e.kind === 'neigh' ? [e.neigh] : []));
  assert.ok(neighs.some((n) => n.ip === '10.1.0.9' && n.mac === '66:11:22:33:44:55' && n.state === 0x80));
});

test('extended ACK: the kernel message is decoded (captured ENETUNREACH and "Unknown device type")', () => {
  const errs = (name: string) => parseMessages(loadHex(name)).filter((m) => m.type === NLMSG.ERROR).map(decodeError);
  const gw = errs('error-extack').find((e) => e.errno !== 0);
  assert.equal(gw?.errno, 101);
  assert.equal(gw?.extAckMsg, 'Nexthop has invalid gateway');
  assert.equal(gw?.request.type, RTM.NEWROUTE);
  const ipip = errs('error-ipip').find((e) => e.errno === 95);
  assert.equal(ipip?.extAckMsg, 'Unknown device type');
  const err = new NetlinkError(ipip?.errno ?? 0, { op: 'RTM_NEWLINK ipip', extAck: ipip?.extAckMsg });
  assert.equal(err.code, 'EOPNOTSUPP');
  assert.match(err.message, /Unknown device type/);
});

test('extended ACK with a capped request and an offset (hand-built)', () => {
  const w = new Writer();
  const m = w.beginMessage(NLMSG.ERROR, NLM_F.CAPPED | NLM_F.ACK_TLVS, 7);
  w.i32(-17); // EEXIST
  w.u32(40).u16(RTM.NEWROUTE).u16(0x605).u32(7).u32(0); // capped: header only
  w.attrCString(1, 'File exists here');
  w.attrU32(2, 28);
  w.endMessage(m);
  const [msg] = parseMessages(w.finish());
  assert.ok(msg);
  const e = decodeError(msg);
  assert.deepEqual(e, { errno: 17, request: { len: 40, type: RTM.NEWROUTE, flags: 0x605, seq: 7 }, extAckMsg: 'File exists here', extAckOffset: 28 });
});

test('attributes: 4-byte alignment, nested lengths include children padding', () => {
  const w = new Writer(8);
  const outer = w.beginAttr(18);
  w.attrString(1, 'abcde'); // len 9, padded to 12
  w.attrU8(7, 1); // len 5, padded to 8
  w.endAttr(outer);
  const b = w.finish();
  assert.equal(b.length, 4 + 12 + 8);
  assert.equal(b.readUInt16LE(0), 24);
  const [nest] = parseAttrs(new Reader(b));
  assert.ok(nest);
  const inner = parseAttrs(new Reader(nest.data));
  assert.deepEqual(
    inner.map((a) => [a.type, a.data.toString('hex')]),
    [
      [1, Buffer.from('abcde').toString('hex')],
      [7, '01'],
    ],
  );
});

test('bounds: truncated headers and attributes throw NetlinkDecodeError', () => {
  assert.throws(() => parseMessages(Buffer.from('ff000000100000000000000000000000', 'hex')), NetlinkDecodeError);
  assert.throws(() => parseAttrs(new Reader(Buffer.from('0800010001', 'hex'))), NetlinkDecodeError);
  assert.throws(() => decodeLink(Buffer.alloc(8)), NetlinkDecodeError);
  assert.throws(() => new Reader(Buffer.alloc(2)).u32(), NetlinkDecodeError);
});

test('bad input to encoders is a NetlinkInputError', () => {
  const w = new Writer();
  assert.throws(() => encodeRoute(w, 1, RTM.NEWROUTE, 0, { dst: '10.0.0.0/33' }), NetlinkInputError);
  assert.throws(() => encodeRoute(w, 1, RTM.NEWROUTE, 0, { dst: 'nope' }), NetlinkInputError);
  assert.throws(() => encodeRoute(w, 1, RTM.NEWROUTE, 0, {}), NetlinkInputError);
  assert.throws(() => parseCidr('fd00::/129'), NetlinkInputError);
});

test('route encode/decode round trip (property)', () => {
  const v4 = fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 })).map(([a, b, c]) => `10.${a}.${b}.${c}`);
  fc.assert(
    fc.property(v4, fc.integer({ min: 1, max: 32 }), v4, fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 0, max: 5000 }), fc.boolean(), (dstIp, len, gw, oif, table, onlink) => {
      const w = new Writer();
      encodeRoute(w, 9, RTM.NEWROUTE, NLM_F.ACK, { dst: `${dstIp}/${len}`, gw, oif, table, protocol: 80, onlink, mtu: 1400 });
      const [m] = parseMessages(w.finish());
      assert.ok(m);
      const r = decodeRoute(m.payload);
      assert.equal(r.dst, `${dstIp}/${len}`);
      assert.deepEqual([r.gw, r.oif, r.table, r.protocol, r.onlink, r.mtu], [gw, oif, table, 80, onlink, 1400]);
    }),
  );
});

test('fuzz: decoders only ever throw NetlinkDecodeError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 16, max: 30 }), (bytes, type) => {
      const w = new Writer();
      const m = w.beginMessage(type, 0, 1);
      w.bytes(bytes);
      w.endMessage(m);
      try {
        for (const msg of parseMessages(w.finish())) decodeEvent(msg);
      } catch (err) {
        if (!(err instanceof NetlinkDecodeError)) throw err;
      }
    }),
  );
});
