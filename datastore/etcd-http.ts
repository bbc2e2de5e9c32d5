/**
 * etcd v3 backend over etcd's JSON gRPC-gateway (HTTP/1.1 POST /v3/kv/range, /v3/kv/txn, /v3/watch,
 * …; keys and values base64, int64 as strings) with node:http only: the `etcd3` package (gRPC +
 * protobufjs) costs a process 100+ ms to load and ≈ 25 MB of memory. The CNI plugins and tabby-node
 * use it.
 *
 * Same key layout, encoding and semantics as `etcd.ts` (the two interoperate on one etcd) and the
 * same contract. Create/update/delete/commit are single transactions exactly like the gRPC backend's.
 * A watch is one streaming `POST /v3/watch` per watcher (its own connection, TCP keepalive on): the
 * response is a stream of `{"result": WatchResponse}` objects; the loop around it (resume from the last
 * revision, relist after compaction) is the one both transports share (etcd-watch.ts).
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { KindInfo } from '../api/kinds.js';
import type { Resource } from '../api/meta.js';
import { commitFailure, committed, precondition, prepareCommit, tagged } from './commit.js';
import { compareByKey, effectiveNamespace, listFilter, resolveKind, rev, stampCreate } from './common.js';
import type { EtcdDatastoreOptions } from './etcd.js';
import { ETCD_KEY_PREFIX, etcdKey, etcdListPrefix } from './etcd-keys.js';
import { etcdWatch, type EtcdStreamContext, type EtcdStreamEnd } from './etcd-watch.js';
import { JsonObjectSplitter } from './json-stream.js';
import type { Logger } from '../lib/log.js';
import { silentLogger } from '../lib/log.js';
import type { CommitOp, CommitResult, Datastore, DeleteOptions, ListOptions, ListResult, WatchEvent, WatchOptions, Watcher } from './types.js';
import { ConflictError, DatastoreError, NotFoundError, UnavailableError } from './types.js';

interface Kv {
  key: string;
  value?: string;
  create_revision?: string;
  mod_revision?: string;
}
interface RangeResponse {
  header?: { revision?: string };
  kvs?: Kv[];
}
interface TxnResponse {
  header?: { revision?: string };
  succeeded?: boolean;
  responses?: Array<{ response_range?: RangeResponse }>;
}
/** One message of the /v3/watch stream (gateway JSON: default values omitted, so PUT has no `type`). */
interface WatchMessage {
  result?: {
    header?: { revision?: string };
    created?: boolean;
    canceled?: boolean;
    compact_revision?: string;
    cancel_reason?: string;
    events?: Array<{ type?: 'PUT' | 'DELETE'; kv?: Kv; prev_kv?: Kv }>;
  };
  error?: { message?: string; grpc_code?: number; http_code?: number };
}
type Compare = { key: string; target: 'CREATE' | 'MOD'; result: 'EQUAL' | 'GREATER'; create_revision?: string; mod_revision?: string };
type RequestOp = { request_put: { key: string } & { value: string } } | { request_delete_range: { key: string } } | { request_range: { key: string } };

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined): string => Buffer.from(s ?? '', 'base64').toString('utf8');

/** The key after every key that starts with `prefix` (etcd range_end for a prefix). */
function prefixEnd(prefix: string): string {
  const b = Buffer.from(prefix, 'utf8');
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i]! < 0xff) {
      b[i]! += 1;
      return b.subarray(0, i + 1).toString('base64');
    }
  }
  return Buffer.from([0]).toString('base64');
}

export class EtcdHttpDatastore implements Datastore {
  readonly type = 'etcdv3';
  readonly endpoints: string[];
  private readonly timeoutMs: number;
  private readonly prefix: string;
  private readonly agent: http.Agent;
  /** Watch streams: one long-lived connection each, never returned to the request pool. */
  private readonly watchAgent: http.Agent;
  private readonly log: Logger;
  private readonly watchers = new Set<Watcher>();
  private readonly tls: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  private readonly auth: { username: string; password: string } | undefined;
  private token: string | undefined;
  /** Index of the endpoint that answered last (tried first). */
  private current = 0;

