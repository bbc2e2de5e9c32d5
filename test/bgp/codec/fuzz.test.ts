/**
 * Fuzz: every stream of the corpi corpus (shared/testdata/bgp/fuzz) and ≥ 100k fast-check
 * mutations of valid messages go through the framer and the decoders. The only exception allowed
 * out is a typed BgpError.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import fc from 'fast-check';
import { sharedBgpData } from './data.js';
import {
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
  type DecodeOptions,
} from '../../../bgp/codec/index.js';

const OPTION_SETS: DecodeOptions[] = [
  {},
  { as4: false },
  { addPath: ['ipv4-unicast', 'ipv6-unicast'], extendedMessage: true },
  { ebgp: true, as4: false, addPath: ['ipv6-unicast'] },
];

/** Feed a stream the way a peer sends it; returns how many messages decoded. Throws only non-BgpError. */
function feed(stream: Uint8Array, opts: DecodeOptions): number {
  const framer = new MessageFramer(opts);
  let n = 0;
  try {
    for (const m of framer.push(stream)) {
      try {
        decodeMessage(m, opts);
        n++;
      } catch (e) {
        if (!(e instanceof BgpError)) throw e;
      }
    }
  } catch (e) {
    if (!(e instanceof BgpError)) throw e;
  }
  return n;
}

const fuzzDir = sharedBgpData('fuzz');

test('corpi corpus: all 3,561 streams decode or fail with a typed BgpError', { skip: fuzzDir ? false : 'shared test data not found' }, () => {
  const files = readdirSync(fuzzDir!);
  assert.equal(files.length, 3561);
  let decoded = 0;
  for (const f of files) {
    const data = readFileSync(`${fuzzDir}/${f}`);
    for (const o of OPTION_SETS) decoded += feed(data, o);
  }
  assert.ok(decoded > 1000, `only ${decoded} messages decoded: the corpus was not understood`);
});

function seeds(): Uint8Array[] {
  const s: Uint8Array[] = [
    encodeKeepalive(),
    encodeNotification(6, 2, undefined, 'bye'),
    encodeRouteRefresh('ipv4-unicast', 1),
    buildEndOfRib('ipv6-unicast'),
    encodeOpen({
      version: 4,
      myAs: 23456,
      holdTime: 90,
      bgpId: '10.0.0.1',
      capabilities: [
        { kind: 'multiprotocol', afi: 1, safi: 1 },
        { kind: 'graceful-restart', restarting: false, notification: false, restartTime: 120, families: [{ afi: 1, safi: 1, forwarding: true }] },
        { kind: 'as4', asn: 4200000000 },
        { kind: 'add-path', families: [{ afi: 1, safi: 1, mode: 3 }] },
        { kind: 'fqdn', hostname: 'h', domain: 'd' },
      ],
    }),
    encodeUpdate({
      attributes: {
        origin: 0,
        asPath: [{ type: 2, asns: [1, 70000] }, { type: 1, asns: [5, 6] }],
        nextHop: '10.0.0.1',
        med: 1,
        localPref: 2,
        atomicAggregate: true,
        aggregator: { asn: 70000, address: '1.1.1.1' },
        communities: [1],
        originatorId: '2.2.2.2',
        clusterList: ['3.3.3.3'],
        extCommunities: ['0002000100000001'],
        largeCommunities: [[1, 2, 3]],
        unknown: [{ flags: 0xc0, type: 0xf0, value: new Uint8Array([9]) }],
      },
      announce: [{ family: 'ipv4-unicast', nextHop: '10.0.0.1', nlri: [{ prefix: '10.1.0.0/16' }, { prefix: '192.168.1.128/25' }] }],
      withdraw: [{ family: 'ipv4-unicast', nlri: [{ prefix: '10.2.0.0/16' }] }],
    }, { as4: false }),
    encodeUpdate({
      attributes: { origin: 0, asPath: [] },
      announce: [{ family: 'ipv6-unicast', nextHop: '2001:db8::1', linkLocalNextHop: 'fe80::1', nlri: [{ prefix: '2001:db8::/32' }], mp: true }],
      withdraw: [{ family: 'ipv6-unicast', nlri: [{ prefix: 'fd00::/8' }], mp: true }],
    }),
  ];
  if (fuzzDir) {
    const files = readdirSync(fuzzDir).slice(0, 400);
    for (const f of files) s.push(new Uint8Array(readFileSync(`${fuzzDir}/${f}`)));
  }
  return s;
}

type Edit = { at: number; value: number; op: 'set' | 'ins' | 'del' | 'trunc' };

function mutate(seed: Uint8Array, edits: Edit[], fixLength: boolean): Uint8Array {
  let b = Array.from(seed);
  for (const e of edits) {
    const at = b.length ? e.at % (b.length + 1) : 0;
    if (e.op === 'set' && at < b.length) b[at] = e.value;
    else if (e.op === 'ins') b.splice(at, 0, e.value);
    else if (e.op === 'del') b.splice(at, 1);
    else if (e.op === 'trunc') b = b.slice(0, at);
  }
  if (fixLength && b.length >= 19 && b.length <= 0xffff) {
    b[16] = b.length >> 8;
    b[17] = b.length & 0xff;
  }
  return Uint8Array.from(b);
}

const editArb = fc.record({
  at: fc.nat({ max: 5000 }),
  value: fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0, 1, 2, 0x7f, 0x80, 0xff)),
  op: fc.constantFrom<Edit['op']>('set', 'set', 'set', 'ins', 'del', 'trunc'),
});

test('fast-check: 120k mutated messages never throw anything but BgpError', () => {
  const s = seeds();
  let runs = 0;
  for (const [i, opts] of OPTION_SETS.entries()) {
    fc.assert(
      fc.property(fc.nat({ max: s.length - 1 }), fc.array(editArb, { minLength: 1, maxLength: 6 }), fc.boolean(), (k, edits, fix) => {
        runs++;
        const m = mutate(s[k]!, edits, fix);
        feed(m, opts);
      }),
      { numRuns: 25_000, seed: 7606 + i },
    );
  }
  // raw bodies straight into the body decoders (no header check in front)
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 96 }), fc.constantFrom(...OPTION_SETS), (body, opts) => {
      runs++;
      for (const f of [() => decodeUpdate(body, opts), () => decodeOpen(body)]) {
        try {
          f();
        } catch (e) {
          if (!(e instanceof BgpError)) throw e;
        }
      }
    }),
    { numRuns: 20_000, seed: 4271 },
  );
  assert.ok(runs >= 100_000, `${runs} generated cases`);
});
