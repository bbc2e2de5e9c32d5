/**
 * BGP passwords from Kubernetes Secrets, as calico-node: `BGPPeer.password.secretKeyRef` and
 * `BGPConfiguration.nodeMeshPassword.secretKeyRef` name a Secret (and key) in the agent's own
 * namespace (`NAMESPACE` / `TABBY_NAMESPACE`, default `kube-system` like Calico's confd).
 *
 * - `SecretResolver` keeps the Secrets the plan refers to in a cache, answers lookups synchronously
 *   (the plan is pure), fetches new names at once and re-reads all of them every `refreshMs`; a
 *   change of any value calls `onChange` (the agent recomputes; the speaker re-keys only the session
 *   whose password changed). A read error keeps the last good value (an API hiccup must not drop a
 *   working session); values are never logged.
 * - `applyPeerPasswords(plan, …)` sets each peer's password from its reference; a peer whose
 *   password cannot be resolved is taken out of the session set and reported with the reason
 *   (never started without the password it was configured with) — except with
 *   `secretKeyRef.optional: true` (Kubernetes semantics): when the Secret or the key does not exist
 *   the peer runs without a password (no TCP-MD5). Only a definite absence counts: a pending read,
 *   a read error or no Kubernetes API still hold the peer back (the Secret may well exist).
 */
import type { Logger } from '../lib/log.js';
import { errorMessage } from '../lib/errors.js';
import type { BGPConfiguration, BGPPeer, SecretKeyRef } from '../api/types.js';
import type { Datastore } from '../datastore/types.js';
import type { ServiceReader } from '../datastore/kubernetes-core.js';
import type { BgpPlan, ComputedPeer } from './bgp-config.js';

export const DEFAULT_SECRET_NAMESPACE = 'kube-system';
export const DEFAULT_SECRET_REFRESH_MS = 10_000;

/** Reads a Secret's decoded data; undefined when it does not exist (datastore/kubernetes-core.ts). */
export interface SecretSource {
  read(namespace: string, name: string): Promise<Record<string, string> | undefined>;
}

/** `missing`: the Secret or its key does not exist (known for sure — not a read error or a pending read). */
export type SecretLookup = { value: string } | { error: string; missing?: true };

export interface SecretSettings {
  namespace: string;
  /** Kubeconfig for the Secret reader when the datastore is etcd (KUBECONFIG); undefined = none configured. */
  kubeconfig?: string;
  /** In a pod: the in-cluster service account can read Secrets. */
  inCluster: boolean;
  refreshMs: number;
}

/** `NAMESPACE` / `TABBY_NAMESPACE`, `KUBECONFIG`, `TABBY_SECRET_REFRESH_SECONDS` (default 10). */
export function secretSettings(env: NodeJS.ProcessEnv): SecretSettings {
  const v = (k: string): string | undefined => (env[k]?.trim() ? env[k]!.trim() : undefined);
  const refresh = Number(v('TABBY_SECRET_REFRESH_SECONDS') ?? DEFAULT_SECRET_REFRESH_MS / 1000);
  const s: SecretSettings = {
    namespace: v('TABBY_NAMESPACE') ?? v('NAMESPACE') ?? DEFAULT_SECRET_NAMESPACE,
    inCluster: v('KUBERNETES_SERVICE_HOST') !== undefined,
    refreshMs: Number.isFinite(refresh) && refresh > 0 ? refresh * 1000 : DEFAULT_SECRET_REFRESH_MS,
  };
  const kc = v('KUBECONFIG');
  if (kc) s.kubeconfig = kc;
  return s;
}

/** The agent's `secrets` dependency (node/agent.ts AgentDeps.secrets). */
export interface SecretAccess {
  namespace: string;
  source?: SecretSource;
  unavailableReason?: string;
  refreshMs?: number;
}

/** The Services/Endpoints lister (datastore/kubernetes-core.ts ServiceReader). */
export type ServiceSource = ServiceReader;

/**
 * The Kubernetes core API tabby-node reads besides its CRDs (Secrets, Services, Endpoints): the
 * Kubernetes datastore itself, or on etcd (as calico-node) a kubeconfig (KUBECONFIG) or the
 * in-cluster service account; otherwise the reason it is not available.
 */
export async function kubernetesCore(env: NodeJS.ProcessEnv, ds: Datastore): Promise<{ reader?: SecretSource & ServiceSource; unavailableReason?: string }> {
  const s = secretSettings(env);
  const kds = ds as Datastore & { readSecret?: SecretSource['read']; listServices?: ServiceSource['list'] };
  if (ds.type === 'kubernetes' && typeof kds.readSecret === 'function' && typeof kds.listServices === 'function') {
    return { reader: { read: (ns, name) => kds.readSecret!(ns, name), list: () => kds.listServices!() } };
  }
  if (!s.kubeconfig && !s.inCluster) return { unavailableReason: `with the ${ds.type} datastore set KUBECONFIG (or run in a pod) so tabby-node can read them` };
  try {
    const { openCoreReader } = await import('../datastore/kubernetes.js');
    return { reader: await openCoreReader(s.kubeconfig ? { kubeconfig: s.kubeconfig } : {}) };
  } catch (err) {
    return { unavailableReason: errorMessage(err) };
  }
}

