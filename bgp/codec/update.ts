/**
 * UPDATE (RFC 4271 §4.3, RFC 4760, RFC 7606 error handling).
 *
 *   2 B  withdrawn routes length      var  withdrawn IPv4 NLRI
 *   2 B  total path attribute length  var  path attributes
 *   var  reachable IPv4 NLRI
 */
import type { Family, Nlri, PathAttributes } from '../types.js';
import { AttrFlag, AttrType } from '../types.js';
import { Reader, Writer, isIpv6 } from './buffer.js';
import { ATTRIBUTES, attrFlags, decodeUnknown, mergeAs4, type AttrDecodeState, type AttrEncodeState } from './attributes.js';
import { BgpError, NotifCode, UpdateSub, UnsupportedFamilyError } from './errors.js';
import {
  HEADER_LEN,
  MsgType,
  hasFamily,
  maxMessageLength,
  type DecodeOptions,
  type EncodeOptions,
  type ReachGroup,
  type UnreachGroup,
  type UpdateMessage,
} from './messages.js';
import { encodeNlri, nlriSize, scanV4Nlri, unpackV4, type PackedNlri } from './nlri.js';
import { AFI, SAFI } from '../types.js';

/** An attribute dropped or a route withdrawn because of an RFC 7606 error (never silent). */
export interface AttrNote {
  action: 'attribute-discard' | 'treat-as-withdraw' | 'ignored';
  attrType?: number;
  message: string;
  error?: BgpError;
}

export interface UpdateDecodeResult {
  update: UpdateMessage;
  /** RFC 7606 treat-as-withdraw: every announced NLRI was moved to `withdraw`; attributes are empty. */
  treatAsWithdraw: boolean;
  notes: AttrNote[];
}

const O = AttrFlag.OPTIONAL;
const T = AttrFlag.TRANSITIVE;

/**
 * Decode an UPDATE body. Throws BgpError (session-reset / afisafi-disable) only where RFC 7606
 * says so; attribute errors come back as notes and the treatAsWithdraw flag.
 */
