/**
 * Path attributes as rows of ONE descriptor table (type → name, flags, decode, encode, RFC 7606
 * action). The generic loop in update.ts reads the attribute header, checks the flags against the
 * row (RFC 7606 §3c), detects duplicates (§3g) and calls `row.decode` on a reader confined to the
 * value. A row throws BgpError for a malformed value; the loop applies the row's `action`.
 */
import type { AsPathSegment, Family, Nlri, PathAttributes, RawAttribute } from '../types.js';
import { AttrFlag, AttrType, AsPathSegmentType, familyOf } from '../types.js';
import type { Reader, Writer } from './buffer.js';
import { BgpError, NotifCode, UnsupportedFamilyError, UpdateSub, type ErrorAction } from './errors.js';
import { AS_TRANS, hasFamily, type DecodeOptions, type EncodeOptions } from './messages.js';
import { decodeNlriList } from './nlri.js';

const O = AttrFlag.OPTIONAL;
const T = AttrFlag.TRANSITIVE;

/** Decode state shared by the rows of one UPDATE. */
export interface AttrDecodeState {
  attrs: PathAttributes;
  opts: DecodeOptions;
  as4: boolean;
  as4Path?: AsPathSegment[];
  as4Aggregator?: { asn: number; address: string };
  mpReach?: { family: Family; nextHop: string; linkLocalNextHop?: string; nlri: Nlri[] };
  mpUnreach?: { family: Family; nlri: Nlri[] };
  /** MP_UNREACH of a family we do not implement, with no NLRI (an End-of-RIB). */
  foreignEor?: { afi: number; safi: number };
  /** Notes for attributes discarded on purpose (not errors). */
  notes: string[];
}

/** What an attribute encoder gets. */
export interface AttrEncodeState {
  opts: EncodeOptions;
  as4: boolean;
}

export interface AttrDescriptor {
  name: string;
  /** Expected Optional/Transitive bits (the Partial and Extended-Length bits are not compared). */
  flags: number;
  /** RFC 7606 treatment of a malformed value. */
  action: ErrorAction;
  decode(r: Reader, s: AttrDecodeState, flags: number): void;
  /** Write the value (no header); return false when the attribute is absent. */
  encode?(w: Writer, a: PathAttributes, s: AttrEncodeState): boolean;
}

function lenErr(name: string, len: number): BgpError {
  return new BgpError(NotifCode.UPDATE, UpdateSub.ATTR_LENGTH, `${name} attribute has bad length ${len}`);
}

function u32Attr(name: string, set: (a: PathAttributes, v: number) => void, get: (a: PathAttributes) => number | undefined): Pick<AttrDescriptor, 'decode' | 'encode'> {
  return {
    decode(r, s) {
      if (r.remaining !== 4) throw lenErr(name, r.remaining);
      set(s.attrs, r.u32());
    },
    encode(w, a) {
      const v = get(a);
      if (v === undefined) return false;
      w.u32(v);
      return true;
    },
  };
}

function ipv4Attr(name: string, set: (a: PathAttributes, v: string) => void, get: (a: PathAttributes) => string | undefined): Pick<AttrDescriptor, 'decode' | 'encode'> {
  return {
    decode(r, s) {
      if (r.remaining !== 4) throw lenErr(name, r.remaining);
      set(s.attrs, r.ipv4());
    },
    encode(w, a) {
      const v = get(a);
      if (v === undefined) return false;
      w.ipv4(v);
      return true;
    },
  };
}

