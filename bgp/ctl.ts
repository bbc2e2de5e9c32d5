/**
 * What tabbyctl needs from bgp/: query a tabby-bgp status socket and format the answers
 * (`tabbyctl bgp status [-o json]`, `tabbyctl bgp routes [PREFIX]`, the peer table of
 * `tabbyctl node status`).
 */
export { queryStatus, queryRoutes, StatusSocketError, type StatusRequest } from './daemon/status-socket.js';
export { formatPeerTable, formatPeerDetails, formatRoutes, formatSince, type PeerStatus, type SpeakerStatus, type RouteEntry, type RoutePath } from './speaker/status.js';
