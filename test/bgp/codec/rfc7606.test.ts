/**
 * RFC 7606 table: one malformed attribute per row, inside an otherwise valid UPDATE announcing
 * 10.0.0.0/8. Expected outcome: treat-as-withdraw, attribute-discard or session-reset (with the
 * NOTIFICATION subcode).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BgpError, decodeUpdate, type DecodeOptions } from '../../../bgp/codec/index.js';

type Outcome = 'withdraw' | 'discard' | 'reset' | 'ok';
interface Case {
  name: string;
  /** attribute bytes (hex) added after the base ORIGIN/AS_PATH/NEXT_HOP */
  attr: string;
  outcome: Outcome;
  subcode?: number;
  /** replace the base attributes entirely */
  base?: string;
  opts?: DecodeOptions;
  section: string;
}

const ORIGIN = '400101 00';
const AS_PATH = '400206 0201 0000fde9';
const NEXT_HOP = '400304 0a000001';
const BASE = ORIGIN + AS_PATH + NEXT_HOP;

const CASES: Case[] = [
  { name: 'valid MED', attr: '800404 00000005', outcome: 'ok', section: '-' },
  { name: 'origin value 3', base: '400101 03' + AS_PATH + NEXT_HOP, attr: '', outcome: 'withdraw', section: '7.1' },
  { name: 'origin length 2', base: '400102 0000' + AS_PATH + NEXT_HOP, attr: '', outcome: 'withdraw', section: '7.1' },
  { name: 'origin flagged optional', base: 'c00101 00' + AS_PATH + NEXT_HOP, attr: '', outcome: 'withdraw', section: '3c' },
  { name: 'as-path segment overrun', base: ORIGIN + '400206 0202 0000fde9' + NEXT_HOP, attr: '', outcome: 'withdraw', section: '7.2' },
  { name: 'as-path segment type 9', base: ORIGIN + '400206 0901 0000fde9' + NEXT_HOP, attr: '', outcome: 'withdraw', section: '7.2' },
  { name: 'as-path zero-length segment', base: ORIGIN + '400202 0200' + NEXT_HOP, attr: '', outcome: 'withdraw', section: '7.2' },
  { name: 'next hop length 5', base: ORIGIN + AS_PATH + '400305 0a00000100', attr: '', outcome: 'withdraw', section: '7.3' },
  { name: 'missing NEXT_HOP', base: ORIGIN + AS_PATH, attr: '', outcome: 'withdraw', section: '3d' },
  { name: 'missing ORIGIN', base: AS_PATH + NEXT_HOP, attr: '', outcome: 'withdraw', section: '3d' },
  { name: 'missing AS_PATH', base: ORIGIN + NEXT_HOP, attr: '', outcome: 'withdraw', section: '3d' },
  { name: 'MED length 3', attr: '800403 000005', outcome: 'withdraw', section: '7.4' },
  { name: 'LOCAL_PREF length 2', attr: '400502 0064', outcome: 'withdraw', section: '7.5' },
  { name: 'LOCAL_PREF from eBGP is dropped', attr: '400504 00000064', outcome: 'ok', opts: { ebgp: true }, section: '7.5' },
  { name: 'ATOMIC_AGGREGATE length 1', attr: '400601 00', outcome: 'discard', section: '7.6' },
  { name: 'AGGREGATOR length 7', attr: 'c00707 0000fde9 010203', outcome: 'discard', section: '7.7' },
  { name: 'AGGREGATOR flags well-known', attr: '400708 0000fde9 01020304', outcome: 'discard', section: '3c' },
  { name: 'COMMUNITIES length 3', attr: 'c00803 000001', outcome: 'withdraw', section: '7.8' },
  { name: 'ORIGINATOR_ID length 3', attr: '800903 010203', outcome: 'withdraw', section: '7.9' },
  { name: 'CLUSTER_LIST length 5', attr: '800a05 0102030405', outcome: 'withdraw', section: '7.10' },
  { name: 'EXT_COMMUNITIES length 7', attr: 'c01007 00000000000000', outcome: 'withdraw', section: '7.14' },
  { name: 'LARGE_COMMUNITY length 5', attr: 'c02005 0000000001', outcome: 'withdraw', section: 'RFC 8092 §6' },
  { name: 'AS4_PATH confed segment', base: ORIGIN + '400204 0201 fde9' + NEXT_HOP, attr: 'c01106 0301 0000fde9', outcome: 'discard', opts: { as4: false }, section: 'RFC 6793 §6' },
  { name: 'AS4_AGGREGATOR length 6', base: ORIGIN + '400204 0201 fde9' + NEXT_HOP, attr: 'c01206 fde9 01020304', outcome: 'discard', opts: { as4: false }, section: 'RFC 6793 §6' },
  { name: 'duplicate MED keeps the first', attr: '800404 00000005 800404 00000006', outcome: 'discard', section: '3g' },
  { name: 'MP_REACH twice', attr: '800e09 000101 04 0a000001 00 800e09 000101 04 0a000001 00', outcome: 'reset', subcode: 1, section: '3g' },
  { name: 'MP_REACH next hop length 5', attr: '800e0a 000201 05 0000000000 00 00', outcome: 'reset', section: '7.11' },
  { name: 'MP_REACH NLRI overrun', attr: '800e0b 000201 10 00000000000000000000000000000000 00 40 20', outcome: 'reset', section: '5.3' },
  { name: 'MP_UNREACH prefix length 129', attr: '800f05 000201 81 00', outcome: 'reset', section: '5.3' },
  { name: 'attribute overruns the list', attr: 'c00810 00000001', outcome: 'withdraw', section: '4' },
  { name: 'unknown well-known attribute', attr: '40f001 00', outcome: 'reset', subcode: 2, section: 'RFC 4271 §6.3' },
  { name: 'unknown optional transitive kept', attr: 'c0f002 0102', outcome: 'ok', section: 'RFC 4271 §5' },
  { name: 'MP_REACH of an unsupported family', attr: '800e09 0001 80 04 0a000001 00 00'.replace(/ /g, ''), outcome: 'reset', section: '7.11' },
];