/** AS_PATH / AS4_PATH segments. */
export function decodeAsPath(r: Reader, asnSize: 2 | 4, name: string, allowConfed: boolean): AsPathSegment[] {
  const segs: AsPathSegment[] = [];
  while (!r.atEnd()) {
    if (r.remaining < 2) throw new BgpError(NotifCode.UPDATE, UpdateSub.MALFORMED_AS_PATH, `${name} segment header truncated`);
    const type = r.u8();
    const count = r.u8();
    if (type < 1 || type > 4 || (!allowConfed && type > 2)) {
      throw new BgpError(NotifCode.UPDATE, UpdateSub.MALFORMED_AS_PATH, `${name} has invalid segment type ${type}`);
    }
    if (count === 0) throw new BgpError(NotifCode.UPDATE, UpdateSub.MALFORMED_AS_PATH, `${name} has an empty segment`);
    if (r.remaining < count * asnSize) {
      throw new BgpError(NotifCode.UPDATE, UpdateSub.MALFORMED_AS_PATH, `${name} segment overruns the attribute`);
    }
    const asns: number[] = new Array<number>(count);
    for (let i = 0; i < count; i++) asns[i] = asnSize === 4 ? r.u32() : r.u16();
    segs.push({ type: type as AsPathSegment['type'], asns });
  }
  return segs;
}

export function encodeAsPath(w: Writer, segs: readonly AsPathSegment[], asnSize: 2 | 4, skipConfed: boolean): void {
  for (const seg of segs) {
    if (skipConfed && (seg.type === AsPathSegmentType.AS_CONFED_SEQUENCE || seg.type === AsPathSegmentType.AS_CONFED_SET)) continue;
    for (let i = 0; i < seg.asns.length; i += 255) {
      const part = seg.asns.slice(i, i + 255);
      w.u8(seg.type).u8(part.length);
      for (const asn of part) {
        if (asnSize === 4) w.u32(asn);
        else w.u16(asn > 0xffff ? AS_TRANS : asn);
      }
    }
  }
}

function needsAs4(segs: readonly AsPathSegment[] | undefined): boolean {
  if (!segs) return false;
  return segs.some((s) => s.asns.some((a) => a > 0xffff));
}

function decodeMpFamily(r: Reader): { family: Family; afi: number; safi: number } | { family: undefined; afi: number; safi: number } {
  const afi = r.u16();
  const safi = r.u8();
  return { family: familyOf(afi, safi), afi, safi };
}

function mpErr(msg: string): BgpError {
  return new BgpError(NotifCode.UPDATE, UpdateSub.OPTIONAL_ATTR, msg, { action: 'session-reset' });
}

