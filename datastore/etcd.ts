/**
 * etcd v3 backend (package `etcd3`).
 *
 * Key layout (one key per object, value = the object as JSON without metadata.resourceVersion):
 *
 *   /calico/resources/v3/projectcalico.org/<plural>/<name>                 cluster-scoped kinds
 *   /calico/resources/v3/projectcalico.org/<plural>/<namespace>/<name>     namespaced kinds
 *
 * `<plural>` comes from api/kinds.ts (ippools, ipamblocks, blockaffinities, ipamconfigs, …).
 * metadata.resourceVersion = the key's etcd mod_revision. create = txn "create_revision == 0";
 * update = txn "mod_revision == resourceVersion"; delete = txn on the mod_revision (the caller's
 * precondition or the one just read). list returns the response header revision; watch starts after
 * it (or lists first), tracks the last delivered revision itself, resumes from there after a
 * disconnect, and relists (emitting only differences) when etcd has compacted that revision.
 *
 * Every unary call has a deadline (requestTimeoutMs); failures to reach etcd become
 * UnavailableError naming the endpoints. etcd3's own retry/circuit-breaker policies are replaced by a
 * pass-through so that callers get a prompt typed error and watches reconnect on our backoff.
 */
import type * as Etcd3Lib from 'etcd3';
import type { Etcd3, IKeyValue, IOptions, IRangeResponse } from 'etcd3';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { KindInfo } from '../api/kinds.js';
import type { Resource } from '../api/meta.js';
import type { Logger } from '../lib/log.js';
import { silentLogger } from '../lib/log.js';
import { ETCD_KEY_PREFIX, etcdKey, etcdListPrefix } from './etcd-keys.js';
import type { EtcdHttpDatastore } from './etcd-http.js';
import { backoffDelay, compareByKey, listFilter, normalizeForWrite, resolveKind, rev, stampCreate } from './common.js';
import { etcdWatch, type EtcdStreamContext, type EtcdStreamEnd } from './etcd-watch.js';
import { commitFailure, committed, prepareCommit, tagged } from './commit.js';
import type { CommitOp, CommitResult, Datastore, DeleteOptions, ListOptions, ListResult, WatchEvent, WatchOptions, Watcher } from './types.js';
import { AlreadyExistsError, ConflictError, DatastoreError, NotFoundError, UnavailableError } from './types.js';

export { ETCD_KEY_PREFIX, etcdKey } from './etcd-keys.js';

export interface EtcdDatastoreOptions {
  /** Client URLs, e.g. ["http://127.0.0.1:2379"]. */
  endpoints: string[];
  /** Bound for every request, connecting included (default 5000 ms). */
  requestTimeoutMs?: number;
  /** Key prefix (default ETCD_KEY_PREFIX); only change it to share one etcd between test suites. */
  keyPrefix?: string;
  caCertFile?: string;
  certFile?: string;
  keyFile?: string;
  username?: string;
  password?: string;
  logger?: Logger;
}

type Etcd3Module = typeof Etcd3Lib;
let etcd3Module: Etcd3Module | undefined;

/**
 * Load the etcd3 package (gRPC) on first use: a dynamic import, so bundles that never open an etcd
 * datastore never load it.
 */
export async function loadEtcd3(): Promise<Etcd3Module> {
  etcd3Module ??= await import('etcd3');
  return etcd3Module;
}

/**
 * Open an etcd datastore. `transport: 'grpc'` (default) loads the etcd3 client on first use;
 * `transport: 'http'` talks to etcd's JSON gateway with node:http only (fast to start, ≈ 25 MB less
 * memory) — what tabby-node and the CNI plugins use. Both have every operation, watch included.
 */
