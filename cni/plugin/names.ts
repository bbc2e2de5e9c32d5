/** Host-side interface names, as Calico derives them. */
import { closeSync, openSync, readSync } from 'node:fs';
import { sha1Hex } from './sha1.js';

export const HOST_IF_PREFIX = 'cali';

/**
 * `cali` + the first 11 hex digits of SHA-1("<namespace>.<pod>"); without Kubernetes pod args,
 * SHA-1 of the container id.
 */
export function hostVethName(args: Record<string, string>, containerId: string, prefix = HOST_IF_PREFIX): string {
  const ns = args.K8S_POD_NAMESPACE;
  const pod = args.K8S_POD_NAME;
  const key = ns && pod ? `${ns}.${pod}` : containerId;
  return prefix + sha1Hex(key).slice(0, 15 - prefix.length);
}

/** The alias tabby puts on the host veth so DEL and GC can tell whose it is. */
export function attachmentAlias(containerId: string, ifname: string): string {
  return `tabby:${containerId}:${ifname}`;
}

export function parseAttachmentAlias(alias: string | undefined): { containerID: string; ifname: string } | undefined {
  if (!alias?.startsWith('tabby:')) return undefined;
  const rest = alias.slice('tabby:'.length);
  const i = rest.lastIndexOf(':');
  if (i <= 0) return undefined;
  return { containerID: rest.slice(0, i), ifname: rest.slice(i + 1) };
}

/** A random locally administered unicast MAC for the container side. */
export function randomMac(bytes: Uint8Array): string {
  const b = Array.from(bytes.slice(0, 6));
  b[0] = ((b[0] ?? 0) & 0xfe) | 0x02;
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** n random bytes from the kernel (/dev/urandom: node:crypto would cost more to load than the whole read). */
export function randomBytesSync(n: number): Uint8Array {
  const buf = new Uint8Array(n);
  const fd = openSync('/dev/urandom', 'r');
  try {
    let got = 0;
    while (got < n) got += readSync(fd, buf, got, n - got, null);
  } finally {
    closeSync(fd);
  }
  return buf;
}
