/**
 * The narrow netlink surface felix uses (like Calico's netlinkshim). `netlinkShim(nl)` adapts a real
 * `Netlink` handle; unit tests pass an in-memory kernel (test/felix/fake-netlink.ts).
 */
import type { Addr, EventGroup, Link, LinkAddSpec, LinkSetChange, Neigh, NeighFilter, Netlink, NetlinkEvent, Route, RouteFilter } from '../netlink/index.js';

export type RouteOp = { op: 'replace'; route: Route } | { op: 'del'; route: Route };

export interface Unsubscribe {
  close(): void;
}

export interface DataplaneNetlink {
  linkList(): Promise<Link[]>;
  linkByName(name: string): Promise<Link>;
  linkAdd(spec: LinkAddSpec): Promise<void>;
  linkSet(link: number | string, change: LinkSetChange): Promise<void>;
  linkDel(link: number | string): Promise<void>;
  addrList(f?: { family?: 0 | 2 | 10; ifindex?: number }): Promise<Addr[]>;
  addrReplace(a: Addr): Promise<void>;
  addrDel(a: Addr): Promise<void>;
  routeList(f?: RouteFilter): Promise<Route[]>;
  /** Applies ops in order; a failure does not stop later ops. Index-aligned errors. */
  applyRoutes(ops: RouteOp[]): Promise<Array<Error | undefined>>;
  neighList(f?: NeighFilter): Promise<Neigh[]>;
  neighSet(n: Neigh): Promise<void>;
  neighDel(n: Neigh): Promise<void>;
  /** Route/link events; absent = no event-driven repair (periodic resync only). */
  subscribe?(groups: EventGroup[], listener: (ev: NetlinkEvent) => void, onError: (err: unknown) => void): Unsubscribe;
}

/** Adapts a real handle: route ops go out as one pipelined netlink batch. */
export function netlinkShim(nl: Netlink): DataplaneNetlink {
  return {
    linkList: () => nl.linkList(),
    linkByName: (name) => nl.linkByName(name),
    linkAdd: (spec) => nl.linkAdd(spec),
    linkSet: (link, change) => nl.linkSet(link, change),
    linkDel: (link) => nl.linkDel(link),
    addrList: (f) => nl.addrList(f),
    addrReplace: (a) => nl.addrReplace(a),
    addrDel: (a) => nl.addrDel(a),
    routeList: (f) => nl.routeList(f),
    async applyRoutes(ops) {
      if (ops.length === 0) return [];
      const b = nl.batch();
      for (const o of ops) {
        if (o.op === 'replace') b.routeReplace(o.route);
        else b.routeDel(o.route);
      }
      return (await b.run()).errors;
    },
    neighList: (f) => nl.neighList(f),
    neighSet: (n) => nl.neighSet(n),
    neighDel: (n) => nl.neighDel(n),
    subscribe: (groups, listener, onError) => nl.subscribe(groups, listener, onError),
  };
}

/** Makes `cidr` the only IPv4 address on the interface (tunnel devices carry exactly one /32). */
export async function ensureSoleAddress(nl: DataplaneNetlink, ifindex: number, cidr: string): Promise<void> {
  const addrs = await nl.addrList({ family: 2, ifindex });
  for (const a of addrs) if (a.address !== cidr) await nl.addrDel({ ifindex, address: a.address });
  if (!addrs.some((a) => a.address === cidr)) await nl.addrReplace({ ifindex, address: cidr });
}
