/**
 * Every datastore read and write the allocator makes (Calico `ipam_block_reader_writer.go`). Thin:
 * it maps NotFound to `undefined`, hides soft-deleted objects, stamps apiVersion/kind and bumps the
 * block sequence number on update. Conflicts (lost compare-and-swap) surface as ConflictError and
 * are retried by the caller's bounded loop; other errors surface untouched.
 */
import { API_VERSION_CRD_V1, API_VERSION_V3 } from '../api/meta.js';
import type { Resource } from '../api/meta.js';
import { NotFoundError, type Datastore } from '../datastore/types.js';
import { IPAMCONFIG_DEFAULTS } from '../api/defaults.js';
import { affinityName, blockName, handleObjectName } from '../api/names.js';
import type {
  BlockAffinity,
  BlockAffinitySpec,
  IPAMBlock,
  IPAMBlockSpec,
  IPAMConfiguration,
  IPAMConfigurationSpec,
  IPAMHandle,
  IPAMHandleSpec,
  IPPool,
} from '../api/types.js';

/**
 * The next block sequence number. Blocks written by Calico start at UnixNano (≈1.8e18), beyond
 * 2^53, where `+ 1` is lost in a double: step by the spacing of doubles there so the number still
 * changes on every write.
 */
export function nextSequence(n: number): number {
  if (n + 1 !== n) return n + 1;
  return n + 2 ** (Math.floor(Math.log2(n)) - 52);
}

/** The IPAMConfiguration singleton's name. */
export const IPAM_CONFIG_NAME = 'default';

async function orUndefined<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
}

function envelope<K extends string, S>(kind: K, apiVersion: string, name: string, spec: S): Resource<K, S, never> {
  return { apiVersion, kind, metadata: { name }, spec };
}

export class IpamStore {
  constructor(readonly ds: Datastore) {}

  // ---- blocks
  async getBlock(cidr: string): Promise<IPAMBlock | undefined> {
    const b = await orUndefined(this.ds.get<IPAMBlock>('IPAMBlock', blockName(cidr)));
    return b && !b.spec.deleted ? b : undefined;
  }

  async listBlocks(): Promise<IPAMBlock[]> {
    const { items } = await this.ds.list<IPAMBlock>('IPAMBlock');
    return items.filter((b) => !b.spec.deleted);
  }

  createBlock(spec: IPAMBlockSpec): Promise<IPAMBlock> {
    return this.ds.create(envelope('IPAMBlock', API_VERSION_CRD_V1, blockName(spec.cidr), spec));
  }

  /** CAS write of a new spec over `prev`; bumps sequenceNumber. */
  updateBlock(prev: IPAMBlock, spec: IPAMBlockSpec): Promise<IPAMBlock> {
    const next: IPAMBlockSpec = { ...spec, sequenceNumber: nextSequence(prev.spec.sequenceNumber ?? 0) };
    return this.ds.update<IPAMBlock>({ ...prev, metadata: { ...prev.metadata }, spec: next });
  }

  async deleteBlock(prev: IPAMBlock): Promise<void> {
    const opts = prev.metadata.resourceVersion === undefined ? {} : { resourceVersion: prev.metadata.resourceVersion };
    await this.ds.delete('IPAMBlock', prev.metadata.name, opts);
  }

  // ---- affinities
  async getAffinity(host: string, cidr: string): Promise<BlockAffinity | undefined> {
    const a = await orUndefined(this.ds.get<BlockAffinity>('BlockAffinity', affinityName(host, cidr)));
    return a && a.spec.deleted !== 'true' ? a : undefined;
  }

  /** All affinities, or one host's. */
  async listAffinities(host?: string): Promise<BlockAffinity[]> {
    const opts = host === undefined ? {} : { namePrefix: `${host}-` };
    const { items } = await this.ds.list<BlockAffinity>('BlockAffinity', opts);
    return items.filter((a) => a.spec.deleted !== 'true' && (host === undefined || a.spec.node === host));
  }

  createAffinity(spec: BlockAffinitySpec): Promise<BlockAffinity> {
    return this.ds.create(envelope('BlockAffinity', API_VERSION_CRD_V1, affinityName(spec.node, spec.cidr), spec));
  }

  updateAffinity(prev: BlockAffinity, spec: BlockAffinitySpec): Promise<BlockAffinity> {
    return this.ds.update<BlockAffinity>({ ...prev, metadata: { ...prev.metadata }, spec });
  }

  /** Delete; NotFound is fine (already gone). */
  async deleteAffinity(prev: BlockAffinity): Promise<void> {
    const opts = prev.metadata.resourceVersion === undefined ? {} : { resourceVersion: prev.metadata.resourceVersion };
    await orUndefined(this.ds.delete('BlockAffinity', prev.metadata.name, opts));
  }

  // ---- handles
  async getHandle(handleId: string): Promise<IPAMHandle | undefined> {
    const h = await orUndefined(this.ds.get<IPAMHandle>('IPAMHandle', handleObjectName(handleId)));
    return h && !h.spec.deleted ? h : undefined;
  }

  async listHandles(): Promise<IPAMHandle[]> {
    const { items } = await this.ds.list<IPAMHandle>('IPAMHandle');
    return items.filter((h) => !h.spec.deleted);
  }

  createHandle(spec: IPAMHandleSpec): Promise<IPAMHandle> {
    return this.ds.create(envelope('IPAMHandle', API_VERSION_CRD_V1, handleObjectName(spec.handleID), spec));
  }

  updateHandle(prev: IPAMHandle, spec: IPAMHandleSpec): Promise<IPAMHandle> {
    return this.ds.update<IPAMHandle>({ ...prev, metadata: { ...prev.metadata }, spec });
  }

  async deleteHandle(prev: IPAMHandle): Promise<void> {
    const opts = prev.metadata.resourceVersion === undefined ? {} : { resourceVersion: prev.metadata.resourceVersion };
    await this.ds.delete('IPAMHandle', prev.metadata.name, opts);
  }

  // ---- configuration, pools, nodes
  async getConfig(): Promise<IPAMConfigurationSpec> {
    const c = await orUndefined(this.ds.get<IPAMConfiguration>('IPAMConfiguration', IPAM_CONFIG_NAME));
    return { ...IPAMCONFIG_DEFAULTS, ...(c?.spec ?? {}) };
  }

  async getConfigObject(): Promise<IPAMConfiguration | undefined> {
    return orUndefined(this.ds.get<IPAMConfiguration>('IPAMConfiguration', IPAM_CONFIG_NAME));
  }

  async putConfig(spec: IPAMConfigurationSpec, prev: IPAMConfiguration | undefined): Promise<IPAMConfiguration> {
    if (prev) return this.ds.update<IPAMConfiguration>({ ...prev, metadata: { ...prev.metadata }, spec });
    return this.ds.create(envelope('IPAMConfiguration', API_VERSION_V3, IPAM_CONFIG_NAME, spec));
  }

  async listPools(): Promise<IPPool[]> {
    return (await this.ds.list<IPPool>('IPPool')).items;
  }

  /** The Calico Node's labels (pool nodeSelector input); {} when the node has no Node resource. */
  async nodeLabels(host: string): Promise<Record<string, string>> {
    const n = await orUndefined(this.ds.get('Node', host));
    return n?.metadata.labels ?? {};
  }
}