function buildBody(c: Case): Uint8Array {
  let attrs = (c.base ?? BASE) + c.attr;
  attrs = attrs.replace(/ /g, '');
  const a = Buffer.from(attrs, 'hex');
  const nlri = Buffer.from('080a', 'hex');
  const body = Buffer.alloc(4 + a.length + nlri.length);
  body.writeUInt16BE(0, 0);
  body.writeUInt16BE(a.length, 2);
  a.copy(body, 4);
  nlri.copy(body, 4 + a.length);
  return body;
}

for (const c of CASES) {
  test(`RFC 7606 ${c.section}: ${c.name} → ${c.outcome}`, () => {
    const body = buildBody(c);
    if (c.outcome === 'reset') {
      assert.throws(
        () => decodeUpdate(body, c.opts),
        (e: unknown) => e instanceof BgpError && (e.action === 'session-reset' || e.action === 'afisafi-disable') && e.notifCode === 3 && (c.subcode === undefined || e.notifSubcode === c.subcode),
      );
      return;
    }
    const r = decodeUpdate(body, c.opts);
    if (c.outcome === 'withdraw') {
      assert.equal(r.treatAsWithdraw, true, JSON.stringify(r.notes));
      assert.deepEqual(r.update.announce, []);
      assert.deepEqual(r.update.withdraw.flatMap((g) => g.nlri.map((n) => n.prefix)), ['10.0.0.0/8']);
      assert.ok(r.notes.some((n) => n.action === 'treat-as-withdraw'));
    } else {
      assert.equal(r.treatAsWithdraw, false, JSON.stringify(r.notes));
      assert.deepEqual(r.update.announce.flatMap((g) => g.nlri.map((n) => n.prefix)), ['10.0.0.0/8']);
      if (c.outcome === 'discard') assert.ok(r.notes.some((n) => n.action === 'attribute-discard' && n.attrType !== undefined), JSON.stringify(r.notes));
      else assert.ok(r.notes.every((n) => n.action === 'ignored'));
    }
  });
}

test('RFC 7606: discarded attribute values are gone, the rest kept', () => {
  const r = decodeUpdate(buildBody({ name: '', attr: '400601 00 800404 00000009', outcome: 'discard', section: '' }));
  assert.equal(r.update.attributes.atomicAggregate, undefined);
  assert.equal(r.update.attributes.med, 9);
  const dup = decodeUpdate(buildBody({ name: '', attr: '800404 00000005 800404 00000006', outcome: 'discard', section: '' }));
  assert.equal(dup.update.attributes.med, 5);
  const ebgp = decodeUpdate(buildBody({ name: '', attr: '400504 00000064', outcome: 'ok', section: '' }), { ebgp: true });
  assert.equal(ebgp.update.attributes.localPref, undefined);
  const unk = decodeUpdate(buildBody({ name: '', attr: 'c0f002 0102', outcome: 'ok', section: '' }));
  assert.deepEqual(unk.update.attributes.unknown, [{ flags: 0xc0, type: 0xf0, value: new Uint8Array([1, 2]) }]);
});