export async function createEtcdDatastore(opts: EtcdDatastoreOptions & { transport: 'http' }): Promise<EtcdHttpDatastore>;
export async function createEtcdDatastore(opts: EtcdDatastoreOptions & { transport?: 'grpc' }): Promise<EtcdDatastore>;
export async function createEtcdDatastore(opts: EtcdDatastoreOptions & { transport?: EtcdTransport }): Promise<EtcdDatastore | EtcdHttpDatastore>;
export async function createEtcdDatastore(opts: EtcdDatastoreOptions & { transport?: EtcdTransport }): Promise<EtcdDatastore | EtcdHttpDatastore> {
  if (opts.transport === 'http') {
    const { EtcdHttpDatastore } = await import('./etcd-http.js');
    return new EtcdHttpDatastore(opts);
  }
  return new EtcdDatastore(opts, await loadEtcd3());
}

export type EtcdTransport = 'grpc' | 'http';


// A pass-through fault policy (etcd3 only calls execute()), replacing its retry + circuit breaker.
const passThrough = {
  execute<T>(fn: (ctx: { signal: AbortSignal }) => PromiseLike<T> | T): Promise<T> {
    return Promise.resolve().then(() => fn({ signal: new AbortController().signal }));
  },
};

/** Watch stream reconnect backoff: 100 ms doubling to 2 s (etcd3's IBackoff shape). */
class ReconnectBackoff {
  constructor(private readonly attempt = 0) {}
  get duration(): number {
    return backoffDelay(this.attempt);
  }
  next(): ReconnectBackoff {
    return new ReconnectBackoff(this.attempt + 1);
  }
}

const CONNECTION_ERRORS = new Set([
  'GRPCConnectFailedError',
  'GRPCUnavailableError',
  'GRPCDeadlineExceededError',
  'GRPCCancelledError',
  'BrokenCircuitError',
  'ClientClosedError',
  'EtcdWatchStreamEnded',
]);

function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return CONNECTION_ERRORS.has(err.constructor.name) || CONNECTION_ERRORS.has(err.name) || /UNAVAILABLE|DEADLINE_EXCEEDED|ECONNREFUSED|No connection established/i.test(err.message);
}

export class EtcdDatastore implements Datastore {
  readonly type = 'etcdv3';
  readonly endpoints: string[];
  private readonly client: Etcd3;
  private readonly timeoutMs: number;
  private readonly prefix: string;
  private readonly log: Logger;
  private readonly watchers = new Set<Watcher>();

