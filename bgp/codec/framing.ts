/**
 * Message framing (RFC 4271 §4.1): 16-byte marker of ones, length u16, type u8. `MessageFramer`
 * only splits a TCP byte stream into whole messages; `decodeMessage` dispatches one message by type.
 */
import { Writer } from './buffer.js';
import { BgpError, HeaderSub, NotifCode } from './errors.js';
import {
  HEADER_LEN,
  MAX_MESSAGE_LEN,
  MsgType,
  maxMessageLength,
  type BgpMessage,
  type DecodeOptions,
  type OpenMessage,
} from './messages.js';
import { decodeNotification, decodeRouteRefresh } from './notification.js';
import { decodeOpen, encodeOpenBody } from './open.js';
import { decodeUpdate, frameMessage, type AttrNote } from './update.js';

/** Minimum total length per message type (RFC 4271 §4, RFC 2918). */
const MIN_LEN: Record<number, number> = { 1: 29, 2: 23, 3: 21, 4: 19, 5: 23 };

function lengthErr(len: number): BgpError {
  const d = new Uint8Array(2);
  d[0] = len >> 8;
  d[1] = len & 0xff;
  return new BgpError(NotifCode.MESSAGE_HEADER, HeaderSub.BAD_MESSAGE_LENGTH, `bad message length ${len}`, { data: d });
}

/** Validate a header at buf[off..]; returns the total message length and type. */
export function checkHeader(buf: Uint8Array, off: number, maxLen: number): { length: number; type: number } {
  for (let i = 0; i < 16; i++) {
    if (buf[off + i] !== 0xff) throw new BgpError(NotifCode.MESSAGE_HEADER, HeaderSub.CONNECTION_NOT_SYNCHRONIZED, 'marker is not all ones');
  }
  const length = ((buf[off + 16] as number) << 8) | (buf[off + 17] as number);
  const type = buf[off + 18] as number;
  if (length < HEADER_LEN || length > maxLen) throw lengthErr(length);
  const min = MIN_LEN[type];
  if (min === undefined) {
    throw new BgpError(NotifCode.MESSAGE_HEADER, HeaderSub.BAD_MESSAGE_TYPE, `bad message type ${type}`, { data: new Uint8Array([type]) });
  }
  if (length < min || (type === MsgType.KEEPALIVE && length !== HEADER_LEN)) throw lengthErr(length);
  // OPEN and KEEPALIVE never exceed 4096 even with extended messages (RFC 8654 §3).
  if (type === MsgType.OPEN && length > MAX_MESSAGE_LEN) throw lengthErr(length);
  return { length, type };
}

/**
 * Splits a byte stream into whole messages. Buffers at most one partial message (≤ max length),
 * so memory stays bounded whatever the peer sends. A bad header throws BgpError (session-reset).
 */
export class MessageFramer {
  private buf = new Uint8Array(0);
  maxLength: number;
  /**
   * A header error found after some whole messages of the same chunk: those are returned first,
   * the error is kept here (and thrown by the next push). Callers check it after handling them.
   */
  failed: BgpError | undefined;
  constructor(opts: { extendedMessage?: boolean } = {}) {
    this.maxLength = maxMessageLength(opts);
  }

  /** Append a chunk; returns every complete message (each a copy including its header). */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.failed) throw this.failed;
    let data: Uint8Array;
    if (this.buf.length === 0) data = chunk;
    else {
      data = new Uint8Array(this.buf.length + chunk.length);
      data.set(this.buf);
      data.set(chunk, this.buf.length);
    }
    const out: Uint8Array[] = [];
    let off = 0;
    while (data.length - off >= HEADER_LEN) {
      let length: number;
      try {
        length = checkHeader(data, off, this.maxLength).length;
      } catch (e) {
        if (!(e instanceof BgpError) || out.length === 0) throw e;
        this.failed = e;
        this.buf = new Uint8Array(0);
        return out;
      }
      if (data.length - off < length) break;
      out.push(data.slice(off, off + length));
      off += length;
    }
    this.buf = off === data.length ? new Uint8Array(0) : data.slice(off);
    return out;
  }

  /** Bytes waiting for the rest of their message. */
  get pending(): number {
    return this.buf.length;
  }
}

export interface DecodedMessage {
  message: BgpMessage;
  /** UPDATE only: RFC 7606 treat-as-withdraw applied. */
  treatAsWithdraw?: boolean;
  /** UPDATE only: attributes discarded / reasons for withdraw. */
  notes?: AttrNote[];
}

/** Decode exactly one whole message (header included). Throws BgpError. */
export function decodeMessage(msg: Uint8Array, opts: DecodeOptions = {}): DecodedMessage {
  if (msg.length < HEADER_LEN) throw lengthErr(msg.length);
  const { length, type } = checkHeader(msg, 0, maxMessageLength(opts));
  if (length !== msg.length) throw lengthErr(length);
  const body = msg.subarray(HEADER_LEN);
  switch (type) {
    case MsgType.OPEN:
      return { message: decodeOpen(body) };
    case MsgType.UPDATE: {
      const r = decodeUpdate(body, opts);
      return { message: r.update, treatAsWithdraw: r.treatAsWithdraw, notes: r.notes };
    }
    case MsgType.NOTIFICATION:
      return { message: decodeNotification(body) };
    case MsgType.KEEPALIVE:
      return { message: { type: 'keepalive' } };
    case MsgType.ROUTE_REFRESH:
      return { message: decodeRouteRefresh(body) };
    default:
      throw new BgpError(NotifCode.MESSAGE_HEADER, HeaderSub.BAD_MESSAGE_TYPE, `bad message type ${type}`, { data: new Uint8Array([type]) });
  }
}

export function encodeOpen(m: Omit<OpenMessage, 'type'>): Uint8Array {
  const w = new Writer(128);
  encodeOpenBody(w, m);
  if (w.length + HEADER_LEN > MAX_MESSAGE_LEN) throw new TypeError('OPEN exceeds 4096 bytes');
  return frameMessage(w.view(), MsgType.OPEN);
}
