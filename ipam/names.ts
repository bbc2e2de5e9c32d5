/**
 * Object names of the IPAM kinds (Calico `names.CIDRToName`, affinity and handle naming).
 */
import { createHash } from 'node:crypto';
import { cidrToName } from './cidr.js';

/** `10.244.1.0/26` → `10-244-1-0-26`. */
export function blockName(cidr: string): string {
  return cidrToName(cidr);
}

/** `<host>-<cidrname>`; when that reaches 253 characters the host is cut and a hash suffix appended. */
export function affinityName(node: string, cidr: string): string {
  const cidrName = cidrToName(cidr);
  const name = `${node}-${cidrName}`;
  if (name.length < 253) return name;
  const hash = createHash('sha256').update(node + cidrName).digest('hex').slice(0, 11);
  const keep = 253 - cidrName.length - hash.length - 3;
  return `${node.slice(0, Math.max(0, keep))}-${cidrName}-${hash}`;
}

/** IPAMHandle object name: the handle ID lower-cased. */
export function handleObjectName(handleId: string): string {
  return handleId.toLowerCase();
}