/** The table. Keyed by attribute type code. */
export const ATTRIBUTES: ReadonlyMap<number, AttrDescriptor> = new Map<number, AttrDescriptor>([
  [
    AttrType.ORIGIN,
    {
      name: 'ORIGIN',
      flags: T,
      action: 'treat-as-withdraw',
      decode(r, s) {
        if (r.remaining !== 1) throw lenErr('ORIGIN', r.remaining);
        const v = r.u8();
        if (v > 2) throw new BgpError(NotifCode.UPDATE, UpdateSub.INVALID_ORIGIN, `invalid ORIGIN ${v}`);
        s.attrs.origin = v as 0 | 1 | 2;
      },
      encode(w, a) {
        if (a.origin === undefined) return false;
        w.u8(a.origin);
        return true;
      },
    },
  ],
  [
    AttrType.AS_PATH,
    {
      name: 'AS_PATH',
      flags: T,
      action: 'treat-as-withdraw',
      decode(r, s) {
        s.attrs.asPath = decodeAsPath(r, s.as4 ? 4 : 2, 'AS_PATH', true);
      },
      encode(w, a, s) {
        if (a.asPath === undefined) return false;
        encodeAsPath(w, a.asPath, s.as4 ? 4 : 2, false);
        return true;
      },
    },
  ],
  [
    AttrType.NEXT_HOP,
    {
      name: 'NEXT_HOP',
      flags: T,
      action: 'treat-as-withdraw',
      ...ipv4Attr('NEXT_HOP', (a, v) => (a.nextHop = v), (a) => a.nextHop),
    },
  ],
  [
    AttrType.MULTI_EXIT_DISC,
    { name: 'MULTI_EXIT_DISC', flags: O, action: 'treat-as-withdraw', ...u32Attr('MULTI_EXIT_DISC', (a, v) => (a.med = v), (a) => a.med) },
  ],
  [
    AttrType.LOCAL_PREF,
    {
      name: 'LOCAL_PREF',
      flags: T,
      action: 'treat-as-withdraw',
      decode(r, s) {
        if (r.remaining !== 4) throw lenErr('LOCAL_PREF', r.remaining);
        const v = r.u32();
        // RFC 7606 §7.5: from an external peer it is discarded.
        if (s.opts.ebgp) s.notes.push('LOCAL_PREF from an eBGP peer discarded');
        else s.attrs.localPref = v;
      },
      encode(w, a) {
        if (a.localPref === undefined) return false;
        w.u32(a.localPref);
        return true;
      },
    },
  ],
  [
    AttrType.ATOMIC_AGGREGATE,
    {
      name: 'ATOMIC_AGGREGATE',
      flags: T,
      action: 'attribute-discard',
      decode(r, s) {
        if (r.remaining !== 0) throw lenErr('ATOMIC_AGGREGATE', r.remaining);
        s.attrs.atomicAggregate = true;
      },
      encode(_w, a) {
        return a.atomicAggregate === true;
      },
    },
  ],
  [
    AttrType.AGGREGATOR,
    {
      name: 'AGGREGATOR',
      flags: O | T,
      action: 'attribute-discard',
      decode(r, s) {
        const want = s.as4 ? 8 : 6;
        if (r.remaining !== want) throw lenErr('AGGREGATOR', r.remaining);
        const asn = s.as4 ? r.u32() : r.u16();
        s.attrs.aggregator = { asn, address: r.ipv4() };
      },
      encode(w, a, s) {
        if (!a.aggregator) return false;
        if (s.as4) w.u32(a.aggregator.asn);
        else w.u16(a.aggregator.asn > 0xffff ? AS_TRANS : a.aggregator.asn);
        w.ipv4(a.aggregator.address);
        return true;
      },
    },
  ],
  [
    AttrType.COMMUNITIES,
    {
      name: 'COMMUNITIES',
      flags: O | T,
      action: 'treat-as-withdraw',
      decode(r, s) {
        if (r.remaining % 4 !== 0) throw lenErr('COMMUNITIES', r.remaining);
        const out: number[] = [];
        while (!r.atEnd()) out.push(r.u32());
        s.attrs.communities = out;
      },
      encode(w, a) {
        if (!a.communities || a.communities.length === 0) return false;
        for (const c of a.communities) w.u32(c);
        return true;
      },
    },
  ],
  [
    AttrType.ORIGINATOR_ID,
    {
      name: 'ORIGINATOR_ID',
      flags: O,
      action: 'treat-as-withdraw',
      decode(r, s) {
        if (r.remaining !== 4) throw lenErr('ORIGINATOR_ID', r.remaining);
        const v = r.ipv4();
        if (s.opts.ebgp) s.notes.push('ORIGINATOR_ID from an eBGP peer discarded');
        else s.attrs.originatorId = v;
      },
      encode(w, a) {
        if (a.originatorId === undefined) return false;
        w.ipv4(a.originatorId);
        return true;
      },
    },
  ],
  [
    AttrType.CLUSTER_LIST,
    {
      name: 'CLUSTER_LIST',
      flags: O,
      action: 'treat-as-withdraw',
      decode(r, s) {
        if (r.remaining % 4 !== 0 || r.remaining === 0) throw lenErr('CLUSTER_LIST', r.remaining);
        const out: string[] = [];
        while (!r.atEnd()) out.push(r.ipv4());
        if (s.opts.ebgp) s.notes.push('CLUSTER_LIST from an eBGP peer discarded');
        else s.attrs.clusterList = out;
      },
      encode(w, a) {
        if (!a.clusterList || a.clusterList.length === 0) return false;
        for (const c of a.clusterList) w.ipv4(c);
        return true;
      },
    },
  ],
  [
    AttrType.MP_REACH_NLRI,
    {
      name: 'MP_REACH_NLRI',
      flags: O,
      action: 'session-reset',
      decode(r, s) {
        if (r.remaining < 5) throw mpErr(`MP_REACH_NLRI too short (${r.remaining})`);
        const f = decodeMpFamily(r);
        if (f.family === undefined) throw new UnsupportedFamilyError(f.afi, f.safi, 'MP_REACH_NLRI');
        const nhLen = r.u8();
        if (nhLen > r.remaining) throw mpErr(`MP_REACH_NLRI next hop length ${nhLen} overruns the attribute`);
        let nextHop: string;
        let linkLocalNextHop: string | undefined;
        if (nhLen === 4) nextHop = r.ipv4();
        else if (nhLen === 16) nextHop = r.ipv6();
        else if (nhLen === 32) {
          nextHop = r.ipv6();
          linkLocalNextHop = r.ipv6();
        } else throw mpErr(`MP_REACH_NLRI ${f.family} next hop length ${nhLen} is invalid`);
        r.u8(); // reserved (SNPA count in RFC 2858)
        let nlri: Nlri[];
        try {
          nlri = decodeNlriList(r, f.family, hasFamily(s.opts.addPath, f.family));
        } catch (e) {
          if (e instanceof BgpError) throw mpErr(`MP_REACH_NLRI: ${e.message}`);
          throw e;
        }
        s.mpReach = linkLocalNextHop === undefined ? { family: f.family, nextHop, nlri } : { family: f.family, nextHop, linkLocalNextHop, nlri };
      },
    },
  ],
  [
    AttrType.MP_UNREACH_NLRI,
    {
      name: 'MP_UNREACH_NLRI',
      flags: O,
      action: 'session-reset',
      decode(r, s) {
        if (r.remaining < 3) throw mpErr(`MP_UNREACH_NLRI too short (${r.remaining})`);
        const f = decodeMpFamily(r);
        if (f.family === undefined) {
          if (r.atEnd()) {
            s.foreignEor = { afi: f.afi, safi: f.safi };
            return;
          }
          throw new UnsupportedFamilyError(f.afi, f.safi, 'MP_UNREACH_NLRI');
        }
        let nlri: Nlri[];
        try {
          nlri = decodeNlriList(r, f.family, hasFamily(s.opts.addPath, f.family));
        } catch (e) {
          if (e instanceof BgpError) throw mpErr(`MP_UNREACH_NLRI: ${e.message}`);
          throw e;
        }
        s.mpUnreach = { family: f.family, nlri };
      },
    },
  ],
  [
    AttrType.EXTENDED_COMMUNITIES,
    {
      name: 'EXTENDED_COMMUNITIES',
      flags: O | T,
      action: 'treat-as-withdraw',
      decode(r, s) {
        if (r.remaining % 8 !== 0) throw lenErr('EXTENDED_COMMUNITIES', r.remaining);
        const out: string[] = [];
        while (!r.atEnd()) out.push(Buffer.from(r.bytes(8)).toString('hex'));
        s.attrs.extCommunities = out;
      },
      encode(w, a) {
        if (!a.extCommunities || a.extCommunities.length === 0) return false;
        for (const c of a.extCommunities) {
          if (!/^[0-9a-f]{16}$/i.test(c)) throw new TypeError(`extended community must be 16 hex chars: ${c}`);
          w.bytes(Buffer.from(c, 'hex'));
        }
        return true;
      },
    },
  ],
  [
    AttrType.AS4_PATH,
    {
      name: 'AS4_PATH',
      flags: O | T,
      action: 'attribute-discard',
      decode(r, s) {
        const segs = decodeAsPath(r, 4, 'AS4_PATH', false);
        if (s.as4) s.notes.push('AS4_PATH received on a 4-byte AS session: discarded (RFC 6793 §4.1)');
        else s.as4Path = segs;
      },
      encode(w, a, s) {
        if (s.as4 || !needsAs4(a.asPath) || !a.asPath) return false;
        encodeAsPath(w, a.asPath, 4, true);
        return true;
      },
    },
  ],
  [
    AttrType.AS4_AGGREGATOR,
    {
      name: 'AS4_AGGREGATOR',
      flags: O | T,
      action: 'attribute-discard',
      decode(r, s) {
        if (r.remaining !== 8) throw lenErr('AS4_AGGREGATOR', r.remaining);
        const v = { asn: r.u32(), address: r.ipv4() };
        if (s.as4) s.notes.push('AS4_AGGREGATOR received on a 4-byte AS session: discarded (RFC 6793 §4.1)');
        else s.as4Aggregator = v;
      },
      encode(w, a, s) {
        if (s.as4 || !a.aggregator || a.aggregator.asn <= 0xffff) return false;
        w.u32(a.aggregator.asn).ipv4(a.aggregator.address);
        return true;
      },
    },
  ],
  [
    AttrType.LARGE_COMMUNITY,
    {
      name: 'LARGE_COMMUNITY',
      flags: O | T,
      action: 'treat-as-withdraw',
      decode(r, s) {
        if (r.remaining % 12 !== 0 || r.remaining === 0) throw lenErr('LARGE_COMMUNITY', r.remaining);
        const out: Array<[number, number, number]> = [];
        while (!r.atEnd()) out.push([r.u32(), r.u32(), r.u32()]);
        s.attrs.largeCommunities = out;
      },
      encode(w, a) {
        if (!a.largeCommunities || a.largeCommunities.length === 0) return false;
        for (const [g, l1, l2] of a.largeCommunities) w.u32(g).u32(l1).u32(l2);
        return true;
      },
    },
  ],
]);