export function decodeUpdate(body: Uint8Array, opts: DecodeOptions = {}): UpdateDecodeResult {
  const r = new Reader(body, 0, body.length, { code: NotifCode.UPDATE, subcode: UpdateSub.MALFORMED_ATTR_LIST, what: 'UPDATE' });
  const wdLen = r.u16();
  if (wdLen > r.remaining - 2) {
    throw new BgpError(NotifCode.UPDATE, UpdateSub.MALFORMED_ATTR_LIST, `withdrawn routes length ${wdLen} overruns the message`);
  }
  const wdReader = r.sub(wdLen);
  const attrLen = r.u16();
  if (attrLen > r.remaining) {
    throw new BgpError(NotifCode.UPDATE, UpdateSub.MALFORMED_ATTR_LIST, `path attribute length ${attrLen} overruns the message`);
  }
  const attrReader = r.sub(attrLen);
  const nlriReader = r.sub(r.remaining);
  const v4AddPath = hasFamily(opts.addPath, 'ipv4-unicast');
  const withdrawnV4 = scanV4Nlri(wdReader, v4AddPath);

  const s: AttrDecodeState = { attrs: {}, opts, as4: opts.as4 !== false, notes: [] };
  const notes: AttrNote[] = [];
  let withdraw = false;
  const seen = new Set<number>();

  while (!attrReader.atEnd()) {
    const start = attrReader.offset;
    let len: number;
    if (attrReader.remaining < 3) {
      withdraw = true;
      notes.push({ action: 'treat-as-withdraw', message: 'path attribute header truncated (RFC 7606 §4)' });
      break;
    }
    const flags = attrReader.u8();
    const type = attrReader.u8();
    if (flags & AttrFlag.EXTENDED_LENGTH) {
      if (attrReader.remaining < 2) {
        withdraw = true;
        notes.push({ action: 'treat-as-withdraw', attrType: type, message: 'path attribute header truncated (RFC 7606 §4)' });
        break;
      }
      len = attrReader.u16();
    } else len = attrReader.u8();
    if (len > attrReader.remaining) {
      // RFC 7606 §4: the attribute overruns the list; later attributes are lost.
      if (type === AttrType.MP_REACH_NLRI || type === AttrType.MP_UNREACH_NLRI) {
        throw new BgpError(NotifCode.UPDATE, UpdateSub.ATTR_LENGTH, `${ATTRIBUTES.get(type)?.name} length ${len} overruns the attribute list`);
      }
      withdraw = true;
      notes.push({ action: 'treat-as-withdraw', attrType: type, message: `attribute ${type} length ${len} overruns the attribute list (RFC 7606 §4)` });
      break;
    }
    const value = attrReader.sub(len, { code: NotifCode.UPDATE, subcode: UpdateSub.ATTR_LENGTH, what: `attribute ${type}` });
    const row = ATTRIBUTES.get(type);
    if (seen.has(type)) {
      // RFC 7606 §3g: keep the first; a repeated MP_REACH/MP_UNREACH resets the session.
      if (type === AttrType.MP_REACH_NLRI || type === AttrType.MP_UNREACH_NLRI) {
        throw new BgpError(NotifCode.UPDATE, UpdateSub.MALFORMED_ATTR_LIST, `${row?.name} appears twice`);
      }
      notes.push({ action: 'attribute-discard', attrType: type, message: `duplicate attribute ${row?.name ?? type} discarded (RFC 7606 §3g)` });
      continue;
    }
    seen.add(type);
    const attrBytes = body.subarray(start, attrReader.offset);
    if (!row) {
      decodeUnknown(flags, type, value.rest(), s);
      continue;
    }
    if ((flags ^ row.flags) & (O | T)) {
      // RFC 7606 §3c: conflicting flags → the attribute's own error action.
      const err = new BgpError(NotifCode.UPDATE, UpdateSub.ATTR_FLAGS, `${row.name} has conflicting flags 0x${flags.toString(16)}`, {
        action: row.action,
        attrType: type,
        data: attrBytes,
      });
      if (row.action === 'session-reset') throw err;
      if (row.action === 'treat-as-withdraw') withdraw = true;
      notes.push({ action: row.action === 'treat-as-withdraw' ? 'treat-as-withdraw' : 'attribute-discard', attrType: type, message: err.message, error: err });
      continue;
    }
    try {
      row.decode(value, s, flags);
    } catch (e) {
      if (!(e instanceof BgpError)) throw e;
      if (e instanceof UnsupportedFamilyError) throw e;
      if (row.action === 'session-reset') {
        throw new BgpError(e.notifCode, e.notifSubcode, e.message, { action: 'session-reset', attrType: type, data: attrBytes });
      }
      const err = new BgpError(e.notifCode, e.notifSubcode, e.message, { action: row.action, attrType: type, data: attrBytes });
      if (row.action === 'treat-as-withdraw') withdraw = true;
      notes.push({ action: row.action === 'treat-as-withdraw' ? 'treat-as-withdraw' : 'attribute-discard', attrType: type, message: e.message, error: err });
    }
  }
  for (const n of s.notes) notes.push({ action: 'ignored', message: n });
  if (!s.as4) {
    const before = s.notes.length;
    mergeAs4(s);
    for (const n of s.notes.slice(before)) notes.push({ action: 'ignored', message: n });
  }

  const nlriV4 = scanV4Nlri(nlriReader, v4AddPath);

  const announce: ReachGroup[] = [];
  const withdrawGroups: UnreachGroup[] = [];
  if (withdrawnV4.count) withdrawGroups.push(withPackedNlri({ family: 'ipv4-unicast' }, withdrawnV4));
  if (s.mpUnreach) withdrawGroups.push({ family: s.mpUnreach.family, nlri: s.mpUnreach.nlri, mp: true });

  const attrs = s.attrs;
  if (nlriV4.count) {
    // RFC 7606 §3d: missing well-known attributes → treat-as-withdraw.
    if (attrs.nextHop === undefined) {
      withdraw = true;
      notes.push({ action: 'treat-as-withdraw', attrType: AttrType.NEXT_HOP, message: 'missing well-known attribute NEXT_HOP' });
    }
    announce.push(withPackedNlri({ family: 'ipv4-unicast', nextHop: attrs.nextHop ?? '0.0.0.0' }, nlriV4));
  }
  if (s.mpReach) {
    const g: ReachGroup = { family: s.mpReach.family, nextHop: s.mpReach.nextHop, nlri: s.mpReach.nlri, mp: true };
    if (s.mpReach.linkLocalNextHop !== undefined) g.linkLocalNextHop = s.mpReach.linkLocalNextHop;
    announce.push(g);
  }
  if (nlriV4.count > 0 || (s.mpReach !== undefined && s.mpReach.nlri.length > 0)) {
    if (attrs.origin === undefined) {
      withdraw = true;
      notes.push({ action: 'treat-as-withdraw', attrType: AttrType.ORIGIN, message: 'missing well-known attribute ORIGIN' });
    }
    if (attrs.asPath === undefined) {
      withdraw = true;
      notes.push({ action: 'treat-as-withdraw', attrType: AttrType.AS_PATH, message: 'missing well-known attribute AS_PATH' });
    }
  }

  const update: UpdateMessage = { type: 'update', attributes: attrs, announce, withdraw: withdrawGroups };
  if (withdraw) {
    for (const g of announce) {
      const packed = packedNlri(g);
      if (packed) {
        if (packed.count) withdrawGroups.push(withPackedNlri({ family: g.family }, packed));
      } else if (g.nlri.length) withdrawGroups.push(g.mp ? { family: g.family, nlri: g.nlri, mp: true } : { family: g.family, nlri: g.nlri });
    }
    update.announce = [];
    update.attributes = {};
  }
  // End-of-RIB (RFC 4724 §2)
  if (body.length === 4) update.endOfRib = { afi: AFI.IPV4, safi: SAFI.UNICAST, family: 'ipv4-unicast' };
  else if (seen.size === 1 && !withdrawnV4.count && !nlriV4.count) {
    if (s.mpUnreach && s.mpUnreach.nlri.length === 0) {
      update.endOfRib = { afi: s.mpUnreach.family === 'ipv4-unicast' ? AFI.IPV4 : AFI.IPV6, safi: SAFI.UNICAST, family: s.mpUnreach.family };
      update.withdraw = [];
    } else if (s.foreignEor) update.endOfRib = { ...s.foreignEor, family: undefined };
  }
  return { update, treatAsWithdraw: withdraw, notes };
}

