/** Host-side interface names, as Calico derives them. */
import { createHash } from 'node:crypto';

export const HOST_IF_PREFIX = 'cali';

/**
 * `cali` + the first 11 hex digits of SHA-1("<namespace>.<pod>"); without Kubernetes pod args,
 * SHA-1 of the container id.
 */
export function hostVethName(args: Record<string, string>, containerId: string, prefix = HOST_IF_PREFIX): string {
  const ns = args.K8S_POD_NAMESPACE;
  const pod = args.K8S_POD_NAME;
  const key = ns && pod ? `${ns}.${pod}` : containerId;
  return prefix + createHash('sha1').update(key).digest('hex').slice(0, 15 - prefix.length);
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
