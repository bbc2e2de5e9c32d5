/**
 * netlink/: rtnetlink in TypeScript over koffi. Pure codec (wire, link, addr, route, neigh) in the
 * middle, the socket adapter (socket.ts) at the edge, the iproute2-shaped API in handle.ts.
 */
export * from './constants.js';
export * from './errors.js';
export * from './wire.js';
export * from './link.js';
export * from './addr.js';
export * from './route.js';
export * from './neigh.js';
export { NetlinkSocket, netnsPath, openNetns, withNetns, type SocketOptions } from './socket.js';
export * from './sysctl.js';
export {
  Batch,
  EncodedBatch,
  Netlink,
  Subscription,
  decodeEvent,
  type BatchResult,
  type EventGroup,
  type LinkAddSpec,
  type LinkSetChange,
  type NetlinkEvent,
  type NetlinkOptions,
  type NetlinkTransport,
  type NetlinkApi,
} from './handle.js';
