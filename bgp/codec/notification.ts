/**
 * NOTIFICATION (RFC 4271 §4.5, RFC 9003 shutdown communication), KEEPALIVE and ROUTE-REFRESH
 * (RFC 2918, RFC 7313 BoRR/EoRR).
 */
import { familyOf, type Family } from '../types.js';
import { Reader, Writer } from './buffer.js';
import { BgpError, CeaseSub, NotifCode } from './errors.js';
import { HEADER_LEN, MsgType, type NotificationMessage, type RouteRefreshMessage } from './messages.js';
import { frameMessage } from './update.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function decodeNotification(body: Uint8Array): NotificationMessage {
  const r = new Reader(body, 0, body.length, { code: NotifCode.MESSAGE_HEADER, subcode: 2, what: 'NOTIFICATION' });
  const code = r.u8();
  const subcode = r.u8();
  const data = Uint8Array.from(r.rest());
  const m: NotificationMessage = { type: 'notification', code, subcode, data };
  if (code === NotifCode.CEASE && (subcode === CeaseSub.ADMIN_SHUTDOWN || subcode === CeaseSub.ADMIN_RESET) && data.length >= 1) {
    const len = data[0] as number;
    if (len + 1 <= data.length) {
      try {
        m.shutdownMessage = utf8.decode(data.subarray(1, 1 + len));
      } catch {
        // RFC 9003 §2: invalid UTF-8 is not a shutdown message; the raw data stays in `data`.
      }
    }
  }
  return m;
}

/** Encode a NOTIFICATION; a `shutdownMessage` (Cease 2/4) is truncated to 255 bytes of UTF-8. */
export function encodeNotification(code: number, subcode: number, data?: Uint8Array, shutdownMessage?: string): Uint8Array {
  const w = new Writer(32);
  w.u8(code).u8(subcode);
  if (shutdownMessage !== undefined) {
    let b = new TextEncoder().encode(shutdownMessage);
    if (b.length > 255) {
      // cut on a UTF-8 character boundary
      let n = 255;
      while (n > 0 && ((b[n] ?? 0) & 0xc0) === 0x80) n--;
      b = b.subarray(0, n);
    }
    w.u8(b.length).bytes(b);
  } else if (data) w.bytes(data);
  return frameMessage(w.view(), MsgType.NOTIFICATION);
}

export function notificationFromError(e: BgpError): Uint8Array {
  return encodeNotification(e.notifCode, e.notifSubcode, e.data);
}

export function encodeKeepalive(): Uint8Array {
  return frameMessage(new Uint8Array(0), MsgType.KEEPALIVE);
}

export function decodeRouteRefresh(body: Uint8Array): RouteRefreshMessage {
  if (body.length !== 4) {
    throw new BgpError(NotifCode.ROUTE_REFRESH, 1, `ROUTE-REFRESH of ${body.length + HEADER_LEN} bytes (must be 23)`, {
      data: Uint8Array.from(body),
    });
  }
  const r = new Reader(body);
  const afi = r.u16();
  const subtype = r.u8();
  const safi = r.u8();
  return { type: 'route-refresh', afi, safi, subtype, family: familyOf(afi, safi) };
}

export function encodeRouteRefresh(family: Family | { afi: number; safi: number }, subtype = 0): Uint8Array {
  const f = typeof family === 'string' ? { afi: family === 'ipv4-unicast' ? 1 : 2, safi: 1 } : family;
  const w = new Writer(4);
  w.u16(f.afi).u8(subtype).u8(f.safi);
  return frameMessage(w.view(), MsgType.ROUTE_REFRESH);
}
