/**
 * IPv4 / IPv6 autodetection as calico-node (first-found, can-reach=, interface=, skip-interface=, cidr=).
 * The choice is pure over an injected interface list; it returns the address AND an explanation
 * (which interfaces were considered, skipped and why) for the log and `tabbyctl node status`.
 */
import { cidrContains, parseCidr } from '../api/net.js';
import type { AutodetectMethod } from './config.js';
import { TabbyError } from '../lib/errors.js';

export interface HostInterface {
  name: string;
  up: boolean;
  /** Addresses in CIDR form, e.g. `10.0.0.5/24` (the other family's are ignored). */
  addresses: string[];
}

export interface Detection {
  /** `10.0.0.5/24`. */
  cidr: string;
  address: string;
  interface: string;
  method: string;
  /** One line per interface considered: `eth0: chosen 10.0.0.5/24`, `docker0: skipped (excluded by default: ^docker.*)`. */
  explanation: string[];
}

export class AutodetectError extends TabbyError {
  readonly explanation: string[];
  constructor(message: string, explanation: string[], hint: string) {
    super('AutodetectFailed', message, { hint });
    this.explanation = explanation;
  }
}

/** Interfaces calico-node's first-found never picks. */
export const DEFAULT_EXCLUDES = [
  '^docker.*',
  '^cbr.*',
  '^dummy.*',
  '^virbr.*',
  '^lxcbr.*',
  '^veth.*',
  '^lo$',
  '^cali.*',
  '^tunl.*',
  '^flannel.*',
  '^kube-ipvs.*',
  '^cni.*',
  '^vxlan\\.calico$',
  '^vxlan-v6\\.calico$',
  '^wireguard\\.cali$',
  '^nodelocaldns.*',
  '^podman.*',
];

function usableAddrs(iface: HostInterface, family: 4 | 6): { ok: string[]; rejected: string[] } {
  const ok: string[] = [];
  const rejected: string[] = [];
  for (const a of iface.addresses) {
    const c = parseCidr(a);
    if (!c || c.family !== family) continue;
    const range = c.addr.range();
    if (range === 'loopback') rejected.push(`${a} loopback`);
    else if (range === 'linkLocal') rejected.push(`${a} link-local`);
    else ok.push(a);
  }
  return { ok, rejected };
}

export function describeMethod(m: AutodetectMethod): string {
  switch (m.kind) {
    case 'first-found':
      return 'first-found';
    case 'can-reach':
      return `can-reach=${m.destination}`;
    case 'interface':
      return `interface=${m.patterns.join(',')}`;
    case 'skip-interface':
      return `skip-interface=${m.patterns.join(',')}`;
    case 'cidr':
      return `cidr=${m.cidrs.join(',')}`;
  }
}

function matchAny(pats: string[], name: string): string | undefined {
  return pats.find((p) => new RegExp(p).test(name));
}

/**
 * Choose an address. For can-reach, `sourceFor` is the address the kernel would use towards the
 * destination (computed by the caller; see `netlinkInterfaceSource`).
 */