const PACKED = Symbol('packed-nlri');

/**
 * `g` with an `nlri` list made from `packed` on first read (an ordinary enumerable property to
 * every reader, deepEqual and JSON included) and the packed form kept for packedNlri(). Assigning
 * `nlri` replaces the list and forgets the packed form.
 */
function withPackedNlri<G extends { nlri: Nlri[] }>(g: Omit<G, 'nlri'>, packed: PackedNlri): G {
  let list: Nlri[] | undefined;
  let current: PackedNlri | undefined = packed;
  Object.defineProperty(g, 'nlri', {
    enumerable: true,
    configurable: true,
    get: () => (list ??= unpackV4(packed)),
    set: (v: Nlri[]) => {
      list = v;
      current = undefined;
    },
  });
  Object.defineProperty(g, PACKED, { enumerable: false, get: () => current });
  return g as G;
}

/**
 * The IPv4 prefixes of a decoded group as wire bytes, when the decoder kept them so (classic NLRI
 * and withdrawn-routes fields): the RIB reads them as numbers without building Nlri objects.
 */
export function packedNlri(g: ReachGroup | UnreachGroup): PackedNlri | undefined {
  return (g as unknown as { [PACKED]?: PackedNlri })[PACKED];
}

// ---------------------------------------------------------------------------------------------
// Encoding