  /**
   * Prefer createEtcdDatastore(). `lib` is the loaded etcd3 module (loadEtcd3()); when omitted the
   * CommonJS package is required synchronously here, still only when a store is constructed.
   */
  constructor(opts: EtcdDatastoreOptions, lib: Etcd3Module = etcd3Module ?? (createRequire(import.meta.url)('etcd3') as Etcd3Module)) {
    if (opts.endpoints.length === 0) throw new DatastoreError('DatastoreConfig', 'etcd datastore needs at least one endpoint');
    this.endpoints = opts.endpoints;
    this.timeoutMs = opts.requestTimeoutMs ?? 5000;
    this.prefix = opts.keyPrefix ?? ETCD_KEY_PREFIX;
    this.log = opts.logger ?? silentLogger();
    const timeoutMs = this.timeoutMs;
    const options: IOptions = {
      hosts: opts.endpoints,
      dialTimeout: timeoutMs,
      // Detect silently dead connections under a long-lived watch (etcd allows pings every >= 5 s).
      grpcOptions: { 'grpc.keepalive_time_ms': 15000, 'grpc.keepalive_timeout_ms': 5000, 'grpc.keepalive_permit_without_calls': 1 },
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeoutMs }),
      faultHandling: {
        host: () => passThrough as never,
        global: passThrough as never,
        watchBackoff: new ReconnectBackoff() as never,
      },
    };
    if (opts.caCertFile) {
      options.credentials = {
        rootCertificate: readFileSync(opts.caCertFile),
        ...(opts.keyFile ? { privateKey: readFileSync(opts.keyFile) } : {}),
        ...(opts.certFile ? { certChain: readFileSync(opts.certFile) } : {}),
      };
    }
    if (opts.username !== undefined) options.auth = { username: opts.username, password: opts.password ?? '' };
    this.client = new lib.Etcd3(options);
  }

  private endpointName(): string {
    return this.endpoints.join(',');
  }

  /** Run one etcd call with a hard bound; map connection failures to UnavailableError. */
  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new UnavailableError(this.endpointName(), new Error(`${what}: no answer within ${this.timeoutMs} ms`))), this.timeoutMs + 500);
    });
    try {
      return await Promise.race([fn(), bound]);
    } catch (err) {
      if (err instanceof DatastoreError) throw err;
      if (isConnectionError(err)) throw new UnavailableError(this.endpointName(), err);
      throw new DatastoreError('EtcdError', `etcd ${what} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  private decode<T extends Resource>(info: KindInfo, kv: IKeyValue): T {
    const obj = JSON.parse(kv.value.toString('utf8')) as T;
    obj.kind = info.kind;
    obj.apiVersion = info.apiVersion;
    obj.metadata.resourceVersion = String(kv.mod_revision);
    return obj;
  }

  private encode(obj: Resource): string {
    const copy = structuredClone(obj);
    delete copy.metadata.resourceVersion;
    return JSON.stringify(copy);
  }

  private listPrefix(info: KindInfo, opts?: ListOptions): string {
    return etcdListPrefix(info, opts, this.prefix);
  }

  private async range(info: KindInfo, opts?: ListOptions): Promise<IRangeResponse> {
    const p = this.listPrefix(info, opts);
    return this.call('list', () => this.client.getAll().prefix(p).exec());
  }

  async get<T extends Resource = Resource>(kind: string, name: string, namespace?: string): Promise<T> {
    const info = resolveKind(kind);
    const key = etcdKey(info, name, namespace, this.prefix);
    const res = await this.call('get', () => this.client.get(key).exec());
    const kv = res.kvs[0];
    if (!kv) throw new NotFoundError(info.kind, name);
    return this.decode<T>(info, kv);
  }

  async list<T extends Resource = Resource>(kind: string, opts?: ListOptions): Promise<ListResult<T>> {
    const info = resolveKind(kind);
    const filter = listFilter(info, opts);
    const res = await this.range(info, opts);
    const items = res.kvs.map((kv) => this.decode<T>(info, kv)).filter(filter).sort(compareByKey);
    return { items, revision: String(res.header.revision) };
  }

  async create<T extends Resource>(obj: T): Promise<T> {
    const { info, obj: o } = normalizeForWrite(obj);
    delete o.metadata.resourceVersion;
    stampCreate(o);
    const key = etcdKey(info, o.metadata.name, o.metadata.namespace, this.prefix);
    const value = this.encode(o);
    const res = await this.call('create', () => this.client.if(key, 'Create', '==', 0).then(this.client.put(key).value(value)).commit());
    if (!res.succeeded) throw new AlreadyExistsError(info.kind, o.metadata.name);
    o.metadata.resourceVersion = String(res.header.revision);
    return o;
  }

  async update<T extends Resource>(obj: T): Promise<T> {
    const { info, obj: o } = normalizeForWrite(obj);
    const name = o.metadata.name;
    const rv = o.metadata.resourceVersion;
    const key = etcdKey(info, name, o.metadata.namespace, this.prefix);
    if (rv === undefined || rv === '') {
      await this.get(info.kind, name, o.metadata.namespace); // NotFoundError first, as the other backends
      throw new ConflictError(info.kind, name, 'update needs metadata.resourceVersion');
    }
    if (!/^\d+$/.test(rv)) throw new ConflictError(info.kind, name, `resourceVersion ${JSON.stringify(rv)} is not an etcd revision`);
    // uid and creationTimestamp are owned by the store: keep the stored ones (one extra read only
    // when the caller did not bring them along from its own read).
    if (o.metadata.uid === undefined || o.metadata.creationTimestamp === undefined) {
      const current = await this.call('get', () => this.client.get(key).exec());
      const kv = current.kvs[0];
      if (!kv) throw new NotFoundError(info.kind, name);
      const stored = this.decode(info, kv);
      o.metadata.uid = stored.metadata.uid;
      o.metadata.creationTimestamp = stored.metadata.creationTimestamp;
    }
    const value = this.encode(o);
    const res = await this.call('update', () =>
      this.client.if(key, 'Mod', '==', rv).then(this.client.put(key).value(value)).else(this.client.get(key)).commit(),
    );
    if (!res.succeeded) {
      const now = res.responses[0]?.response_range?.kvs[0];
      if (!now) throw new NotFoundError(info.kind, name);
      throw new ConflictError(info.kind, name, `resourceVersion ${rv} is stale (now ${now.mod_revision})`);
    }
    o.metadata.resourceVersion = String(res.header.revision);
    return o;
  }

  async delete<T extends Resource = Resource>(kind: string, name: string, opts?: DeleteOptions): Promise<T> {
    const info = resolveKind(kind);
    const key = etcdKey(info, name, opts?.namespace, this.prefix);
    const want = opts?.resourceVersion;
    if (want === undefined) {
      const prev = await this.call('delete', () => this.client.delete().key(key).getPrevious());
      const kv = prev[0];
      if (!kv) throw new NotFoundError(info.kind, name);
      return this.decode<T>(info, kv);
    }
    if (!/^[1-9]\d*$/.test(want)) throw new ConflictError(info.kind, name, `delete precondition resourceVersion ${JSON.stringify(want)} is not an etcd revision`);
    const res = await this.call('delete', () =>
      this.client.if(key, 'Mod', '==', want).then(this.client.get(key), this.client.delete().key(key)).else(this.client.get(key)).commit(),
    );
    const kv = res.responses[0]?.response_range?.kvs[0];
    if (!kv) throw new NotFoundError(info.kind, name);
    if (!res.succeeded) throw new ConflictError(info.kind, name, `delete precondition resourceVersion ${want} failed (now ${kv.mod_revision})`);
    return this.decode<T>(info, kv);
  }

  /**
   * One etcd transaction: a compare per op (create/absent-check: create_revision == 0; update,
   * delete/check with a precondition: mod_revision == resourceVersion; delete without one:
   * create_revision > 0), all puts/deletes in the success branch, and a get of every key in the
   * failure branch so the first failing op can be named in the same round trip.
   */
  async commit(ops: readonly CommitOp[]): Promise<CommitResult> {
    const prepared = prepareCommit(ops);
    if (prepared.length === 0) throw new DatastoreError('InvalidObject', 'commit needs at least one op');
    const keys = prepared.map((p) => etcdKey(p.info, p.name, p.namespace, this.prefix));
    // uid/creationTimestamp are the store's: fetch them (in parallel) for updates that lack them.
    await Promise.all(
      prepared.map(async (p, i) => {
        const o = p.object;
        if (p.op !== 'update' || !o || (o.metadata.uid !== undefined && o.metadata.creationTimestamp !== undefined)) return;
        const kv = (await this.call('get', () => this.client.get(keys[i]!).exec())).kvs[0];
        if (!kv) throw tagged(i, new NotFoundError(p.info.kind, p.name));
        const stored = this.decode(p.info, kv);
        o.metadata.uid = stored.metadata.uid;
        o.metadata.creationTimestamp = stored.metadata.creationTimestamp;
      }),
    );
    for (const [i, p] of prepared.entries()) {
      const rv = p.resourceVersion;
      if (typeof rv === 'string' && !/^[1-9]\d*$/.test(rv)) {
        throw tagged(i, new ConflictError(p.info.kind, p.name, `resourceVersion ${JSON.stringify(rv)} is not an etcd revision`));
      }
      if (p.op === 'create') stampCreate(p.object as Resource);
    }
    const res = await this.call('commit', () => {
      let txn: ReturnType<Etcd3['if']> | undefined;
      for (const [i, p] of prepared.entries()) {
        const key = keys[i]!;
        const rv = p.resourceVersion;
        const [col, cmp, val]: ['Create' | 'Mod', '==' | '>', string | number] = rv === null ? ['Create', '==', 0] : rv === undefined ? ['Create', '>', 0] : ['Mod', '==', rv];
        txn = txn ? txn.and(key, col, cmp, val) : this.client.if(key, col, cmp, val);
      }
      const writes = prepared.flatMap((p, i): Array<Parameters<ReturnType<Etcd3['if']>['then']>[number]> => {
        if (p.op === 'check') return [];
        if (p.op === 'delete') return [this.client.delete().key(keys[i]!)];
        return [this.client.put(keys[i]!).value(this.encode(p.object as Resource))];
      });
      return txn!
        .then(...writes)
        .else(...keys.map((k) => this.client.get(k)))
        .commit();
    });
    if (!res.succeeded) {
      throw commitFailure(prepared, (i) => {
        const kv = res.responses[i]?.response_range?.kvs[0];
        return kv ? String(kv.mod_revision) : undefined;
      });
    }
    return committed(prepared, String(res.header.revision));
  }

  watch<T extends Resource = Resource>(kind: string, opts: WatchOptions, onEvent: (ev: WatchEvent<T>) => void): Watcher {
    const info = resolveKind(kind);
    const prefix = this.listPrefix(info, opts);
    const list = async (): Promise<{ items: T[]; revision: bigint }> => {
      const res = await this.range(info, opts);
      return { items: res.kvs.map((kv) => this.decode<T>(info, kv)), revision: rev(res.header.revision) };
    };
    const src = { info, keyPrefix: this.prefix, log: this.log, registry: this.watchers };
    return etcdWatch<T>({ ...src, list, stream: (ctx) => this.stream(info, prefix, ctx) }, opts, onEvent);
  }

  /**
   * One etcd3 watcher from ctx.from; etcd3 reconnects it by itself after a lost connection (from
   * the revision we set on its request). Resolves when etcd ends the watch for good (cancel,
   * compaction) or stop() is called.
   */
  private stream<T extends Resource>(info: KindInfo, prefix: string, ctx: EtcdStreamContext<T>): Promise<EtcdStreamEnd> {
    return new Promise<EtcdStreamEnd>((resolve) => {
      const w = this.client.watch().prefix(prefix).withPreviousKV().startRevision(ctx.from.toString()).watcher();
      let done = false;
      const finish = (error: Error): void => {
        if (done) return;
        done = true;
        ctx.signal.removeEventListener('abort', onAbort);
        ctx.onStop(undefined);
        resolve({ relist: true, error });
      };
      const onAbort = (): void => finish(new Error('stopped'));
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      ctx.onStop(() => w.cancel());
      w.on('connected', () => ctx.connected());
      w.on('data', (res) => {
        if (done) return;
        for (const ev of res.events) {
          ctx.change({
            key: ev.kv.key.toString('utf8'),
            type: ev.type === 'Put' ? 'PUT' : 'DELETE',
            ...(ev.type === 'Put' ? { cur: this.decode<T>(info, ev.kv) } : {}),
            ...(ev.prev_kv ? { prev: this.decode<T>(info, ev.prev_kv) } : {}),
            modRevision: rev(ev.kv.mod_revision),
            createRevision: rev(ev.kv.create_revision),
          });
        }
      });
      w.on('disconnected', (err: Error) => {
        if (done) return;
        ctx.trouble(new UnavailableError(this.endpointName(), err));
        // etcd3 reconnects by itself from request.start_revision; make that our own position.
        (w.request as { start_revision?: string }).start_revision = ctx.resumeFrom().toString();
      });
      w.on('error', (err: Error) => finish(err));
    });
  }

  /** The underlying etcd3 client (tests and admin tools: raw key checks, wiping a test store). */
  get rawClient(): Etcd3 {
    return this.client;
  }

  /** Delete every key under this store's prefix (tests only). */
  async wipe(): Promise<void> {
    await this.call('delete', () => this.client.delete().prefix(this.prefix).exec());
  }

  /** Compact the etcd history up to `revision` (default: current). Admin/test helper. */
  async compact(revision?: string): Promise<void> {
    const r = revision ?? String((await this.call('get', () => this.client.get(this.prefix).exec())).header.revision);
    await this.call('compact', () => this.client.kv.compact({ revision: r, physical: true }));
  }

  async close(): Promise<void> {
    await Promise.all([...this.watchers].map((w) => w.stop()));
    this.client.close();
  }
}
