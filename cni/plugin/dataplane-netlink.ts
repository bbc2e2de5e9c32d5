/**
 * PodDataplane over tabby's netlink library: one socket in the host netns, one in the pod's, no
 * child processes. The host end of the veth is created in our namespace with the peer placed in
 * the pod's (as Calico does since PR #7705).
 */
import { GATEWAY_V4, GATEWAY_V6, HOST_MAC } from './result.js';
import { type HostLink, type ObservedPod, type PodDataplane, type SetupParams, hostSysctls } from './dataplane.js';
import { IFA_F, LinkNotFoundError, Netlink, NetlinkError, RT_SCOPE, sysctlGet, sysctlSetMany } from '../../netlink/index.js';

const gone = (err: unknown) => err instanceof LinkNotFoundError || (err instanceof NetlinkError && (err.code === 'ENODEV' || err.code === 'ENOENT'));

function scopeName(s: number | undefined): string {
  if (s === RT_SCOPE.LINK) return 'link';
  if (s === RT_SCOPE.HOST) return 'host';
  return 'global';
}

function withHandle<T>(netns: string | undefined, asyncSend: boolean, fn: (nl: Netlink) => Promise<T>): Promise<T> {
  const nl = Netlink.open({ ...(netns ? { netns } : {}), ...(asyncSend ? { asyncSend } : {}) });
  return fn(nl).finally(() => nl.close());
}

export interface NetlinkDataplaneOptions {
  /**
   * A long-lived handle in our own namespace, shared by concurrent calls (it runs one request at a
   * time). Without it each call opens and closes its own.
   */
  host?: Netlink;
  /** Open per-call handles with `asyncSend` (a long-lived server must not block on veth deletes). */
  asyncSend?: boolean;
}

const sysKey = (k: string) => k.split('/');

export class NetlinkDataplane implements PodDataplane {
  constructor(private readonly opts: NetlinkDataplaneOptions = {}) {}

  private withHost<T>(fn: (nl: Netlink) => Promise<T>): Promise<T> {
    return this.opts.host ? fn(this.opts.host) : withHandle(undefined, this.opts.asyncSend ?? false, fn);
  }

  private withPod<T>(netns: string, fn: (nl: Netlink) => Promise<T>): Promise<T> {
    return withHandle(netns, this.opts.asyncSend ?? false, fn);
  }

  async setup(p: SetupParams): Promise<void> {
    const v4 = p.ips.filter((x) => x.family === 4);
    const v6 = p.ips.filter((x) => x.family === 6);
    await this.withHost(async (host) => {
      try {
        await host.linkAdd({
          name: p.hostIf,
          kind: 'veth',
          mtu: p.mtu,
          address: HOST_MAC,
          peer: { name: p.ifname, mtu: p.mtu, address: p.containerMac, netns: p.netns },
        });
      } catch (err) {
        if (err instanceof NetlinkError && err.code === 'EEXIST') {
          throw new Error(`cannot create veth ${p.hostIf}/${p.ifname}: an interface with one of these names already exists (EEXIST)`, { cause: err });
        }
        throw err;
      }
      try {
        sysctlSetMany(Object.entries(hostSysctls(p.hostIf, v6.length > 0)).map(([k, v]) => [sysKey(k), v]));
        const hostLink = await host.linkByName(p.hostIf);
        await host.linkSet(hostLink.index, { up: true, alias: p.alias });
        await this.withPod(p.netns, async (pod) => {
          if (v6.length > 0) sysctlSetMany(['all', 'default', 'lo'].map((i) => [['net', 'ipv6', 'conf', i, 'disable_ipv6'], '0']), p.netns);
          if (p.allowIpForwarding) sysctlSetMany([['net.ipv4.ip_forward', '1']], p.netns);
          const link = await pod.linkByName(p.ifname);
          await pod.linkSet(link.index, { up: true });
          for (const ip of v4) await pod.addrAdd({ ifindex: link.index, address: `${ip.ip}/32` });
          if (v4.length > 0) {
            await pod.routeAdd({ dst: `${GATEWAY_V4}/32`, oif: link.index, scope: RT_SCOPE.LINK });
            await pod.routeAdd({ dst: '0.0.0.0/0', gw: GATEWAY_V4, oif: link.index });
          }
          for (const ip of v6) await pod.addrAdd({ ifindex: link.index, address: `${ip.ip}/128`, flags: IFA_F.NODAD });
          if (v6.length > 0) await pod.routeAdd({ dst: '::/0', gw: GATEWAY_V6, oif: link.index });
        });
        for (const ip of v4) await host.routeReplace({ dst: `${ip.ip}/32`, oif: hostLink.index, scope: RT_SCOPE.LINK });
        for (const ip of v6) await host.routeReplace({ dst: `${ip.ip}/128`, oif: hostLink.index });
      } catch (err) {
        await host.linkDel(p.hostIf).catch(() => undefined);
        throw err;
      }
    });
  }

