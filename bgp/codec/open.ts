/**
 * OPEN (RFC 4271 §4.2) with capabilities (RFC 5492) and RFC 9072 extended optional parameters.
 *
 *   1 B  version          2 B  my AS        2 B  hold time     4 B  BGP identifier
 *   1 B  opt param len    var  params: type(1) len(1) value
 *   RFC 9072: opt param len = 255 and first param type = 255 → ext len(2), params type(1) len(2) value
 */
import { Reader, Writer } from './buffer.js';
import { BgpError, NotifCode, OpenSub } from './errors.js';
import { CapCode, type Capability, type OpenMessage } from './messages.js';

const PARAM_CAPABILITIES = 2;
const NON_EXT_OP_TYPE = 255;

function openErr(subcode: number, msg: string, data?: Uint8Array): BgpError {
  return new BgpError(NotifCode.OPEN, subcode, msg, data ? { data } : {});
}

/** Decode an OPEN body (after the 19-byte header). */
export function decodeOpen(body: Uint8Array): OpenMessage {
  const r = new Reader(body, 0, body.length, { code: NotifCode.OPEN, subcode: 0, what: 'OPEN' });
  const version = r.u8();
  const myAs = r.u16();
  const holdTime = r.u16();
  const bgpId = r.ipv4();
  let optLen = r.u8();
  let extended = false;
  if (optLen === 255 && r.remaining >= 1 && r.peekU8() === NON_EXT_OP_TYPE) {
    // RFC 9072: the "Non-Ext OP Type" octet, then a 2-byte length.
    r.skip(1);
    optLen = r.u16();
    extended = true;
  }
  if (optLen !== r.remaining) {
    throw openErr(0, `OPEN optional parameter length ${optLen} does not match the ${r.remaining} bytes left`);
  }
  const capabilities: Capability[] = [];
  while (!r.atEnd()) {
    const ptype = r.u8();
    const plen = extended ? r.u16() : r.u8();
    if (plen > r.remaining) throw openErr(0, `OPEN optional parameter ${ptype} overruns the message`);
    const pv = r.sub(plen, { code: NotifCode.OPEN, subcode: 0, what: 'OPEN parameter' });
    if (ptype !== PARAM_CAPABILITIES) {
      throw openErr(OpenSub.UNSUPPORTED_OPT_PARAM, `unsupported OPEN optional parameter ${ptype}`);
    }
    while (!pv.atEnd()) {
      const code = pv.u8();
      const clen = pv.u8();
      const cv = pv.sub(clen, { code: NotifCode.OPEN, subcode: 0, what: `capability ${code}` });
      capabilities.push(decodeCapability(code, cv));
    }
  }
  return { type: 'open', version, myAs, holdTime, bgpId, capabilities };
}

function decodeCapability(code: number, r: Reader): Capability {
  const bad = (what: string): BgpError => openErr(0, `malformed ${what} capability (length ${r.remaining})`);
  switch (code) {
    case CapCode.MULTIPROTOCOL: {
      if (r.remaining !== 4) throw bad('multiprotocol');
      const afi = r.u16();
      r.u8();
      return { kind: 'multiprotocol', afi, safi: r.u8() };
    }
    case CapCode.ROUTE_REFRESH:
      return { kind: 'route-refresh' };
    case CapCode.ENHANCED_ROUTE_REFRESH:
      return { kind: 'enhanced-route-refresh' };
    case CapCode.EXTENDED_MESSAGE:
      return { kind: 'extended-message' };
    case CapCode.EXTENDED_NEXT_HOP: {
      if (r.remaining % 6 !== 0) throw bad('extended next hop');
      const tuples: Array<{ afi: number; safi: number; nextHopAfi: number }> = [];
      while (!r.atEnd()) tuples.push({ afi: r.u16(), safi: r.u16(), nextHopAfi: r.u16() });
      return { kind: 'extended-next-hop', tuples };
    }
    case CapCode.GRACEFUL_RESTART: {
      if (r.remaining < 2 || (r.remaining - 2) % 4 !== 0) throw bad('graceful restart');
      const v = r.u16();
      const families: Array<{ afi: number; safi: number; forwarding: boolean }> = [];
      while (!r.atEnd()) families.push({ afi: r.u16(), safi: r.u8(), forwarding: (r.u8() & 0x80) !== 0 });
      return { kind: 'graceful-restart', restarting: (v & 0x8000) !== 0, notification: (v & 0x4000) !== 0, restartTime: v & 0x0fff, families };
    }
    case CapCode.AS4: {
      if (r.remaining !== 4) throw bad('4-octet AS');
      return { kind: 'as4', asn: r.u32() };
    }
    case CapCode.ADD_PATH: {
      if (r.remaining % 4 !== 0) throw bad('ADD-PATH');
      const families: Array<{ afi: number; safi: number; mode: number }> = [];
      while (!r.atEnd()) families.push({ afi: r.u16(), safi: r.u8(), mode: r.u8() });
      return { kind: 'add-path', families };
    }
    case CapCode.LLGR:
      return { kind: 'llgr', value: Uint8Array.from(r.rest()) };
    case CapCode.FQDN: {
      const hl = r.u8();
      const hostname = utf8(r.bytes(hl));
      const dl = r.atEnd() ? 0 : r.u8();
      const domain = utf8(r.bytes(dl));
      return { kind: 'fqdn', hostname, domain };
    }
    default:
      return { kind: 'unknown', code, value: Uint8Array.from(r.rest()) };
  }
}

