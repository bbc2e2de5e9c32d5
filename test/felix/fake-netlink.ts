// An in-memory kernel implementing felix's DataplaneNetlink, with failure injection and events.
import { LinkNotFoundError, NetlinkError, type Addr, type EventGroup, type Link, type LinkAddSpec, type LinkSetChange, type Neigh, type NetlinkEvent, type Route, type RouteFilter } from '../../netlink/index.js';
import type { DataplaneNetlink, RouteOp } from '../../felix/shim.js';

const ESRCH = 3;
const ENODEV = 19;
const EIO = 5;

export interface FakeCalls {
  replace: number;
  del: number;
  dumps: number;
}

export class FakeNetlink implements DataplaneNetlink {
  links = new Map<string, Link>();
  routes: Route[] = [];
  neighs: Neigh[] = [];
  addrs: Addr[] = [];
  calls: FakeCalls = { replace: 0, del: 0, dumps: 0 };
  /** Fail the next N route ops / dumps. */
  failNextRouteOps = 0;
  failNextDump = 0;
  /** linkAdd of these kinds fails with EOPNOTSUPP (like ipip on this kernel). */
  unsupportedKinds = new Set<string>();
  private listeners: Array<(ev: NetlinkEvent) => void> = [];
  private nextIndex = 2;

  addLink(name: string, extra: Partial<Link> = {}): Link {
    const l: Link = { index: this.nextIndex++, name, hwType: 1, flags: 1, up: true, mtu: 1500, ...extra };
    this.links.set(name, l);
    this.emit({ kind: 'link', action: 'new', link: l });
    return l;
  }
  removeLink(name: string): void {
    const l = this.links.get(name);
    if (!l) return;
    this.links.delete(name);
    this.routes = this.routes.filter((r) => r.oif !== l.index);
    this.emit({ kind: 'link', action: 'del', link: l });
  }
  /** A route written by someone else (not through the reconciler). */
  inject(r: Route): void {
    this.put(r);
  }
  /** `ip route del` by hand. */
  remove(dst: string): void {
    const gone = this.routes.filter((r) => r.dst === dst);
    this.routes = this.routes.filter((r) => r.dst !== dst);
    for (const r of gone) this.emit({ kind: 'route', action: 'del', route: r });
  }
  find(dst: string): Route | undefined {
    return this.routes.find((r) => r.dst === dst);
  }

  private emit(ev: NetlinkEvent): void {
    for (const l of this.listeners) queueMicrotask(() => l(ev));
  }
  private put(r: Route): void {
    const full: Route = { table: 254, type: 1, protocol: 3, scope: r.gw ? 0 : 253, family: r.dst?.includes(':') ? 10 : 2, ...r };
    if (full.family === 10 && full.priority === undefined) full.priority = 1024;
    const i = this.routes.findIndex((x) => x.dst === full.dst && (x.priority ?? 0) === (full.priority ?? 0) && x.table === full.table);
    if (i >= 0) this.routes[i] = full;
    else this.routes.push(full);
    this.emit({ kind: 'route', action: 'new', route: full });
  }