function writeAttrHeader(w: Writer, flags: number, type: number, len: number): void {
  if (len > 255) w.u8(flags | AttrFlag.EXTENDED_LENGTH).u8(type).u16(len);
  else w.u8(flags & ~AttrFlag.EXTENDED_LENGTH).u8(type).u8(len);
}

const scratch = new Writer(4096);

function encodeOne(w: Writer, type: number, flags: number, body: (v: Writer) => boolean): void {
  scratch.truncate(0);
  if (!body(scratch)) return;
  writeAttrHeader(w, flags, type, scratch.length);
  w.bytes(scratch.view());
}

/**
 * Encode the path attributes except MP_REACH/MP_UNREACH, in type order, as two blocks: the ones
 * sorting before MP_REACH_NLRI (14) and after MP_UNREACH_NLRI (15). Update groups encode these
 * once and reuse the bytes for every message and every peer of the group.
 */
export interface EncodedAttributes {
  before: Uint8Array;
  after: Uint8Array;
}

export function encodeAttributes(a: PathAttributes, opts: EncodeOptions = {}): EncodedAttributes {
  const s: AttrEncodeState = { opts, as4: opts.as4 !== false };
  const before = new Writer(128);
  const after = new Writer(64);
  const unknown = [...(a.unknown ?? [])].sort((x, y) => x.type - y.type);
  let ui = 0;
  const order = [...ATTRIBUTES.keys()].sort((x, y) => x - y);
  for (const type of order) {
    const w = type < AttrType.MP_REACH_NLRI ? before : after;
    while (ui < unknown.length && (unknown[ui]?.type ?? 0) < type) writeUnknown(type < AttrType.MP_REACH_NLRI ? before : after, unknown[ui++]!);
    const row = ATTRIBUTES.get(type)!;
    if (!row.encode) continue;
    const enc = row.encode;
    encodeOne(w, type, attrFlags(type), (v) => enc(v, a, s));
  }
  while (ui < unknown.length) writeUnknown(after, unknown[ui++]!);
  return { before: before.finish(), after: after.finish() };
}

function writeUnknown(w: Writer, u: { flags: number; type: number; value: Uint8Array }): void {
  // Optional non-transitive unknown attributes are not passed on; transitive ones get Partial (RFC 4271 §5).
  if ((u.flags & AttrFlag.OPTIONAL) === 0 || (u.flags & AttrFlag.TRANSITIVE) === 0) return;
  if (ATTRIBUTES.has(u.type)) return;
  writeAttrHeader(w, (u.flags | AttrFlag.PARTIAL) & 0xf0, u.type, u.value.length);
  w.bytes(u.value);
}

function afiOf(f: Family): number {
  return f === 'ipv4-unicast' ? AFI.IPV4 : AFI.IPV6;
}

function mpReachSize(g: ReachGroup): number {
  return 5 + nextHopLen(g);
}
function nextHopLen(g: ReachGroup): number {
  if (!isIpv6(g.nextHop)) return 4;
  return g.linkLocalNextHop !== undefined ? 32 : 16;
}

function writeMpReach(w: Writer, g: ReachGroup, nlri: readonly Nlri[], addPath: boolean): void {
  const body = new Writer(64);
  body.u16(afiOf(g.family)).u8(SAFI.UNICAST);
  const nhl = nextHopLen(g);
  body.u8(nhl);
  if (nhl === 4) body.ipv4(g.nextHop);
  else {
    body.ipv6(g.nextHop);
    if (g.linkLocalNextHop !== undefined) body.ipv6(g.linkLocalNextHop);
  }
  body.u8(0);
  for (const n of nlri) encodeNlri(body, n, addPath);
  writeAttrHeader(w, AttrFlag.OPTIONAL, AttrType.MP_REACH_NLRI, body.length);
  w.bytes(body.view());
}

