/**
 * Golden vectors: every `raw` message of ExaBGP's qa/encoding *.ci files is decoded, compared with
 * ExaBGP's JSON meaning for ipv4/ipv6 unicast, rejected with a typed error for other families, and
 * re-encoded byte-identically.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { sharedBgpData } from './data.js';
import {
  BgpError,
  UnsupportedFamilyError,
  decodeMessage,
  encodeUpdate,
  toHex,
  type DecodeOptions,
  type UpdateMessage,
} from '../../../bgp/codec/index.js';
import type { Family } from '../../../bgp/types.js';

interface Vector {
  file: string;
  line: number;
  hex: string;
  json?: JsonUpdate;
}
interface JsonUpdate {
  attribute?: Record<string, unknown>;
  announce?: Record<string, Record<string, Array<{ nlri?: string; 'path-information'?: string }>>>;
  withdraw?: Record<string, Array<{ nlri?: string; 'path-information'?: string }>>;
}

const dir = sharedBgpData('exabgp-encoding');

function loadVectors(): Vector[] {
  const out: Vector[] = [];
  for (const file of readdirSync(dir!).filter((f) => f.endsWith('.ci')).sort()) {
    const lines = readFileSync(`${dir}/${file}`, 'utf8').split('\n');
    let last: Vector | undefined;
    lines.forEach((l, i) => {
      const raw = /^\d+:raw:(.*)$/.exec(l);
      if (raw) {
        last = { file, line: i + 1, hex: raw[1]!.replace(/:/g, '').toLowerCase() };
        out.push(last);
        return;
      }
      const js = /^\d+:json:(.*)$/.exec(l);
      if (js && last) {
        const j = JSON.parse(js[1]!) as { neighbor: { message: { update?: JsonUpdate } } };
        if (j.neighbor.message.update) last.json = j.neighbor.message.update;
      }
    });
  }
  return out;
}

const FAMILY: Record<string, Family> = { 'ipv4 unicast': 'ipv4-unicast', 'ipv6 unicast': 'ipv6-unicast' };

function optionsFor(file: string, vectors: Vector[]): DecodeOptions {
  const addPath = vectors.some((v) => v.file === file && JSON.stringify(v.json ?? {}).includes('path-information'));
  return { as4: file !== 'conf-no-asn4.ci', addPath: addPath ? ['ipv4-unicast', 'ipv6-unicast'] : [] };
}

function pathIdOf(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const p = s.split('.').map(Number);
  return ((p[0]! << 24) >>> 0) + (p[1]! << 16) + (p[2]! << 8) + p[3]!;
}

const SEGMENT: Record<string, number> = { 'as-set': 1, 'as-sequence': 2, 'as-confed-sequence': 3, 'as-confed-set': 4, 'confed-sequence': 3, 'confed-set': 4 };

function compareMeaning(v: Vector, u: UpdateMessage): void {
  const j = v.json!;
  const where = `${v.file}:${v.line}`;
  const a = u.attributes;
  const ja = j.attribute ?? {};
  const ORIGINS: Record<string, number> = { igp: 0, egp: 1, incomplete: 2 };
  if ('origin' in ja) assert.equal(a.origin, ORIGINS[ja.origin as string], `${where} origin`);
  if ('local-preference' in ja) assert.equal(a.localPref, ja['local-preference'], `${where} local-pref`);
  if ('med' in ja) assert.equal(a.med, ja.med, `${where} med`);
  if ('community' in ja) {
    assert.deepEqual(a.communities, (ja.community as Array<[number, number]>).map(([x, y]) => ((x << 16) >>> 0) + y), `${where} communities`);
  }
  if ('large-community' in ja) assert.deepEqual(a.largeCommunities, ja['large-community'], `${where} large communities`);
  if ('originator-id' in ja) assert.equal(a.originatorId, ja['originator-id'], `${where} originator id`);
  if ('cluster-list' in ja) assert.deepEqual(a.clusterList, ja['cluster-list'], `${where} cluster list`);
  if ('extended-community' in ja) {
    // JSON numbers above 2^53 lost precision in ExaBGP's output: compare the exact ones only.
    const list = ja['extended-community'] as Array<{ value: number }>;
    assert.equal(a.extCommunities?.length, list.length, `${where} ext community count`);
    list.forEach((e, i) => {
      if (Number.isSafeInteger(e.value)) assert.equal(a.extCommunities?.[i], BigInt(e.value).toString(16).padStart(16, '0'), `${where} ext community`);
    });
  }
  if ('as-path' in ja) {
    const segs = Object.values(ja['as-path'] as Record<string, { element: string; value: number[] }>);
    assert.deepEqual(
      a.asPath,
      segs.map((s) => ({ type: SEGMENT[s.element], asns: s.value })),
      `${where} as-path`,
    );
  }
  const announced = new Map<string, Array<{ nh: string; prefix: string; pathId: number | undefined }>>();
  for (const [fam, byNh] of Object.entries(j.announce ?? {})) {
    for (const [nh, list] of Object.entries(byNh)) {
      for (const n of list) {
        const f = FAMILY[fam]!;
        if (!announced.has(f)) announced.set(f, []);
        announced.get(f)!.push({ nh, prefix: n.nlri!, pathId: pathIdOf(n['path-information']) });
      }
    }
  }
  const got = new Map<string, Array<{ nh: string; prefix: string; pathId: number | undefined }>>();
  for (const g of u.announce) {
    for (const n of g.nlri) {
      if (!got.has(g.family)) got.set(g.family, []);
      got.get(g.family)!.push({ nh: g.nextHop, prefix: n.prefix, pathId: n.pathId });
    }
  }
  assert.deepEqual(got, announced, `${where} announced NLRI`);
  const wdWant = Object.entries(j.withdraw ?? {}).flatMap(([fam, list]) => list.map((n) => `${FAMILY[fam]} ${n.nlri}`));
  const wdGot = u.withdraw.flatMap((g) => g.nlri.map((n) => `${g.family} ${n.prefix}`));
  assert.deepEqual(wdGot, wdWant, `${where} withdrawn NLRI`);
}

test('ExaBGP golden vectors: decode, compare meaning, re-encode', { skip: dir ? false : 'shared test data not found' }, () => {
  const vectors = loadVectors();
  assert.ok(vectors.length >= 160, `expected the full corpus, found ${vectors.length} raw messages`);
  let compared = 0;
  let reencoded = 0;
  let rejected = 0;
  for (const v of vectors) {
    const opts = optionsFor(v.file, vectors);
    const bytes = Buffer.from(v.hex, 'hex');
    const families = Object.keys(v.json?.announce ?? {}).concat(Object.keys(v.json?.withdraw ?? {}));
    const supported = families.every((f) => f in FAMILY);
    const wellKnownUnknown = Object.keys(v.json?.attribute ?? {}).some((k) => /^attribute-0x[0-9a-f]+-0x[0-7]/i.test(k));
    let decoded;
    try {
      decoded = decodeMessage(bytes, opts);
    } catch (e) {
      assert.ok(e instanceof BgpError, `${v.file}:${v.line}: untyped error ${String(e)}`);
      if (v.json && supported && !wellKnownUnknown) assert.fail(`${v.file}:${v.line}: supported message rejected: ${e.message}`);
      if (!supported) assert.ok(e instanceof UnsupportedFamilyError, `${v.file}:${v.line}: expected UnsupportedFamilyError, got ${e.message}`);
      if (wellKnownUnknown) assert.equal(e.notifSubcode, 2, 'an unrecognized well-known attribute is 3/2 (RFC 4271 §6.3)');
      rejected++;
      continue;
    }
    const m = decoded.message;
    if (v.json) {
      assert.ok(supported, `${v.file}:${v.line}: an unsupported family decoded without error`);
      assert.equal(m.type, 'update');
      compareMeaning(v, m as UpdateMessage);
      compared++;
    }
    if (m.type === 'update' && !decoded.treatAsWithdraw) {
      assert.equal(toHex(encodeUpdate(m, opts)), v.hex, `${v.file}:${v.line}: re-encoding differs`);
      reencoded++;
    }
  }
  assert.ok(compared >= 50, `compared ${compared}`);
  assert.ok(reencoded >= 100, `re-encoded ${reencoded}`);
  assert.ok(rejected >= 40, `rejected ${rejected}`);
});

test('OPEN with FQDN and AS4 capabilities (conf-hostname)', { skip: dir ? false : 'shared test data not found' }, () => {
  const v = loadVectors().find((x) => x.file === 'conf-hostname.ci')!;
  const m = decodeMessage(Buffer.from(v.hex, 'hex')).message;
  assert.equal(m.type, 'open');
  if (m.type !== 'open') return;
  assert.equal(m.version, 4);
  assert.equal(m.holdTime, 180);
  assert.deepEqual(m.capabilities.find((c) => c.kind === 'fqdn'), { kind: 'fqdn', hostname: 'my-host-name', domain: 'my-domain-name.com' });
  assert.deepEqual(m.capabilities.find((c) => c.kind === 'as4'), { kind: 'as4', asn: 65533 });
});
