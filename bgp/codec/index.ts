/**
 * The BGP wire codec: pure functions over bytes, no I/O. Leaf module: imports nothing from
 * bgp/session, bgp/rib or node:net.
 */
export * from './errors.js';
export * from './messages.js';
export { Reader, Writer, formatIpv6, parseIpv4, parseIpv6, toHex } from './buffer.js';
export { decodeOpen, encodeOpenBody, encodeCapability } from './open.js';
export { ATTRIBUTES, type AttrDescriptor, mergeAs4, decodeAsPath, encodeAsPath } from './attributes.js';
export {
  decodeUpdate,
  packedNlri,
  encodeUpdate,
  encodeAttributes,
  packUpdates,
  packWithdrawals,
  buildEndOfRib,
  frameMessage,
  type AttrNote,
  type UpdateDecodeResult,
  type EncodedAttributes,
} from './update.js';
export {
  decodeNotification,
  encodeNotification,
  notificationFromError,
  encodeKeepalive,
  decodeRouteRefresh,
  encodeRouteRefresh,
} from './notification.js';
export { MessageFramer, decodeMessage, encodeOpen, checkHeader, type DecodedMessage } from './framing.js';
export { decodeNlriList, encodeNlri, nlriSize, parsePrefix, canonicalPrefix, forEachV4, formatV4, type PackedNlri } from './nlri.js';