function writeMpUnreach(w: Writer, family: Family, nlri: readonly Nlri[], addPath: boolean): void {
  const body = new Writer(64);
  body.u16(afiOf(family)).u8(SAFI.UNICAST);
  for (const n of nlri) encodeNlri(body, n, addPath);
  // ExaBGP, FRR and GoBGP set Extended-Length on MP_UNREACH_NLRI; so do we (both forms are valid).
  w.u8(AttrFlag.OPTIONAL | AttrFlag.EXTENDED_LENGTH).u8(AttrType.MP_UNREACH_NLRI).u16(body.length);
  w.bytes(body.view());
}

function frame(body: Writer | Uint8Array, type: number): Uint8Array {
  const b = body instanceof Writer ? body.view() : body;
  const out = new Uint8Array(HEADER_LEN + b.length);
  out.fill(0xff, 0, 16);
  out[16] = (out.length >> 8) & 0xff;
  out[17] = out.length & 0xff;
  out[18] = type;
  out.set(b, HEADER_LEN);
  return out;
}

/** True when the group goes in MP_REACH_NLRI rather than the classic NLRI field. */
function isMp(g: { family: Family; mp?: boolean; nextHop?: string }): boolean {
  return g.family !== 'ipv4-unicast' || g.mp === true || (g.nextHop !== undefined && isIpv6(g.nextHop));
}

/**
 * Encode one UPDATE message (header included). Throws BgpError if it exceeds the size limit;
 * use `packUpdates` to split large sets.
 */
export function encodeUpdate(u: Omit<UpdateMessage, 'type'>, opts: EncodeOptions = {}): Uint8Array {
  if (u.endOfRib) return buildEndOfRib(u.endOfRib);
  const enc = encodeAttributes(u.attributes, opts);
  const body = new Writer(256);
  const wdAt = body.reserve(2);
  const classicWd = u.withdraw.filter((g) => !isMp(g));
  const mpWd = u.withdraw.filter((g) => isMp(g));
  const v4ap = hasFamily(opts.addPath, 'ipv4-unicast');
  for (const g of classicWd) for (const n of g.nlri) encodeNlri(body, n, v4ap);
  body.patchU16(wdAt, body.length - 2);
  const attrAt = body.reserve(2);
  const attrStart = body.length;
  const mpReach = u.announce.filter((g) => isMp(g));
  const classic = u.announce.filter((g) => !isMp(g));
  if (mpReach.length > 1 || mpWd.length > 1) throw new TypeError('one UPDATE carries at most one MP_REACH_NLRI and one MP_UNREACH_NLRI');
  body.bytes(enc.before);
  const mr = mpReach[0];
  if (mr) writeMpReach(body, mr, mr.nlri, hasFamily(opts.addPath, mr.family));
  const mw = mpWd[0];
  if (mw) writeMpUnreach(body, mw.family, mw.nlri, hasFamily(opts.addPath, mw.family));
  body.bytes(enc.after);
  body.patchU16(attrAt, body.length - attrStart);
  for (const g of classic) for (const n of g.nlri) encodeNlri(body, n, v4ap);
  const max = maxMessageLength(opts);
  if (body.length + HEADER_LEN > max) {
    throw new BgpError(NotifCode.MESSAGE_HEADER, 2, `UPDATE of ${body.length + HEADER_LEN} bytes exceeds ${max}`, {
      hint: 'split the NLRI with packUpdates',
    });
  }
  return frame(body, MsgType.UPDATE);
}

/**
 * Pack many NLRI sharing one attribute set into as few UPDATEs as the size limit allows. The
 * attributes are encoded once (`pre` lets an update group pass bytes it already encoded).
 */
