/** Shared setup for IPAM tests: pools, nodes and configuration written straight to a Datastore. */
import type { Datastore } from '../../datastore/types.js';
import type { IPPoolSpec } from '../../api/types.js';

export async function addPool(ds: Datastore, name: string, spec: IPPoolSpec): Promise<void> {
  await ds.create({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name }, spec });
}

export async function addNode(ds: Datastore, name: string, labels: Record<string, string> = {}): Promise<void> {
  await ds.create({ apiVersion: 'projectcalico.org/v3', kind: 'Node', metadata: { name, labels }, spec: {} });
}