  constructor(opts: EtcdDatastoreOptions) {
    if (opts.endpoints.length === 0) throw new DatastoreError('DatastoreConfig', 'etcd datastore needs at least one endpoint');
    this.endpoints = opts.endpoints;
    this.timeoutMs = opts.requestTimeoutMs ?? 5000;
    this.prefix = opts.keyPrefix ?? ETCD_KEY_PREFIX;
    this.tls = {
      ...(opts.caCertFile ? { ca: readFileSync(opts.caCertFile) } : {}),
      ...(opts.certFile ? { cert: readFileSync(opts.certFile) } : {}),
      ...(opts.keyFile ? { key: readFileSync(opts.keyFile) } : {}),
    };
    const https_ = this.endpoints.some((e) => e.startsWith('https:'));
    this.agent = https_ ? new https.Agent({ keepAlive: true, maxSockets: 4, ...this.tls }) : new http.Agent({ keepAlive: true, maxSockets: 4 });
    this.watchAgent = https_ ? new https.Agent({ keepAlive: false, ...this.tls }) : new http.Agent({ keepAlive: false });
    this.log = opts.logger ?? silentLogger();
    this.auth = opts.username !== undefined ? { username: opts.username, password: opts.password ?? '' } : undefined;
  }

  private endpointName(): string {
    return this.endpoints.join(',');
  }