export function packUpdates(
  req: {
    family: Family;
    attributes: PathAttributes;
    nextHop?: string;
    linkLocalNextHop?: string;
    nlri: readonly Nlri[];
    /** Force MP_REACH for IPv4 (otherwise only for an IPv6 next hop). */
    mp?: boolean;
  },
  opts: EncodeOptions = {},
  pre?: EncodedAttributes,
): Uint8Array[] {
  const enc = pre ?? encodeAttributes(req.attributes, opts);
  const addPath = hasFamily(opts.addPath, req.family);
  const max = maxMessageLength(opts);
  const nextHop = req.nextHop ?? req.attributes.nextHop;
  const group: ReachGroup = { family: req.family, nextHop: nextHop ?? '', nlri: [] };
  if (req.linkLocalNextHop !== undefined) group.linkLocalNextHop = req.linkLocalNextHop;
  if (req.mp) group.mp = true;
  const mp = isMp(group);
  if (nextHop === undefined) throw new TypeError(`packUpdates: ${req.family} needs a next hop`);
  // Fixed cost: header + 2 + 2 + attributes (+ MP_REACH header + AFI/SAFI/NH/reserved).
  const fixed = HEADER_LEN + 4 + enc.before.length + enc.after.length + (mp ? 4 + mpReachSize(group) : 0);
  if (fixed >= max) throw new BgpError(NotifCode.MESSAGE_HEADER, 2, `attributes alone (${fixed} bytes) exceed the message size ${max}`);
  const out: Uint8Array[] = [];
  let i = 0;
  while (i < req.nlri.length) {
    let size = fixed;
    const start = i;
    while (i < req.nlri.length) {
      const s = nlriSize(req.nlri[i]!, addPath);
      if (size + s > max) break;
      size += s;
      i++;
    }
    if (i === start) throw new BgpError(NotifCode.MESSAGE_HEADER, 2, 'an NLRI does not fit in a message');
    const chunk = req.nlri.slice(start, i);
    const body = new Writer(size);
    body.u16(0);
    const attrAt = body.reserve(2);
    const attrStart = body.length;
    body.bytes(enc.before);
    if (mp) writeMpReach(body, group, chunk, addPath);
    body.bytes(enc.after);
    body.patchU16(attrAt, body.length - attrStart);
    if (!mp) for (const n of chunk) encodeNlri(body, n, addPath);
    out.push(frame(body, MsgType.UPDATE));
  }
  return out;
}

/** Pack withdrawals of one family into as few UPDATEs as possible. */
export function packWithdrawals(family: Family, nlri: readonly Nlri[], opts: EncodeOptions = {}): Uint8Array[] {
  const addPath = hasFamily(opts.addPath, family);
  const max = maxMessageLength(opts);
  const mp = family !== 'ipv4-unicast';
  const fixed = HEADER_LEN + 4 + (mp ? 4 + 3 : 0);
  const out: Uint8Array[] = [];
  let i = 0;
  while (i < nlri.length) {
    let size = fixed;
    const start = i;
    while (i < nlri.length) {
      const s = nlriSize(nlri[i]!, addPath);
      if (size + s > max) break;
      size += s;
      i++;
    }
    const chunk = nlri.slice(start, i);
    const body = new Writer(size);
    if (mp) {
      body.u16(0);
      const attrAt = body.reserve(2);
      writeMpUnreach(body, family, chunk, addPath);
      body.patchU16(attrAt, body.length - 4);
    } else {
      const wdAt = body.reserve(2);
      for (const n of chunk) encodeNlri(body, n, addPath);
      body.patchU16(wdAt, body.length - 2);
      body.u16(0);
    }
    out.push(frame(body, MsgType.UPDATE));
  }
  return out;
}

/** End-of-RIB marker (RFC 4724 §2) for any AFI/SAFI. */
export function buildEndOfRib(family: Family | { afi: number; safi: number }): Uint8Array {
  const fam = typeof family === 'string' ? { afi: afiOf(family), safi: SAFI.UNICAST } : family;
  if (fam.afi === AFI.IPV4 && fam.safi === SAFI.UNICAST) return frame(new Uint8Array([0, 0, 0, 0]), MsgType.UPDATE);
  const w = new Writer(16);
  w.u16(0).u16(7);
  w.u8(AttrFlag.OPTIONAL | AttrFlag.EXTENDED_LENGTH).u8(AttrType.MP_UNREACH_NLRI).u16(3).u16(fam.afi).u8(fam.safi);
  return frame(w, MsgType.UPDATE);
}

export { frame as frameMessage };