  async linkList(): Promise<Link[]> {
    return [...this.links.values()];
  }
  async linkByName(name: string): Promise<Link> {
    const l = this.links.get(name);
    if (!l) throw new LinkNotFoundError(name);
    return { ...l };
  }
  async linkAdd(spec: LinkAddSpec): Promise<void> {
    if (this.unsupportedKinds.has(spec.kind)) throw new NetlinkError(95, { op: `RTM_NEWLINK ${spec.kind}` });
    const extra: Partial<Link> = { kind: spec.kind, up: spec.up ?? false };
    if (spec.mtu !== undefined) extra.mtu = spec.mtu;
    if (spec.address !== undefined) extra.address = spec.address;
    if (spec.vxlan) extra.vxlan = { ...spec.vxlan };
    this.addLink(spec.name, extra);
  }
  async linkSet(link: number | string, c: LinkSetChange): Promise<void> {
    const l = [...this.links.values()].find((x) => x.index === link || x.name === link);
    if (!l) throw new LinkNotFoundError(link);
    if (c.up !== undefined) l.up = c.up;
    if (c.mtu !== undefined) l.mtu = c.mtu;
    if (c.address !== undefined) l.address = c.address;
  }
  async linkDel(link: number | string): Promise<void> {
    const l = [...this.links.values()].find((x) => x.index === link || x.name === link);
    if (!l) throw new LinkNotFoundError(link);
    this.removeLink(l.name);
  }
  async addrList(f: { family?: 0 | 2 | 10; ifindex?: number } = {}): Promise<Addr[]> {
    return this.addrs.filter((a) => f.ifindex === undefined || a.ifindex === f.ifindex);
  }
  async addrReplace(a: Addr): Promise<void> {
    this.addrs = this.addrs.filter((x) => !(x.ifindex === a.ifindex && x.address === a.address));
    this.addrs.push(a);
  }
  async addrDel(a: Addr): Promise<void> {
    this.addrs = this.addrs.filter((x) => !(x.ifindex === a.ifindex && x.address === a.address));
  }
  async routeList(f: RouteFilter = {}): Promise<Route[]> {
    this.calls.dumps++;
    if (this.failNextDump > 0) {
      this.failNextDump--;
      throw new NetlinkError(EIO, { op: 'RTM_GETROUTE dump' });
    }
    return this.routes.filter((r) => (f.family === undefined || r.family === f.family) && (f.table === undefined || r.table === f.table)).map((r) => ({ ...r }));
  }
  async applyRoutes(ops: RouteOp[]): Promise<Array<Error | undefined>> {
    return ops.map((o) => {
      if (this.failNextRouteOps > 0) {
        this.failNextRouteOps--;
        return new NetlinkError(EIO, { op: o.op });
      }
      if (o.op === 'replace') {
        this.calls.replace++;
        if (o.route.oif !== undefined && ![...this.links.values()].some((l) => l.index === o.route.oif)) return new NetlinkError(ENODEV, { op: 'replace' });
        this.put(o.route);
        return undefined;
      }
      this.calls.del++;
      const r = o.route;
      const i = this.routes.findIndex(
        (x) =>
          x.dst === r.dst &&
          (x.priority ?? 0) === (r.priority ?? 0) &&
          (r.protocol === undefined || x.protocol === r.protocol) &&
          (r.oif === undefined || x.oif === r.oif),
      );
      if (i < 0) return new NetlinkError(ESRCH, { op: 'del' });
      const [gone] = this.routes.splice(i, 1);
      if (gone) this.emit({ kind: 'route', action: 'del', route: gone });
      return undefined;
    });
  }
  async neighList(f: { family?: 0 | 2 | 10 | 7; ifindex?: number } = {}): Promise<Neigh[]> {
    return this.neighs.filter((n) => (f.ifindex === undefined || n.ifindex === f.ifindex) && (!f.family || (n.family ?? 2) === f.family));
  }
  private sameNeigh(a: Neigh, b: Neigh): boolean {
    return a.ifindex === b.ifindex && (a.family ?? 2) === (b.family ?? 2) && (a.family === 7 ? a.mac === b.mac : a.ip === b.ip);
  }
  async neighSet(n: Neigh): Promise<void> {
    this.neighs = this.neighs.filter((x) => !this.sameNeigh(x, n));
    this.neighs.push({ state: 0x80, ...n });
  }
  async neighDel(n: Neigh): Promise<void> {
    this.neighs = this.neighs.filter((x) => !this.sameNeigh(x, n));
  }
  subscribe(_groups: EventGroup[], listener: (ev: NetlinkEvent) => void): { close(): void } {
    this.listeners.push(listener);
    return { close: () => (this.listeners = this.listeners.filter((l) => l !== listener)) };
  }
}