  private post<T>(endpoint: string, path: string, body: unknown): Promise<{ status: number; json: T }> {
    const url = new URL(path, endpoint);
    const data = JSON.stringify(body);
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(
        url,
        {
          method: 'POST',
          agent: this.agent,
          timeout: this.timeoutMs,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data), ...(this.token ? { authorization: this.token } : {}) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            try {
              resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as T });
            } catch (err) {
              reject(err instanceof Error ? err : new Error(String(err)));
            }
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(data);
    });
  }

  /** Authenticate on `endpoint` when credentials are configured and no token is held. */
  private async ensureToken(endpoint: string): Promise<void> {
    if (!this.auth || this.token !== undefined) return;
    const r = await this.post<{ token?: string }>(endpoint, '/v3/auth/authenticate', { name: this.auth.username, password: this.auth.password });
    if (r.status !== 200 || !r.json.token) throw new DatastoreError('EtcdAuth', `etcd authentication as ${this.auth.username} failed (HTTP ${r.status})`, { hint: 'check ETCD_USERNAME/ETCD_PASSWORD' });
    this.token = r.json.token;
  }

  /** etcd refused the token (simple tokens expire after 5 minutes idle): drop it so the next call authenticates again. */
  private tokenRejected(message: string | undefined): boolean {
    if (!this.auth || !/invalid auth token|auth token is expired|token.*(expired|invalid)/i.test(message ?? '')) return false;
    this.token = undefined;
    return true;
  }

  /** One gateway call: endpoints in turn on connection failure; HTTP errors become DatastoreErrors. */
  private async call<T>(what: string, path: string, body: unknown): Promise<T> {
    let lastErr: unknown;
    for (let n = 0; n < this.endpoints.length; n++) {
      const i = (this.current + n) % this.endpoints.length;
      const endpoint = this.endpoints[i]!;
      try {
        for (let retry = 0; ; retry++) {
          await this.ensureToken(endpoint);
          const r = await this.post<T & { error?: string; message?: string }>(endpoint, path, body);
          this.current = i;
          if (r.status === 200) return r.json;
          const message = r.json.message ?? r.json.error;
          if (retry === 0 && this.tokenRejected(message)) continue;
          throw new DatastoreError('EtcdError', `etcd ${what} failed: HTTP ${r.status} ${message ?? ''}`.trim());
        }
      } catch (err) {
        if (err instanceof DatastoreError) throw err;
        lastErr = err;
      }
    }
    throw new UnavailableError(this.endpointName(), lastErr);
  }

  private decode<T extends Resource>(info: KindInfo, kv: Kv): T {
    const obj = JSON.parse(unb64(kv.value)) as T;
    obj.kind = info.kind;
    obj.apiVersion = info.apiVersion;
    obj.metadata.resourceVersion = kv.mod_revision ?? '0';
    return obj;
  }

  private encode(obj: Resource): string {
    const copy = structuredClone(obj);
    delete copy.metadata.resourceVersion;
    return b64(JSON.stringify(copy));
  }

  private range(info: KindInfo, opts?: ListOptions): Promise<RangeResponse> {
    const p = etcdListPrefix(info, opts, this.prefix);
    return this.call<RangeResponse>('list', '/v3/kv/range', { key: b64(p), range_end: prefixEnd(p) });
  }

  async get<T extends Resource = Resource>(kind: string, name: string, namespace?: string): Promise<T> {
    const info = resolveKind(kind);
    const res = await this.call<RangeResponse>('get', '/v3/kv/range', { key: b64(etcdKey(info, name, namespace, this.prefix)) });
    const kv = res.kvs?.[0];
    if (!kv) throw new NotFoundError(info.kind, name);
    return this.decode<T>(info, kv);
  }

  async list<T extends Resource = Resource>(kind: string, opts?: ListOptions): Promise<ListResult<T>> {
    const info = resolveKind(kind);
    const filter = listFilter(info, opts);
    const res = await this.range(info, opts);
    const items = (res.kvs ?? []).map((kv) => this.decode<T>(info, kv)).filter(filter).sort(compareByKey);
    return { items, revision: res.header?.revision ?? '0' };
  }

  async create<T extends Resource>(obj: T): Promise<T> {
    return (await this.single({ op: 'create', object: obj })) as T;
  }

  async update<T extends Resource>(obj: T): Promise<T> {
    return (await this.single({ op: 'update', object: obj })) as T;
  }

  async delete<T extends Resource = Resource>(kind: string, name: string, opts?: DeleteOptions): Promise<T> {
    const info = resolveKind(kind);
    const namespace = effectiveNamespace(info, opts?.namespace);
    const key = b64(etcdKey(info, name, namespace, this.prefix));
    const want = opts?.resourceVersion;
    if (want !== undefined && !/^[1-9]\d*$/.test(want)) throw new ConflictError(info.kind, name, `delete precondition resourceVersion ${JSON.stringify(want)} is not an etcd revision`);
    const compare: Compare = want === undefined ? { key, target: 'CREATE', result: 'GREATER', create_revision: '0' } : { key, target: 'MOD', result: 'EQUAL', mod_revision: want };
    const res = await this.call<TxnResponse>('delete', '/v3/kv/txn', {
      compare: [compare],
      success: [{ request_range: { key } }, { request_delete_range: { key } }],
      failure: [{ request_range: { key } }],
    });
    const kv = res.responses?.[0]?.response_range?.kvs?.[0];
    if (!kv) throw new NotFoundError(info.kind, name);
    if (!res.succeeded) throw new ConflictError(info.kind, name, `delete precondition resourceVersion ${want} failed (now ${kv.mod_revision})`);
    return this.decode<T>(info, kv);
  }

  private async single(op: CommitOp): Promise<Resource> {
    try {
      return (await this.commit([op])).objects[0] as Resource;
    } catch (err) {
      if (err instanceof DatastoreError) delete err.opIndex;
      throw err;
    }
  }

  /** One etcd transaction (the same compares as the gRPC backend's commit). */
  async commit(ops: readonly CommitOp[]): Promise<CommitResult> {
    const prepared = prepareCommit(ops);
    if (prepared.length === 0) throw new DatastoreError('InvalidObject', 'commit needs at least one op');
    const keys = prepared.map((p) => b64(etcdKey(p.info, p.name, p.namespace, this.prefix)));
    // uid/creationTimestamp are the store's: fetch them for updates that lack them.
    await Promise.all(
      prepared.map(async (p, i) => {
        const o = p.object;
        if (p.op !== 'update' || !o || (o.metadata.uid !== undefined && o.metadata.creationTimestamp !== undefined)) return;
        const kv = (await this.call<RangeResponse>('get', '/v3/kv/range', { key: keys[i] })).kvs?.[0];
        if (!kv) throw tagged(i, new NotFoundError(p.info.kind, p.name));
        const stored = this.decode(p.info, kv);
        o.metadata.uid = stored.metadata.uid;
        o.metadata.creationTimestamp = stored.metadata.creationTimestamp;
      }),
    );
    const compare: Compare[] = [];
    const success: RequestOp[] = [];
    for (const [i, p] of prepared.entries()) {
      const key = keys[i]!;
      const rv = p.resourceVersion;
      if (typeof rv === 'string' && !/^[1-9]\d*$/.test(rv)) {
        throw tagged(i, precondition(p, rv === '' ? '0' : undefined) ?? new ConflictError(p.info.kind, p.name, `resourceVersion ${JSON.stringify(rv)} is not an etcd revision`));
      }
      if (rv === null) compare.push({ key, target: 'CREATE', result: 'EQUAL', create_revision: '0' });
      else if (rv === undefined) compare.push({ key, target: 'CREATE', result: 'GREATER', create_revision: '0' });
      else compare.push({ key, target: 'MOD', result: 'EQUAL', mod_revision: rv });
      if (p.op === 'create') stampCreate(p.object!);
      if (p.op === 'delete') success.push({ request_delete_range: { key } });
      else if (p.op !== 'check') success.push({ request_put: { key, value: this.encode(p.object!) } });
    }
    const res = await this.call<TxnResponse>('commit', '/v3/kv/txn', { compare, success, failure: keys.map((key) => ({ request_range: { key } })) });
    if (!res.succeeded) {
      throw commitFailure(prepared, (i) => {
        const kv = res.responses?.[i]?.response_range?.kvs?.[0];
        return kv ? (kv.mod_revision ?? '0') : undefined;
      });
    }
    return committed(prepared, res.header?.revision ?? '0');
  }

  watch<T extends Resource = Resource>(kind: string, opts: WatchOptions, onEvent: (ev: WatchEvent<T>) => void): Watcher {
    const info = resolveKind(kind);
    const prefix = etcdListPrefix(info, opts, this.prefix);
    const list = async (): Promise<{ items: T[]; revision: bigint }> => {
      const res = await this.range(info, opts);
      return { items: (res.kvs ?? []).map((kv) => this.decode<T>(info, kv)), revision: rev(res.header?.revision) };
    };
    const src = { info, keyPrefix: this.prefix, log: this.log, registry: this.watchers };
    return etcdWatch<T>({ ...src, list, stream: (ctx) => this.stream(info, prefix, ctx) }, opts, onEvent);
  }

  /**
   * One `POST /v3/watch` from ctx.from until the connection ends (resolve: reopen from the last
   * revision), etcd cancels the watch (compaction: relist) or stop() aborts it. Connecting and
   * the watch's creation are bounded by requestTimeoutMs; a quiet stream is kept (TCP keepalive
   * notices a dead peer).
   */
  private async stream<T extends Resource>(info: KindInfo, prefix: string, ctx: EtcdStreamContext<T>): Promise<EtcdStreamEnd> {
    const i = this.current % this.endpoints.length;
    const endpoint = this.endpoints[i]!;
    const lostError = (err: unknown): EtcdStreamEnd => {
      // try the next endpoint next time
      if (this.current === i) this.current = (i + 1) % this.endpoints.length;
      return { relist: false, error: err instanceof DatastoreError ? err : new UnavailableError(endpoint, err) };
    };
    try {
      await this.ensureToken(endpoint);
    } catch (err) {
      return lostError(err);
    }
    if (ctx.signal.aborted) return { relist: false, error: new Error('stopped') };
    const url = new URL('/v3/watch', endpoint);
    const body = JSON.stringify({ create_request: { key: b64(prefix), range_end: prefixEnd(prefix), start_revision: ctx.from.toString(), prev_kv: true } });
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise<EtcdStreamEnd>((resolve) => {
      let done = false;
      let created = false;
      const finish = (end: EtcdStreamEnd): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        ctx.signal.removeEventListener('abort', onAbort);
        req.destroy();
        resolve(end);
      };
      const lost = (err: unknown): void => finish(created ? { relist: false, error: new UnavailableError(endpoint, err) } : lostError(err));
      const onAbort = (): void => finish({ relist: false, error: new Error('stopped') });
      const timer = setTimeout(() => lost(new Error(`watch not created within ${this.timeoutMs} ms`)), this.timeoutMs);
      const onMessage = (m: WatchMessage): void => {
        if (m.error) {
          this.tokenRejected(m.error.message);
          lost(new DatastoreError('EtcdError', `etcd watch of ${prefix} failed: ${m.error.message ?? JSON.stringify(m.error)}`));
          return;
        }
        const r = m.result;
        if (!r) return;
        if (r.created && !r.canceled && !created) {
          created = true;
          clearTimeout(timer);
          ctx.connected();
        }
        if (r.canceled && this.tokenRejected(r.cancel_reason)) {
          // the token expired between watches: authenticate again and resume from the same revision
          lost(new DatastoreError('EtcdAuth', `etcd watch of ${prefix}: ${r.cancel_reason ?? 'token rejected'}`));
          return;
        }
        if (r.canceled || (r.compact_revision !== undefined && r.compact_revision !== '0')) {
          const why = r.compact_revision ? `revision ${ctx.from} has been compacted (compact revision ${r.compact_revision})` : `cancelled by etcd: ${r.cancel_reason ?? 'no reason given'}`;
          finish({ relist: true, error: new DatastoreError('EtcdWatchCancelled', `etcd watch of ${prefix}: ${why}`) });
          return;
        }
        for (const ev of r.events ?? []) {
          const kv = ev.kv;
          if (!kv) continue;
          const type = ev.type === 'DELETE' ? 'DELETE' : 'PUT';
          ctx.change({
            key: unb64(kv.key),
            type,
            ...(type === 'PUT' ? { cur: this.decode<T>(info, kv) } : {}),
            ...(ev.prev_kv ? { prev: this.decode<T>(info, ev.prev_kv) } : {}),
            modRevision: rev(kv.mod_revision),
            createRevision: rev(kv.create_revision),
          });
        }
      };
      const req = mod.request(
        url,
        {
          method: 'POST',
          agent: this.watchAgent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...(this.token ? { authorization: this.token } : {}) },
        },
        (res) => {
          if (res.statusCode !== 200) {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              const text = Buffer.concat(chunks).toString('utf8');
              this.tokenRejected(text);
              lost(new DatastoreError('EtcdError', `etcd watch of ${prefix} failed: HTTP ${res.statusCode ?? 0} ${text.slice(0, 200)}`.trim()));
            });
            res.on('error', lost);
            return;
          }
          const splitter = new JsonObjectSplitter();
          res.on('data', (chunk: Buffer) => {
            try {
              for (const m of splitter.push(chunk)) {
                if (done) return;
                onMessage(m as WatchMessage);
              }
            } catch (err) {
              lost(err);
            }
          });
          res.on('error', lost);
          res.on('close', () => lost(new Error('etcd closed the watch stream')));
        },
      );
      req.on('socket', (s) => s.setKeepAlive(true, 15000));
      req.on('error', lost);
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      req.end(body);
    });
  }

  /** Compact etcd's history up to `revision` (default: the current one). Admin/test helper. */
  async compact(revision?: string): Promise<void> {
    const r = revision ?? (await this.call<RangeResponse>('get', '/v3/kv/range', { key: b64(this.prefix), count_only: true })).header?.revision ?? '0';
    await this.call('compact', '/v3/kv/compaction', { revision: r, physical: true });
  }

  /** Delete every key under this store's prefix (tests only). */
  async wipe(): Promise<void> {
    await this.call('delete', '/v3/kv/deleterange', { key: b64(this.prefix), range_end: prefixEnd(this.prefix) });
  }

  async close(): Promise<void> {
    await Promise.all([...this.watchers].map((w) => w.stop()));
    this.agent.destroy();
    this.watchAgent.destroy();
  }
}
