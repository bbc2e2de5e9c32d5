/**
 * Which part of a node's computed state a datastore change can touch, so that the agent recomputes
 * only when it can matter (node/agent.ts). In a running cluster most changes belong to other nodes:
 * every pod created anywhere writes its WorkloadEndpoint and an allocation in its node's IPAMBlock,
 * and each agent used to recompute its BGP plan and dataplane view for each of them (≈ 2–5 ms of CPU
 * per change per agent; bench/RESULTS.md, session 5).
 *
 * What the computations read (node/bgp-config.ts computeExports, felix/resources.ts):
 * - WorkloadEndpoint: only this node's (the dataplane's workload routes).
 * - BlockAffinity: only this node's (local blocks, exports, blackholes).
 * - IPAMBlock: cidr, affinity and deleted of every block (local and remote block routes, implied next
 *   hops); of the allocations, only those of blocks affine elsewhere whose attribute names this node
 *   (borrowed /32s and /128s it exports).
 * Everything else (Node, BGPPeer, BGPConfiguration, BGPFilter, IPPool) is always recomputed.
 */
import type { Resource } from '../api/meta.js';
import type { BlockAffinity, IPAMBlock, WorkloadEndpoint } from '../api/types.js';

export type Recompute = 'plan' | 'dataplane';

/** What an IPAMBlock means to `nodeName`: equal projections compute to equal plans and dataplane views. */
export function blockProjection(nodeName: string, b: IPAMBlock | undefined): string {
  if (!b) return '';
  const s = b.spec;
  const borrowed: number[] = [];
  if (s.affinity !== `host:${nodeName}`) {
    s.allocations.forEach((attrIdx, ord) => {
      if (attrIdx !== null && attrIdx !== undefined && s.attributes[attrIdx]?.secondary?.node === nodeName) borrowed.push(ord);
    });
  }
  return `${s.cidr}|${s.affinity ?? ''}|${s.deleted ? 1 : 0}|${borrowed.join(',')}`;
}

/**
 * The recompute a change of `kind` from `prev` to `next` (either undefined: added / deleted) needs on
 * `nodeName`, or undefined when it cannot change anything there.
 */
export function recomputeFor(nodeName: string, kind: string, prev: Resource | undefined, next: Resource | undefined): Recompute | undefined {
  switch (kind) {
    case 'WorkloadEndpoint': {
      const mine = (w: Resource | undefined): boolean => (w as WorkloadEndpoint | undefined)?.spec.node === nodeName;
      return mine(prev) || mine(next) ? 'dataplane' : undefined;
    }
    case 'BlockAffinity': {
      const mine = (a: Resource | undefined): boolean => (a as BlockAffinity | undefined)?.spec.node === nodeName;
      return mine(prev) || mine(next) ? 'plan' : undefined;
    }
    case 'IPAMBlock':
      return blockProjection(nodeName, prev as IPAMBlock | undefined) === blockProjection(nodeName, next as IPAMBlock | undefined) ? undefined : 'plan';
    default:
      return 'plan';
  }
}