const decoder = new TextDecoder('utf-8', { fatal: false });
function utf8(b: Uint8Array): string {
  return decoder.decode(b);
}

export function encodeCapability(w: Writer, c: Capability): void {
  const start = w.length;
  const put = (code: number): number => {
    w.u8(code);
    return w.reserve(1);
  };
  let lenAt: number;
  switch (c.kind) {
    case 'multiprotocol':
      lenAt = put(CapCode.MULTIPROTOCOL);
      w.u16(c.afi).u8(0).u8(c.safi);
      break;
    case 'route-refresh':
      lenAt = put(CapCode.ROUTE_REFRESH);
      break;
    case 'enhanced-route-refresh':
      lenAt = put(CapCode.ENHANCED_ROUTE_REFRESH);
      break;
    case 'extended-message':
      lenAt = put(CapCode.EXTENDED_MESSAGE);
      break;
    case 'extended-next-hop':
      lenAt = put(CapCode.EXTENDED_NEXT_HOP);
      for (const t of c.tuples) w.u16(t.afi).u16(t.safi).u16(t.nextHopAfi);
      break;
    case 'graceful-restart':
      lenAt = put(CapCode.GRACEFUL_RESTART);
      w.u16((c.restarting ? 0x8000 : 0) | (c.notification ? 0x4000 : 0) | (Math.min(c.restartTime, 4095) & 0x0fff));
      for (const f of c.families) w.u16(f.afi).u8(f.safi).u8(f.forwarding ? 0x80 : 0);
      break;
    case 'as4':
      lenAt = put(CapCode.AS4);
      w.u32(c.asn);
      break;
    case 'add-path':
      lenAt = put(CapCode.ADD_PATH);
      for (const f of c.families) w.u16(f.afi).u8(f.safi).u8(f.mode);
      break;
    case 'llgr':
      lenAt = put(CapCode.LLGR);
      w.bytes(c.value);
      break;
    case 'fqdn': {
      lenAt = put(CapCode.FQDN);
      const h = new TextEncoder().encode(c.hostname).subarray(0, 255);
      const d = new TextEncoder().encode(c.domain).subarray(0, 255);
      w.u8(h.length).bytes(h).u8(d.length).bytes(d);
      break;
    }
    case 'unknown':
      lenAt = put(c.code);
      w.bytes(c.value);
      break;
  }
  const len = w.length - lenAt - 1;
  if (len > 255) {
    w.truncate(start);
    throw new TypeError(`capability ${c.kind} is ${len} bytes; a capability value holds at most 255`);
  }
  w.patchU8(lenAt, len);
}

/**
 * Encode an OPEN body. All capabilities go into one parameter (as BIRD does); the RFC 9072
 * extended form is used only when they do not fit the 1-byte lengths.
 */
export function encodeOpenBody(w: Writer, m: Omit<OpenMessage, 'type'>): void {
  const caps = new Writer(128);
  for (const c of m.capabilities) encodeCapability(caps, c);
  w.u8(m.version).u16(m.myAs).u16(m.holdTime).ipv4(m.bgpId);
  const capLen = caps.length;
  if (capLen === 0) {
    w.u8(0);
  } else if (capLen + 2 <= 255) {
    w.u8(capLen + 2).u8(PARAM_CAPABILITIES).u8(capLen).bytes(caps.view());
  } else {
    // RFC 9072 §2: 255, Non-Ext OP Type 255, Extended Opt. Parm. Length (2), then type(1) len(2) value.
    w.u8(255).u8(NON_EXT_OP_TYPE).u16(capLen + 3).u8(PARAM_CAPABILITIES).u16(capLen).bytes(caps.view());
  }
}