/** Default flags for a known type (used by the encoder). */
export function attrFlags(type: number): number {
  return ATTRIBUTES.get(type)?.flags ?? O | T;
}

/**
 * RFC 6793 §4.2.3: merge AS4_PATH / AS4_AGGREGATOR received from a 2-byte speaker.
 */
export function mergeAs4(s: AttrDecodeState): void {
  const a = s.attrs;
  if (s.as4Aggregator || s.as4Path) {
    if (a.aggregator && a.aggregator.asn !== AS_TRANS) {
      if (s.as4Aggregator || s.as4Path) s.notes.push('AS4_PATH/AS4_AGGREGATOR ignored: AGGREGATOR is not AS_TRANS');
      return;
    }
    if (s.as4Aggregator && a.aggregator) a.aggregator = s.as4Aggregator;
  }
  if (!s.as4Path || !a.asPath) return;
  const count = (segs: readonly AsPathSegment[]): number =>
    segs.reduce((n, g) => n + (g.type === AsPathSegmentType.AS_SEQUENCE ? g.asns.length : g.type === AsPathSegmentType.AS_SET ? 1 : 0), 0);
  const n = count(a.asPath);
  const m = count(s.as4Path);
  if (n < m) {
    s.notes.push('AS4_PATH ignored: longer than AS_PATH');
    return;
  }
  let keep = n - m;
  const merged: AsPathSegment[] = [];
  for (const seg of a.asPath) {
    if (seg.type === AsPathSegmentType.AS_CONFED_SEQUENCE || seg.type === AsPathSegmentType.AS_CONFED_SET) {
      merged.push(seg);
    } else if (seg.type === AsPathSegmentType.AS_SET) {
      if (keep >= 1) {
        merged.push(seg);
        keep -= 1;
      }
    } else if (keep > 0) {
      const take = Math.min(keep, seg.asns.length);
      merged.push({ type: seg.type, asns: seg.asns.slice(0, take) });
      keep -= take;
    }
  }
  a.asPath = [...merged, ...s.as4Path];
}

/** Unknown attribute handling (RFC 4271 §5, §6.3): well-known unknown is an error; optional ones are kept raw. */
export function decodeUnknown(flags: number, type: number, value: Uint8Array, s: AttrDecodeState): void {
  if ((flags & O) === 0) {
    throw new BgpError(NotifCode.UPDATE, UpdateSub.UNRECOGNIZED_WELL_KNOWN, `unrecognized well-known attribute ${type}`, {
      action: 'session-reset',
    });
  }
  const raw: RawAttribute = { flags: flags & ~AttrFlag.EXTENDED_LENGTH, type, value: Uint8Array.from(value) };
  (s.attrs.unknown ??= []).push(raw);
}
