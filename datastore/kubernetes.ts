/**
 * Kubernetes backend: each kind is stored as the custom resource `crd.projectcalico.org/v1`
 * `<plural>` (kind = KindInfo.v1Kind), as Calico stores them. A thin adapter over
 * @kubernetes/client-node 1.4 (CustomObjectsApi for CRUD/list, Watch for watches).
 *
 * - resourceVersion is the API server's; update = PUT with it (409 → ConflictError), create 409 →
 *   AlreadyExistsError, 404 → NotFoundError, delete preconditions → 409 → ConflictError.
 * - Objects read back get KindInfo.kind/apiVersion (e.g. projectcalico.org/v3 IPPool).
 * - watch: list (or the caller's revision), then watch with allowWatchBookmarks from the last
 *   delivered resourceVersion; reconnects after a closed stream; on 410 Gone (stream ERROR event or
 *   HTTP status) it relists and emits only the differences.
 * - Load lazily (index.ts imports this file dynamically) so etcd users never load the client.
 *
 * KUBERNETES_API_CALLS lists every (verb, group, resource) this adapter uses, for RBAC checks.
 */
import type * as K8sLib from '@kubernetes/client-node';
import type { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import type { KindInfo } from '../api/kinds.js';
import type { Resource } from '../api/meta.js';
import { CRD_GROUP } from '../api/meta.js';
import type { Logger } from '../lib/log.js';
import { silentLogger } from '../lib/log.js';
import { WatchState, withDeadline, compareByKey, effectiveNamespace, keyOf, listFilter, normalizeForWrite, resolveKind, rev } from './common.js';
import { runWatchLoop } from './watch-loop.js';
import type { Datastore, DeleteOptions, ListOptions, ListResult, WatchEvent, WatchOptions, Watcher } from './types.js';
import { AlreadyExistsError, ConflictError, DatastoreConfigError, DatastoreError, NotFoundError, UnavailableError } from './types.js';
import { KubernetesCoreReader, type EndpointsInfo, type SecretReader, type ServiceInfo, type ServiceReader } from './kubernetes-core.js';

const GROUP = CRD_GROUP;
const VERSION = 'v1';

export { KUBERNETES_API_CALLS, type KubernetesApiCall } from './kubernetes-api.js';
export { KUBERNETES_CORE_CALLS, type EndpointsInfo, type SecretReader, type ServiceInfo, type ServiceReader } from './kubernetes-core.js';

export interface KubernetesDatastoreOptions {
  /** Path of a kubeconfig; omitted = KUBECONFIG env, ~/.kube/config or in-cluster (client-node's default). */
  kubeconfig?: string;
  /** Bound for every request (default 10000 ms). */
  requestTimeoutMs?: number;
  logger?: Logger;
}

interface K8sObject {
  apiVersion?: string;
  kind?: string;
  metadata?: Record<string, unknown> & { name?: string; namespace?: string; resourceVersion?: string };
  spec?: unknown;
  status?: unknown;
}

interface ApiErrorLike {
  code?: number;
  statusCode?: number;
  body?: unknown;
}

function statusReason(err: ApiErrorLike): string | undefined {
  let b = err.body;
  if (typeof b === 'string') {
    try {
      b = JSON.parse(b);
    } catch {
      return undefined;
    }
  }
  return b && typeof b === 'object' && 'reason' in b ? String((b as { reason: unknown }).reason) : undefined;
}

function statusMessage(err: ApiErrorLike): string {
  let b = err.body;
  if (typeof b === 'string') {
    try {
      b = JSON.parse(b);
    } catch {
      return b as string;
    }
  }
  return b && typeof b === 'object' && 'message' in b ? String((b as { message: unknown }).message) : '';
}

type K8sModule = typeof K8sLib;
let k8sModule: K8sModule | undefined;

/** Load @kubernetes/client-node on first use (dynamic import: bundles stay free of it until then). */
export async function loadKubernetesClient(): Promise<K8sModule> {
  k8sModule ??= await import('@kubernetes/client-node');
  return k8sModule;
}

/** Open a Kubernetes datastore (loads the client on first use). */
export async function createKubernetesDatastore(opts: KubernetesDatastoreOptions = {}): Promise<KubernetesDatastore> {
  return new KubernetesDatastore(opts, await loadKubernetesClient());
}

/**
 * The read-only core reader (Secrets, Services, Endpoints) on its own: the etcd datastore with a
 * kubeconfig, as calico-node reads BGP passwords and Services from Kubernetes even on etcd.
 * `kubeconfig` omitted = KUBECONFIG / in-cluster.
 */
export async function openCoreReader(opts: Pick<KubernetesDatastoreOptions, 'kubeconfig' | 'requestTimeoutMs'> = {}): Promise<SecretReader & ServiceReader> {
  const lib = await loadKubernetesClient();
  const kc = loadKubeConfig(lib, opts.kubeconfig);
  return new KubernetesCoreReader(kc, lib, kc.getCurrentCluster()?.server ?? '', opts.requestTimeoutMs);
}

function loadKubeConfig(lib: K8sModule, path: string | undefined): KubeConfig {
  const kc = new lib.KubeConfig();
  try {
    if (path) kc.loadFromFile(path);
    else kc.loadFromDefault();
  } catch (err) {
    throw new DatastoreConfigError(
      `cannot load kubeconfig${path ? ` ${path}` : ''}: ${err instanceof Error ? err.message : String(err)}`,
      'set KUBECONFIG (or kubernetes.kubeconfig in the CNI config) to a readable kubeconfig file',
    );
  }
  if (!kc.getCurrentCluster()) {
    throw new DatastoreConfigError(`kubeconfig${path ? ` ${path}` : ''} has no current cluster`, 'check current-context in the kubeconfig');
  }
  return kc;
}

export class KubernetesDatastore implements Datastore {
  readonly type = 'kubernetes';
  readonly server: string;
  private readonly kc: KubeConfig;
  private readonly api: CustomObjectsApi;
  private readonly timeoutMs: number;
  private readonly log: Logger;
  private readonly watchers = new Set<Watcher>();

  private readonly lib: K8sModule;
  private core: KubernetesCoreReader | undefined;

  /**
   * Prefer createKubernetesDatastore(). `lib` is the loaded client (loadKubernetesClient()); it may be
   * omitted once the client has been loaded (the package is ESM-only, so it cannot be required here).
   */
  constructor(opts: KubernetesDatastoreOptions = {}, lib: K8sModule | undefined = k8sModule) {
    if (!lib) {
      throw new DatastoreError('KubernetesClientNotLoaded', 'the Kubernetes client is not loaded', {
        hint: 'open the store with `await createKubernetesDatastore(opts)` (or openDatastore)',
      });
    }
    this.lib = lib;
    this.kc = loadKubeConfig(lib, opts.kubeconfig);
    this.server = this.kc.getCurrentCluster()?.server ?? '';
    this.api = this.kc.makeApiClient(lib.CustomObjectsApi);
    this.timeoutMs = opts.requestTimeoutMs ?? 10000;
    this.log = opts.logger ?? silentLogger();
  }

  private async call<T>(what: string, info: KindInfo, name: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await withDeadline(this.server, what, this.timeoutMs, fn);
    } catch (err) {
      throw this.mapError(err, what, info, name);
    }
  }

  private mapError(err: unknown, what: string, info: KindInfo, name: string): Error {
    if (err instanceof DatastoreError) return err;
    const e = err as ApiErrorLike;
    const code = typeof e?.code === 'number' ? e.code : undefined;
    if (code === undefined) {
      const n = err as { name?: string; type?: string; code?: unknown };
      if (n?.name === 'FetchError' || n?.type === 'system' || typeof n?.code === 'string' || n?.name === 'AbortError') {
        return new UnavailableError(this.server, err);
      }
      return new DatastoreError('KubernetesClientError', `kubernetes ${what} ${info.plural}.${GROUP}: ${err instanceof Error ? err.message : String(err)}`, {
        hint: 'check the kubeconfig (server URL, TLS settings, credentials)',
        cause: err,
      });
    }
    const reason = statusReason(e);
    if (code === 404) return new NotFoundError(info.kind, name);
    if (code === 409 && reason === 'AlreadyExists') return new AlreadyExistsError(info.kind, name);
    if (code === 409) return new ConflictError(info.kind, name, statusMessage(e) || undefined);
    if (code === 401 || code === 403) {
      return new DatastoreError(code === 401 ? 'Unauthorized' : 'Forbidden', `kubernetes ${what} ${info.plural}.${GROUP} ${JSON.stringify(name)}: ${statusMessage(e) || `HTTP ${code}`}`, {
        hint: 'check the kubeconfig credentials and the RBAC rules for crd.projectcalico.org resources',
        cause: err,
      });
    }
    if (code >= 500 || code === 429) return new UnavailableError(this.server, err);
    return new DatastoreError(reason ?? 'KubernetesError', `kubernetes ${what} ${info.plural}.${GROUP} ${JSON.stringify(name)}: ${statusMessage(e) || `HTTP ${code}`}`, { cause: err });
  }

  private toK8s(info: KindInfo, obj: Resource): K8sObject {
    const m = obj.metadata;
    const metadata: K8sObject['metadata'] = { name: m.name };
    if (m.namespace !== undefined) metadata.namespace = m.namespace;
    if (m.resourceVersion !== undefined) metadata.resourceVersion = m.resourceVersion;
    if (m.labels !== undefined) metadata.labels = m.labels;
    if (m.annotations !== undefined) metadata.annotations = m.annotations;
    const out: K8sObject = { apiVersion: `${GROUP}/${VERSION}`, kind: info.v1Kind, metadata, spec: obj.spec };
    if (obj.status !== undefined) out.status = obj.status;
    return out;
  }

  private fromK8s<T extends Resource>(info: KindInfo, o: K8sObject): T {
    const src = o.metadata ?? {};
    const metadata: Resource['metadata'] = { name: String(src.name) };
    for (const k of ['namespace', 'resourceVersion', 'uid', 'creationTimestamp'] as const) {
      if (typeof src[k] === 'string') metadata[k] = src[k] as string;
    }
    if (src.labels && typeof src.labels === 'object') metadata.labels = src.labels as Record<string, string>;
    if (src.annotations && typeof src.annotations === 'object') metadata.annotations = src.annotations as Record<string, string>;
    const out: Resource = { apiVersion: info.apiVersion, kind: info.kind, metadata, spec: o.spec ?? {} };
    if (o.status !== undefined) out.status = o.status;
    return out as T;
  }

  async get<T extends Resource = Resource>(kind: string, name: string, namespace?: string): Promise<T> {
    const info = resolveKind(kind);
    const ns = effectiveNamespace(info, namespace);
    const o = await this.call('get', info, name, () =>
      ns === undefined
        ? this.api.getClusterCustomObject({ group: GROUP, version: VERSION, plural: info.plural, name })
        : this.api.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: info.plural, name }),
    );
    return this.fromK8s<T>(info, o as K8sObject);
  }

  private async rawList(info: KindInfo, opts?: ListOptions): Promise<{ items: K8sObject[]; revision: string }> {
    const common = { group: GROUP, version: VERSION, plural: info.plural, ...(opts?.labelSelector ? { labelSelector: opts.labelSelector } : {}) };
    const res = (await this.call('list', info, '', () =>
      info.namespaced && opts?.namespace
        ? this.api.listNamespacedCustomObject({ ...common, namespace: opts.namespace })
        : this.api.listClusterCustomObject(common),
    )) as { items?: K8sObject[]; metadata?: { resourceVersion?: string } };
    return { items: res.items ?? [], revision: res.metadata?.resourceVersion ?? '0' };
  }

  async list<T extends Resource = Resource>(kind: string, opts?: ListOptions): Promise<ListResult<T>> {
    const info = resolveKind(kind);
    const filter = listFilter(info, opts, { labels: false }); // labels are filtered by the server
    const { items, revision } = await this.rawList(info, opts);
    return { items: items.map((o) => this.fromK8s<T>(info, o)).filter(filter).sort(compareByKey), revision };
  }

  async create<T extends Resource>(obj: T): Promise<T> {
    const { info, obj: o } = normalizeForWrite(obj);
    const body = this.toK8s(info, o);
    delete body.metadata?.resourceVersion;
    const ns = o.metadata.namespace;
    const res = await this.call('create', info, o.metadata.name, () =>
      ns === undefined
        ? this.api.createClusterCustomObject({ group: GROUP, version: VERSION, plural: info.plural, body })
        : this.api.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: info.plural, body }),
    );
    return this.fromK8s<T>(info, res as K8sObject);
  }

  async update<T extends Resource>(obj: T): Promise<T> {
    const { info, obj: o } = normalizeForWrite(obj);
    const name = o.metadata.name;
    if (!o.metadata.resourceVersion) throw new ConflictError(info.kind, name, 'update needs metadata.resourceVersion');
    const body = this.toK8s(info, o);
    const ns = o.metadata.namespace;
    const res = await this.call('update', info, name, () =>
      ns === undefined
        ? this.api.replaceClusterCustomObject({ group: GROUP, version: VERSION, plural: info.plural, name, body })
        : this.api.replaceNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: info.plural, name, body }),
    );
    return this.fromK8s<T>(info, res as K8sObject);
  }

  async delete<T extends Resource = Resource>(kind: string, name: string, opts?: DeleteOptions): Promise<T> {
    const info = resolveKind(kind);
    const ns = effectiveNamespace(info, opts?.namespace);
    const body = opts?.resourceVersion !== undefined ? { preconditions: { resourceVersion: opts.resourceVersion } } : undefined;
    const res = (await this.call('delete', info, name, () =>
      ns === undefined
        ? this.api.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: info.plural, name, ...(body ? { body } : {}) })
        : this.api.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: info.plural, name, ...(body ? { body } : {}) }),
    )) as K8sObject;
    // Custom resources come back as the deleted object; a Status (finalizers, old servers) carries no state.
    if (res?.kind === 'Status' || !res?.metadata) return this.fromK8s<T>(info, { metadata: { name, ...(ns ? { namespace: ns } : {}) } });
    return this.fromK8s<T>(info, res);
  }

  /** Read-only core/v1 Secret access (BGP passwords): decoded data, undefined when the Secret does not exist. */
  readSecret(namespace: string, name: string): Promise<Record<string, string> | undefined> {
    return this.coreReader().read(namespace, name);
  }

  /** Read-only Services and Endpoints (per-service advertisement for externalTrafficPolicy Local). */
  listServices(): Promise<{ services: ServiceInfo[]; endpoints: EndpointsInfo[] }> {
    return this.coreReader().list();
  }

  private coreReader(): KubernetesCoreReader {
    this.core ??= new KubernetesCoreReader(this.kc, this.lib, this.server, this.timeoutMs);
    return this.core;
  }

  watch<T extends Resource = Resource>(kind: string, opts: WatchOptions, onEvent: (ev: WatchEvent<T>) => void): Watcher {
    const info = resolveKind(kind);
    const filter = listFilter(info, opts, { labels: false });
    const ac = new AbortController();
    const emit = (ev: WatchEvent<T>): void => {
      if (!ac.signal.aborted) onEvent(ev);
    };
    const state = new WatchState<T>((o) => keyOf(info, o), filter, emit);
    const path =
      info.namespaced && opts.namespace
        ? `/apis/${GROUP}/${VERSION}/namespaces/${encodeURIComponent(opts.namespace)}/${info.plural}`
        : `/apis/${GROUP}/${VERSION}/${info.plural}`;
    let abortStream: AbortController | undefined;
    let lines = 0;

    /** One watch stream; resolves "gone" when the server says 410, else "closed"/"failed". */
    const stream = (onLineSeen: () => void): Promise<'gone' | 'closed' | 'failed'> =>
      new Promise((resolve) => {
        let outcome: 'gone' | 'closed' | 'failed' = 'closed';
        lines = 0;
        const params: Record<string, string | boolean> = { allowWatchBookmarks: true, resourceVersion: state.lastRevision.toString() };
        if (opts.labelSelector) params.labelSelector = opts.labelSelector;
        const onLine = (type: string, obj: K8sObject): void => {
          if (ac.signal.aborted) return;
          onLineSeen();
          lines++;
          if (type === 'ERROR') {
            const st = obj as { code?: number; message?: string };
            outcome = st.code === 410 ? 'gone' : 'failed';
            emit({ type: 'ERROR', error: new DatastoreError(st.code === 410 ? 'Expired' : 'WatchError', `watch ${info.plural}: ${st.message ?? 'error event'}`) });
            abortStream?.abort();
            return;
          }
          const at = rev(obj.metadata?.resourceVersion);
          if (type === 'BOOKMARK') {
            state.bookmark(at);
            return;
          }
          const o = this.fromK8s<T>(info, obj);
          const k = keyOf(info, o);
          if (type === 'ADDED') state.change(k, undefined, o, at, 'ADDED');
          else if (type === 'MODIFIED') state.change(k, undefined, o, at, 'MODIFIED');
          else if (type === 'DELETED') state.change(k, o, undefined, at, 'DELETED');
        };
        const onDone = (err: unknown): void => {
          const code = (err as ApiErrorLike | null)?.statusCode;
          if (code === 410) outcome = 'gone';
          else if (err && !ac.signal.aborted && outcome === 'closed') {
            outcome = 'failed';
            if ((err as Error).name !== 'AbortError') emit({ type: 'ERROR', error: new UnavailableError(this.server, err) });
          }
          resolve(outcome);
        };
        // client-node's Watch resolves only once the response has started; bound that wait.
        let connected = false;
        let gaveUp = false;
        const watchdog = setTimeout(() => {
          if (connected) return;
          gaveUp = true;
          outcome = 'failed';
          emit({ type: 'ERROR', error: new UnavailableError(this.server, new Error(`watch ${info.plural}: no response within ${this.timeoutMs} ms`)) });
          resolve(outcome);
        }, this.timeoutMs);
        ac.signal.addEventListener(
          'abort',
          () => {
            clearTimeout(watchdog);
            resolve(outcome);
          },
          { once: true },
        );
        new this.lib.Watch(this.kc)
          .watch(path, params, (type: string, obj: K8sObject) => {
            if (!gaveUp) onLine(type, obj);
          }, (err: unknown) => {
            clearTimeout(watchdog);
            if (!gaveUp) onDone(err);
          })
          .then((c) => {
            connected = true;
            clearTimeout(watchdog);
            if (gaveUp || ac.signal.aborted) c.abort();
            else abortStream = c;
          })
          .catch((err: unknown) => {
            clearTimeout(watchdog);
            if (!gaveUp) onDone(err);
          });
      });

    let goneStreak = 0;
    void runWatchLoop({
      signal: ac.signal,
      state,
      revision: opts.revision,
      emit,
      list: async () => {
        const { items, revision } = await this.rawList(info, opts);
        return { items: items.map((o) => this.fromK8s<T>(info, o)), revision: rev(revision) };
      },
      stream: async (connected) => {
        const outcome = await stream(connected);
        if (outcome === 'gone') {
          if (!ac.signal.aborted) this.log.info({ kind: info.kind }, 'watch resourceVersion expired (410); relisting');
          // Relist at once the first time, back off if it repeats.
          return { relist: true, now: goneStreak++ === 0 };
        }
        goneStreak = 0;
        // A normal server-side timeout resumes at once; trouble was reported by the stream.
        return { now: outcome === 'closed' && lines > 0 };
      },
    });

    const handle: Watcher = {
      stop: async () => {
        if (ac.signal.aborted) return;
        ac.abort();
        abortStream?.abort();
        this.watchers.delete(handle);
      },
    };
    this.watchers.add(handle);
    return handle;
  }

  async close(): Promise<void> {
    await Promise.all([...this.watchers].map((w) => w.stop()));
  }
}
