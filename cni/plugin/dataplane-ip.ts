/**
 * PodDataplane over iproute2 (`ip`, `nsenter`): three execs per ADD (veth create from inside the pod
 * namespace with the host end placed in ours, one batch per side); host sysctls written directly.
 * Used until the netlink library is merged (then NetlinkDataplane implements the same interface).
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { TabbyError } from '../../lib/errors.js';
import { type HostLink, type ObservedPod, type PodDataplane, type SetupParams, hostSysctls } from './dataplane.js';
import { GATEWAY_V4, GATEWAY_V6, HOST_MAC } from './result.js';

export class DataplaneError extends TabbyError {
  readonly stderr: string;
  constructor(message: string, stderr: string, hint?: string) {
    super('Dataplane', message, hint ? { hint } : undefined);
    this.stderr = stderr;
  }
}

function run(cmd: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new DataplaneError(`${cmd} ${args.join(' ')} failed: ${(stderr || err.message).trim()}`, stderr));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

function inNetns(netns: string, args: string[], input?: string): Promise<string> {
  return run('nsenter', [`--net=${netns}`, 'ip', ...args], input);
}

async function readSysctl(key: string): Promise<string | undefined> {
  try {
    return (await readFile(`/proc/sys/${key}`, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

interface IpLink {
  ifname: string;
  address?: string;
  flags?: string[];
  mtu?: number;
  ifalias?: string;
  addr_info?: Array<{ local: string; prefixlen: number }>;
}

function jsonLines<T>(out: string): T[][] {
  return out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as T[]);
}

export class IprouteDataplane implements PodDataplane {
  async setup(p: SetupParams): Promise<void> {
    const v4 = p.ips.filter((x) => x.family === 4);
    const v6 = p.ips.filter((x) => x.family === 6);
    // The host end is created straight in our namespace (netns <our pid>).
    await inNetns(p.netns, [
      'link', 'add', p.ifname, 'address', p.containerMac, 'mtu', String(p.mtu), 'type', 'veth',
      'peer', 'name', p.hostIf, 'address', HOST_MAC, 'mtu', String(p.mtu), 'netns', String(process.pid),
    ]);
    try {
      for (const [k, v] of Object.entries(hostSysctls(p.hostIf, v6.length > 0))) await writeFile(`/proc/sys/${k}`, v);
      const host = [`link set dev ${p.hostIf} alias ${p.alias} up`];
      for (const ip of v4) host.push(`route add ${ip.ip}/32 dev ${p.hostIf} scope link`);
      for (const ip of v6) host.push(`route add ${ip.ip}/128 dev ${p.hostIf}`);
      await run('ip', ['-batch', '-'], host.join('\n') + '\n');
      if (v6.length > 0) {
        await run('nsenter', [`--net=${p.netns}`, 'sh', '-c', 'for k in all default lo; do echo 0 > /proc/sys/net/ipv6/conf/$k/disable_ipv6; done']);
      }
      const pod = [`link set dev ${p.ifname} up`];
      for (const ip of v4) pod.push(`addr add ${ip.ip}/32 dev ${p.ifname}`);
      if (v4.length > 0) pod.push(`route add ${GATEWAY_V4}/32 dev ${p.ifname} scope link`, `route add default via ${GATEWAY_V4} dev ${p.ifname}`);
      for (const ip of v6) pod.push(`addr add ${ip.ip}/128 dev ${p.ifname} nodad`);
      if (v6.length > 0) pod.push(`-6 route add default via ${GATEWAY_V6} dev ${p.ifname}`);
      await inNetns(p.netns, ['-batch', '-'], pod.join('\n') + '\n');
      if (p.allowIpForwarding) {
        await run('nsenter', [`--net=${p.netns}`, 'sh', '-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward']);
      }
    } catch (err) {
      await this.deleteLink(p.hostIf);
      throw err;
    }
  }

  async hostLink(name: string): Promise<HostLink | undefined> {
    let out: string;
    try {
      out = await run('ip', ['-j', 'link', 'show', 'dev', name]);
    } catch (err) {
      if (err instanceof DataplaneError && /does not exist|Cannot find device/.test(err.stderr)) return undefined;
      throw err;
    }
    const l = (JSON.parse(out) as IpLink[])[0];
    return l ? { name: l.ifname, ...(l.ifalias ? { alias: l.ifalias } : {}) } : undefined;
  }

  async deleteLink(name: string): Promise<void> {
    try {
      await run('ip', ['link', 'del', 'dev', name]);
    } catch (err) {
      if (err instanceof DataplaneError && /does not exist|Cannot find device/.test(err.stderr)) return;
      throw err;
    }
  }

  async listHostLinks(prefix: string): Promise<HostLink[]> {
    const links = JSON.parse(await run('ip', ['-j', 'link', 'show'])) as IpLink[];
    return links
      .filter((l) => l.ifname.startsWith(prefix))
      .map((l) => ({ name: l.ifname.split('@')[0] ?? l.ifname, ...(l.ifalias ? { alias: l.ifalias } : {}) }));
  }

  async observe(p: { netns: string; ifname: string; hostIf: string; v6: boolean }): Promise<ObservedPod> {
    const got: ObservedPod = { hostRoutes: [], hostSysctls: {}, containerRoutes: [] };
    const hostOut = await run('ip', ['-j', '-batch', '-'], `link show dev ${p.hostIf}\nroute show dev ${p.hostIf}\n`).catch(() => '');
    const [hl, hr] = hostOut ? jsonLines<Record<string, unknown>>(hostOut) : [];
    const h = hl?.[0] as IpLink | undefined;
    if (h) got.host = { mac: h.address ?? '', up: (h.flags ?? []).includes('UP'), mtu: h.mtu ?? 0, ...(h.ifalias ? { alias: h.ifalias } : {}) };
    for (const r of hr ?? []) got.hostRoutes.push({ dst: String(r.dst), scope: String(r.scope ?? 'global') });
    if (p.v6) {
      const r6 = JSON.parse(await run('ip', ['-j', '-6', 'route', 'show', 'dev', p.hostIf]).catch(() => '[]')) as Array<Record<string, unknown>>;
      for (const r of r6) got.hostRoutes.push({ dst: String(r.dst), scope: String(r.scope ?? 'global') });
    }
    for (const k of Object.keys(hostSysctls(p.hostIf, p.v6))) got.hostSysctls[k] = await readSysctl(k);
    const podOut = await inNetns(p.netns, ['-j', '-batch', '-'], `addr show dev ${p.ifname}\nroute show dev ${p.ifname}\n`).catch(() => '');
    const [pl, pr] = podOut ? jsonLines<Record<string, unknown>>(podOut) : [];
    const c = pl?.[0] as IpLink | undefined;
    if (c) {
      got.container = {
        mac: c.address ?? '',
        up: (c.flags ?? []).includes('UP'),
        mtu: c.mtu ?? 0,
        addrs: (c.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`),
      };
    }
    for (const r of pr ?? []) got.containerRoutes.push({ dst: String(r.dst), ...(r.gateway ? { gateway: String(r.gateway) } : {}), scope: String(r.scope ?? 'global') });
    if (p.v6) {
      const r6 = JSON.parse(await inNetns(p.netns, ['-j', '-6', 'route', 'show', 'dev', p.ifname]).catch(() => '[]')) as Array<Record<string, unknown>>;
      for (const r of r6) got.containerRoutes.push({ dst: String(r.dst), ...(r.gateway ? { gateway: String(r.gateway) } : {}) });
    }
    return got;
  }
}