/** Where BGP password Secrets come from (see kubernetesCore), with the agent's namespace and refresh period. */
export function secretAccessFrom(env: NodeJS.ProcessEnv, core: Awaited<ReturnType<typeof kubernetesCore>>): SecretAccess {
  const s = secretSettings(env);
  const base = { namespace: s.namespace, refreshMs: s.refreshMs };
  if (core.reader) return { ...base, source: core.reader };
  const why = core.unavailableReason ?? 'no Kubernetes API configured';
  return { ...base, unavailableReason: why.startsWith('with the ') ? `BGP passwords come from Kubernetes Secrets: ${why}` : `cannot read BGP password Secrets: ${why}` };
}

export async function secretAccess(env: NodeJS.ProcessEnv, ds: Datastore): Promise<SecretAccess> {
  return secretAccessFrom(env, await kubernetesCore(env, ds));
}

type Entry = { state: 'pending' } | { state: 'found'; data: Record<string, string> } | { state: 'missing' } | { state: 'error'; message: string };

export interface SecretResolverOptions {
  namespace: string;
  /** Undefined: Secrets cannot be read here; every lookup fails with `unavailableReason`. */
  source?: SecretSource;
  unavailableReason?: string;
  refreshMs?: number;
  onChange: () => void;
  log?: Logger;
}

export class SecretResolver {
  private readonly cache = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly opts: SecretResolverOptions) {}

  get namespace(): string {
    return this.opts.namespace;
  }

  /** Start the periodic re-read. */
  start(): void {
    if (!this.opts.source || this.timer || this.stopped) return;
    this.timer = setInterval(() => void this.refresh(), this.opts.refreshMs ?? DEFAULT_SECRET_REFRESH_MS);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Answer from the cache; a name not seen before is fetched (onChange fires when it arrives). */
  lookup(ref: SecretKeyRef): SecretLookup {
    const where = `Secret ${this.opts.namespace}/${ref.name}`;
    if (!this.opts.source) return { error: this.opts.unavailableReason ?? `cannot read ${where}: no Kubernetes API configured` };
    const e = this.cache.get(ref.name);
    if (!e) {
      this.cache.set(ref.name, { state: 'pending' });
      void this.fetch(ref.name);
      return { error: `reading ${where}` };
    }
    switch (e.state) {
      case 'pending':
        return { error: `reading ${where}` };
      case 'missing':
        return { error: `${where} not found`, missing: true };
      case 'error':
        return { error: `cannot read ${where}: ${e.message}` };
      case 'found': {
        const v = e.data[ref.key];
        return v === undefined ? { error: `${where} has no key ${JSON.stringify(ref.key)}`, missing: true } : { value: v };
      }
    }
  }

  /** Re-read every Secret looked up so far (tests call it instead of waiting for the timer). */
  async refresh(): Promise<void> {
    await Promise.all([...this.cache.keys()].map((n) => this.fetch(n)));
  }

  private fetch(name: string): Promise<void> {
    const running = this.inflight.get(name);
    if (running) return running;
    const p = this.read(name).finally(() => this.inflight.delete(name));
    this.inflight.set(name, p);
    return p;
  }

  private async read(name: string): Promise<void> {
    const before = this.cache.get(name);
    let next: Entry;
    try {
      const data = await this.opts.source!.read(this.opts.namespace, name);
      next = data === undefined ? { state: 'missing' } : { state: 'found', data };
    } catch (err) {
      // Keep a good value through API trouble; report the trouble only when there is none.
      if (before?.state === 'found') {
        this.opts.log?.warn({ secret: `${this.opts.namespace}/${name}`, err: errorMessage(err) }, 'cannot re-read BGP password Secret; keeping the last value');
        return;
      }
      next = { state: 'error', message: errorMessage(err) };
    }
    if (this.stopped) return;
    this.cache.set(name, next);
    if (JSON.stringify(before) !== JSON.stringify(next)) {
      this.opts.log?.info({ secret: `${this.opts.namespace}/${name}`, state: next.state }, 'BGP password Secret changed');
      this.opts.onChange();
    }
  }
}

/** A peer left out of the session set, and why (shown in `tabbyctl node status` INFO). */
export interface FailedPeer {
  peer: ComputedPeer;
  reason: string;
}

/** The Secret reference behind a computed peer's password, if any. */
export function passwordRefOf(p: ComputedPeer, config: BGPConfiguration | undefined, peers: readonly BGPPeer[]): SecretKeyRef | undefined {
  if (p.type === 'node-to-node mesh') return config?.spec?.nodeMeshPassword?.secretKeyRef;
  if (p.source === undefined) return undefined;
  return peers.find((bp) => bp.metadata.name === p.source)?.spec?.password?.secretKeyRef;
}

/**
 * Resolve passwords in place: peers with a resolved password get it, peers whose reference cannot
 * be resolved are removed from `plan.peers` and returned. An optional reference whose Secret or
 * key is missing leaves the peer in without a password; `optionalMissing` hears about each one.
 */
export function applyPeerPasswords(
  plan: BgpPlan,
  config: BGPConfiguration | undefined,
  peers: readonly BGPPeer[],
  lookup: (ref: SecretKeyRef) => SecretLookup,
  optionalMissing?: (missing: FailedPeer) => void,
): FailedPeer[] {
  const failed: FailedPeer[] = [];
  plan.peers = plan.peers.filter((p) => {
    const ref = passwordRefOf(p, config, peers);
    if (!ref) return true;
    const r = lookup(ref);
    if ('value' in r) {
      p.password = r.value;
      return true;
    }
    delete p.password;
    if (ref.optional === true && r.missing) {
      optionalMissing?.({ peer: p, reason: `optional password: ${r.error}; running without TCP-MD5` });
      return true;
    }
    failed.push({ peer: p, reason: `password unavailable: ${r.error}` });
    return false;
  });
  return failed;
}
