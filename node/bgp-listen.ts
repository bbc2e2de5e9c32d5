/**
 * BGP listening sockets of tabby-node: IPv4 sessions on 0.0.0.0 and, with IPv6 on this node, a
 * second v6-only listener on `::` on the same port (Calico/BIRD runs separate IPv6 sessions). TCP-MD5
 * keys and GTSM live on the listening socket of the peer's family, so per-peer settings are routed
 * to that listener.
 */
import type net from 'node:net';
import type { Logger } from '../lib/log.js';
import { errorMessage } from '../lib/errors.js';
import { BgpListener } from '../bgp/net/index.js';

export interface NodeBgpListeners {
  /** Resolves once every listener is bound (or has logged why it could not be). */
  ready: Promise<void>;
  /** Per-peer socket options, dispatched by the peer address's family (for SessionTransports). */
  options: Pick<BgpListener, 'setPeerPassword' | 'setPeerTtlSecurity'>;
  close(): Promise<void>;
}

export function openBgpListeners(accept: (s: net.Socket) => void, port: number, ipv6: boolean, log: Logger): NodeBgpListeners {
  const v4 = new BgpListener(accept);
  const v6 = ipv6 ? new BgpListener(accept) : undefined;
  const bind = (l: BgpListener, address: string, what: string, opts: { ipv6Only?: boolean } = {}): Promise<void> =>
    l.listen(address, port, opts).then(
      (a) => log.info(a, `listening for ${what} BGP connections`),
      (err: unknown) => log.error({ err: errorMessage(err), port }, `cannot listen for ${what} BGP; outgoing ${what} sessions only`),
    );
  const ready = Promise.all([bind(v4, '0.0.0.0', 'IPv4'), v6 ? bind(v6, '::', 'IPv6', { ipv6Only: true }) : undefined]).then(() => undefined);
  const of = (peer: string): BgpListener => (peer.includes(':') && v6 ? v6 : v4);
  return {
    ready,
    options: {
      setPeerPassword: (peer, pw) => of(peer).setPeerPassword(peer, pw),
      setPeerTtlSecurity: (peer, hops) => of(peer).setPeerTtlSecurity(peer, hops),
    },
    close: async () => {
      await Promise.all([v4.close(), v6?.close()]);
    },
  };
}