export function chooseAddress(method: AutodetectMethod, ifaces: HostInterface[], sourceFor?: string, family: 4 | 6 = 4): Detection {
  const expl: string[] = [];
  const fam = `IPv${family}`;
  const label = describeMethod(method);
  const sorted = [...ifaces].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const pick = (iface: HostInterface, cidr: string, why: string): Detection => {
    expl.push(`${iface.name}: chosen ${cidr} (${why})`);
    return { cidr, address: cidr.slice(0, cidr.indexOf('/')), interface: iface.name, method: label, explanation: expl };
  };

  if (method.kind === 'can-reach') {
    if (sourceFor === undefined) {
      throw new AutodetectError(`no route to ${method.destination}`, expl, 'make the can-reach destination routable from this node');
    }
    for (const iface of sorted) {
      const hit = iface.addresses.find((a) => a.startsWith(`${sourceFor}/`));
      if (hit) return pick(iface, hit, `source address of the route to ${method.destination}`);
      expl.push(`${iface.name}: skipped (does not hold ${sourceFor}, the source towards ${method.destination})`);
    }
    throw new AutodetectError(`source address ${sourceFor} towards ${method.destination} is on no interface`, expl, 'check the routing table');
  }

  const cidrs = method.kind === 'cidr' ? method.cidrs.map((c) => parseCidr(c)!) : [];
  for (const iface of sorted) {
    if (method.kind === 'first-found') {
      const ex = matchAny(DEFAULT_EXCLUDES, iface.name);
      if (ex) {
        expl.push(`${iface.name}: skipped (excluded by default: ${ex})`);
        continue;
      }
    } else if (method.kind === 'interface') {
      if (!matchAny(method.patterns, iface.name)) {
        expl.push(`${iface.name}: skipped (does not match ${method.patterns.join(',')})`);
        continue;
      }
    } else if (method.kind === 'skip-interface') {
      const ex = matchAny(method.patterns, iface.name) ?? matchAny(['^lo$'], iface.name);
      if (ex) {
        expl.push(`${iface.name}: skipped (matches ${ex})`);
        continue;
      }
    }
    if (!iface.up) {
      expl.push(`${iface.name}: skipped (down)`);
      continue;
    }
    const { ok, rejected } = usableAddrs(iface, family);
    let candidates = ok;
    if (method.kind === 'cidr') {
      candidates = ok.filter((a) => cidrs.some((c) => cidrContains(c, parseCidr(a)!.addr)));
      if (candidates.length === 0) {
        expl.push(`${iface.name}: skipped (no ${fam} address in ${method.cidrs.join(',')}${ok.length ? `; has ${ok.join(', ')}` : ''})`);
        continue;
      }
    }
    const first = candidates[0];
    if (first === undefined) {
      expl.push(`${iface.name}: skipped (no usable ${fam} address${rejected.length ? `: ${rejected.join(', ')}` : ''})`);
      continue;
    }
    const why =
      method.kind === 'first-found'
        ? 'first up interface, in name order, not excluded by default'
        : method.kind === 'interface'
          ? `first interface matching ${method.patterns.join(',')}`
          : method.kind === 'skip-interface'
            ? `first interface not matching ${method.patterns.join(',')}`
            : `address inside ${method.cidrs.join(',')}`;
    return pick(iface, first, why);
  }
  const v = family === 4 ? '' : '6';
  throw new AutodetectError(`IP${v} autodetection (${label}) found no usable ${fam} address`, expl, `set IP${v}=<addr>/<len> or pick another IP${v}_AUTODETECTION_METHOD`);
}

/** The one-line summary used in logs and node status. */
export function summarize(d: Detection): string {
  return `${d.cidr} on ${d.interface} (method ${d.method})`;
}

/** Real host interfaces over netlink (in the current netns), addresses of one family. */
export async function netlinkInterfaces(family: 4 | 6 = 4): Promise<HostInterface[]> {
  const { Netlink } = await import('../netlink/index.js');
  const nl = Netlink.open();
  try {
    const links = await nl.linkList();
    const addrs = await nl.addrList({ family: family === 4 ? 2 : 10 });
    return links.map((l) => ({
      name: l.name,
      up: l.up,
      addresses: addrs.filter((a) => a.ifindex === l.index).map((a) => a.address),
    }));
  } finally {
    nl.close();
  }
}

/** The interface that holds `address` (a static IP/IP6), if any (pure). */
export function interfaceHolding(ifaces: readonly HostInterface[], address: string): string | undefined {
  const want = parseCidr(`${address}/${address.includes(':') ? 128 : 32}`)?.addr.toString();
  if (want === undefined) return undefined;
  return ifaces.find((i) => i.addresses.some((a) => parseCidr(a)?.addr.toString() === want))?.name;
}

/**
 * Where a static node address lives on this host (IP=<addr> / IP6=<addr>): the interface its
 * no-encap routes must leave by. Undefined when no interface holds it.
 */
export async function locateAddress(address: string, family: 4 | 6): Promise<string | undefined> {
  return interfaceHolding(await netlinkInterfaces(family), address);
}

/** The local address the kernel picks towards `dest` (a connected UDP socket sends nothing). */
export async function sourceAddressFor(dest: string, family: 4 | 6 = 4): Promise<string | undefined> {
  const dgram = await import('node:dgram');
  const dns = await import('node:dns/promises');
  const { isIP } = await import('node:net');
  let ip = dest;
  if (isIP(dest) !== family) {
    try {
      ip = (await dns.lookup(dest, { family })).address;
    } catch {
      return undefined;
    }
  }
  const sock = dgram.createSocket(family === 4 ? 'udp4' : 'udp6');
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.connect(53, ip, () => resolve());
    });
    return sock.address().address;
  } catch {
    return undefined;
  } finally {
    sock.close();
  }
}

/** Autodetect on this host. */
export async function autodetect(method: AutodetectMethod, family: 4 | 6 = 4): Promise<Detection> {
  const ifaces = await netlinkInterfaces(family);
  const src = method.kind === 'can-reach' ? await sourceAddressFor(method.destination, family) : undefined;
  return chooseAddress(method, ifaces, src, family);
}