  hostLink(name: string): Promise<HostLink | undefined> {
    return this.withHost(async (nl) => {
      try {
        const l = await nl.linkByName(name);
        return { name: l.name, ...(l.alias ? { alias: l.alias } : {}) };
      } catch (err) {
        if (gone(err)) return undefined;
        throw err;
      }
    });
  }

  deleteLink(name: string): Promise<void> {
    return this.withHost(async (nl) => {
      try {
        await nl.linkDel(name);
      } catch (err) {
        if (!gone(err)) throw err;
      }
    });
  }

  listHostLinks(prefix: string): Promise<HostLink[]> {
    return this.withHost(async (nl) =>
      (await nl.linkList()).filter((l) => l.name.startsWith(prefix)).map((l) => ({ name: l.name, ...(l.alias ? { alias: l.alias } : {}) })),
    );
  }

  async observe(p: { netns: string; ifname: string; hostIf: string; v6: boolean }): Promise<ObservedPod> {
    const got: ObservedPod = { hostRoutes: [], hostSysctls: {}, containerRoutes: [] };
    await this.withHost(async (nl) => {
      const h = await nl.linkByName(p.hostIf).catch((err: unknown) => {
        if (gone(err)) return undefined;
        throw err;
      });
      if (!h) return;
      got.host = { mac: h.address ?? '', up: h.up, mtu: h.mtu ?? 0, ...(h.alias ? { alias: h.alias } : {}) };
      for (const family of p.v6 ? ([2, 10] as const) : ([2] as const)) {
        for (const r of await nl.routeList({ family, oif: h.index })) got.hostRoutes.push({ dst: r.dst ?? '', scope: scopeName(r.scope) });
      }
    });
    for (const k of Object.keys(hostSysctls(p.hostIf, p.v6))) {
      try {
        got.hostSysctls[k] = sysctlGet(sysKey(k)).trim();
      } catch {
        got.hostSysctls[k] = undefined;
      }
    }
    await this.withPod(p.netns, async (nl) => {
      const c = await nl.linkByName(p.ifname).catch((err: unknown) => {
        if (gone(err)) return undefined;
        throw err;
      });
      if (!c) return;
      const addrs = await nl.addrList({ ifindex: c.index });
      got.container = { mac: c.address ?? '', up: c.up, mtu: c.mtu ?? 0, addrs: addrs.map((a) => a.address) };
      for (const family of p.v6 ? ([2, 10] as const) : ([2] as const)) {
        for (const r of await nl.routeList({ family, oif: c.index })) {
          const dst = r.dst === undefined || r.dst === '0.0.0.0/0' || r.dst === '::/0' ? 'default' : r.dst;
          got.containerRoutes.push({ dst, ...(r.gw ? { gateway: r.gw } : {}), scope: scopeName(r.scope) });
        }
      }
    });
    return got;
  }
}
