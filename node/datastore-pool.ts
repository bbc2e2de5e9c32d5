/**
 * Long-lived datastore connections for tabby-node's CNI server: one per distinct configuration
 * (the agent's own connection is seeded), handed out with a no-op close() so the CNI handlers'
 * open/close per call costs nothing. A configuration whose kubeconfig or etcd certificate files
 * change gets a new connection; the superseded one closes after a grace period. `memory` stores are
 * never pooled (a CNI process gets a fresh, empty one, and so does each request here).
 */
import { statSync } from 'node:fs';
import type { DatastoreConfig } from '../datastore/config.js';
import type { Datastore } from '../datastore/types.js';
import type { Logger } from '../lib/log.js';

export type Opener = (cfg: DatastoreConfig) => Promise<Datastore>;

interface Entry {
  key: string;
  ds: Promise<Datastore>;
}

/** The configuration without transport details (the same cluster whatever the client). */
export function poolKey(cfg: DatastoreConfig): string {
  const { etcdTransport: _t, requestTimeoutMs: _r, ...rest } = cfg;
  void _t;
  void _r;
  return JSON.stringify(Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
}

function fileStamp(cfg: DatastoreConfig): string {
  return [cfg.kubeconfig, cfg.etcdCaCertFile, cfg.etcdCertFile, cfg.etcdKeyFile]
    .map((f) => {
      if (!f) return '';
      try {
        return String(statSync(f).mtimeMs);
      } catch {
        return 'missing';
      }
    })
    .join(',');
}

function unclosable(ds: Datastore): Datastore {
  return new Proxy(ds, {
    get(target, prop) {
      if (prop === 'close') return () => Promise.resolve();
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

export class DatastorePool {
  private readonly entries = new Map<string, Entry>();
  private readonly seeded = new Set<Datastore>();
  private readonly retiring = new Map<NodeJS.Timeout, Entry>();

  constructor(
    private readonly opener: Opener,
    private readonly log: Logger,
    private readonly graceMs = 60_000,
  ) {}

  /** Use an existing connection (the agent's) for this configuration; the pool never closes it. */
  seed(cfg: DatastoreConfig, ds: Datastore): void {
    this.seeded.add(ds);
    this.entries.set(poolKey(cfg), { key: fileStamp(cfg), ds: Promise.resolve(ds) });
  }

  /** A shared connection for `cfg` (close() on it is a no-op). */
  async open(cfg: DatastoreConfig): Promise<Datastore> {
    if (cfg.type === 'memory') return this.opener(cfg);
    const base = poolKey(cfg);
    const stamp = fileStamp(cfg);
    const cur = this.entries.get(base);
    if (cur && (cur.key === stamp || (await cur.ds.then((d) => this.seeded.has(d), () => false)))) return unclosable(await cur.ds);
    if (cur) this.retire(cur);
    const ds = this.opener(cfg);
    const entry: Entry = { key: stamp, ds };
    this.entries.set(base, entry);
    ds.catch(() => {
      if (this.entries.get(base) === entry) this.entries.delete(base);
    });
    this.log.info({ datastore: cfg.type }, 'CNI server: opened a datastore connection');
    return unclosable(await ds);
  }

  private async closeEntry(e: Entry): Promise<void> {
    const d = await e.ds.catch(() => undefined);
    if (d && !this.seeded.has(d)) await d.close().catch(() => undefined);
  }

  private retire(e: Entry): void {
    const t = setTimeout(() => {
      this.retiring.delete(t);
      void this.closeEntry(e);
    }, this.graceMs);
    t.unref();
    this.retiring.set(t, e);
  }

  /** Closes every connection the pool opened (not seeded ones). */
  async close(): Promise<void> {
    const all = [...this.retiring.values(), ...this.entries.values()];
    for (const t of this.retiring.keys()) clearTimeout(t);
    this.retiring.clear();
    this.entries.clear();
    for (const e of all) await this.closeEntry(e);
  }
}
