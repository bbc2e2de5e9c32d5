/** Object naming as Calico's (libcalico-go names/cidr.go and the IPAM KDD resources). */
import { createHash } from 'node:crypto';
import { TabbyError } from '../lib/errors.js';
import { canonicalCidr, parseCidr } from './net.js';

/** Kubernetes object names are at most 253 characters. */
const MAX_NAME = 253;
const AFFINITY_HASH_LEN = 11;

export class NameError extends TabbyError {
  constructor(message: string, hint?: string) {
    super('InvalidName', message, hint === undefined ? undefined : { hint });
  }
}

/** `10.244.1.0/26` → `10-244-1-0-26`; `fd00:10::/122` → `fd00-10---122` (`.`, `:`, `/` become `-`). */
export function blockName(cidr: string): string {
  const c = parseCidr(cidr);
  if (!c) throw new NameError(`${JSON.stringify(cidr)} is not a CIDR`, 'give a block CIDR like 10.244.1.0/26');
  return canonicalCidr(c).replace(/[.:/]/g, '-');
}

/** Inverse of blockName: `10-244-1-0-26` → `10.244.1.0/26`; `fd00-10---122` → `fd00:10::/122`. */
export function blockCidrFromName(name: string): string {
  const dash = name.lastIndexOf('-');
  const head = name.slice(0, dash);
  const prefix = name.slice(dash + 1);
  const v4 = /^\d{1,3}-\d{1,3}-\d{1,3}-\d{1,3}$/.test(head);
  const candidate = `${v4 ? head.replace(/-/g, '.') : head.replace(/-/g, ':')}/${prefix}`;
  const c = dash > 0 ? parseCidr(candidate) : undefined;
  if (!c) throw new NameError(`${JSON.stringify(name)} is not an IPAM block name`, 'block names look like 10-244-1-0-26');
  return canonicalCidr(c);
}

/**
 * BlockAffinity object name: `<node>-<blockName>`, e.g. `node-1-10-244-1-0-26`. When that would reach
 * 253 characters the node part is cut and the first 11 hex digits of sha256(node + blockName) are
 * appended, keeping names unique and valid.
 */
export function affinityName(node: string, cidr: string): string {
  const bn = blockName(cidr);
  const name = `${node}-${bn}`;
  if (name.length < MAX_NAME) return name;
  const hash = createHash('sha256').update(node + bn).digest('hex').slice(0, AFFINITY_HASH_LEN);
  const keep = MAX_NAME - 1 - bn.length - 1 - hash.length - 1;
  return `${node.slice(0, keep)}-${bn}-${hash}`;
}

/** IPAMHandle object name: the handle id lower-cased (`k8s-pod-network.ABC` → `k8s-pod-network.abc`). */
export function handleObjectName(handleID: string): string {
  return handleID.toLowerCase();
}

/** Calico escapes `-` inside each segment of a WorkloadEndpoint name as `--`. */
const escapeSegment = (s: string): string => s.replace(/-/g, '--');

/**
 * WorkloadEndpoint name as Calico computes it for Kubernetes pods: `<node>-k8s-<pod>-<endpoint>`, each
 * segment with `-` doubled, e.g. (`node-1`, `nginx-abc`, `eth0`) → `node--1-k8s-nginx--abc-eth0`.
 */
export function workloadEndpointName(node: string, pod: string, endpoint: string, orchestrator = 'k8s'): string {
  return [node, orchestrator, pod, endpoint].map(escapeSegment).join('-');
}
