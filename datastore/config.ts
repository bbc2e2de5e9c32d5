/**
 * Datastore configuration, read the way Calico reads it:
 * - environment: DATASTORE_TYPE=etcdv3|kubernetes (default etcdv3; `memory` for tests),
 *   ETCD_ENDPOINTS (comma list), ETCD_CA_CERT_FILE, ETCD_CERT_FILE, ETCD_KEY_FILE, ETCD_USERNAME,
 *   ETCD_PASSWORD, KUBECONFIG; TABBY_ETCD_TRANSPORT=grpc|http (tabby's own: the etcd client);
 * - CNI network config: datastore_type, etcd_endpoints, etcd_ca_cert_file, etcd_cert_file,
 *   etcd_key_file, kubernetes.kubeconfig (values there win over the environment);
 * - tabbyctl config file (default /etc/tabby/tabbyctl.cfg), shaped like calicoctl.cfg:
 *     apiVersion: projectcalico.org/v3
 *     kind: CalicoAPIConfig
 *     spec: { datastoreType: etcdv3, etcdEndpoints: http://127.0.0.1:2379, kubeconfig: … }
 * Bad values raise DatastoreConfigError saying what to set.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as YamlLib from 'yaml';
import { DatastoreConfigError } from './types.js';

export type DatastoreType = 'etcdv3' | 'kubernetes' | 'memory';

export interface DatastoreConfig {
  type: DatastoreType;
  /** etcdv3: client URLs. */
  etcdEndpoints?: string[];
  etcdCaCertFile?: string;
  etcdCertFile?: string;
  etcdKeyFile?: string;
  etcdUsername?: string;
  etcdPassword?: string;
  /** kubernetes: kubeconfig path; omitted = client-node default (KUBECONFIG, ~/.kube/config, in-cluster). */
  kubeconfig?: string;
  /**
   * etcdv3 client: 'grpc' (package etcd3) or 'http' (etcd's JSON gateway over node:http: no gRPC
   * client to load, ≈ 25 MB less memory). Both have every operation, watch included. Omitted:
   * openDatastore uses gRPC; tabby-node and the CNI plugins default to 'http'. Environment:
   * TABBY_ETCD_TRANSPORT=grpc|http.
   */
  etcdTransport?: 'grpc' | 'http';
  /** Bound for each datastore request (default 5 s etcd, 10 s kubernetes). */
  requestTimeoutMs?: number;
}

export const DEFAULT_ETCD_ENDPOINT = 'http://127.0.0.1:2379';
export const DEFAULT_CTL_CONFIG = '/etc/tabby/tabbyctl.cfg';

const TYPES: readonly string[] = ['etcdv3', 'kubernetes', 'memory'];

export function parseDatastoreType(v: string | undefined, source: string): DatastoreType {
  const t = (v ?? '').trim();
  if (t === '') return 'etcdv3';
  if (TYPES.includes(t)) return t as DatastoreType;
  throw new DatastoreConfigError(`${source}: unknown datastore type ${JSON.stringify(t)}`, `${source} must be "etcdv3" or "kubernetes"`);
}

export function parseEtcdEndpoints(v: string | string[] | undefined, source: string): string[] {
  const list = (Array.isArray(v) ? v : (v ?? '').split(',')).map((s) => s.trim()).filter((s) => s !== '');
  if (list.length === 0) return [DEFAULT_ETCD_ENDPOINT];
  for (const e of list) {
    let u: URL | undefined;
    try {
      u = new URL(e);
    } catch {
      u = undefined;
    }
    if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || u.hostname === '' || u.pathname.length > 1) {
      throw new DatastoreConfigError(`${source}: ${JSON.stringify(e)} is not an etcd client URL`, `use a comma list of URLs such as ${DEFAULT_ETCD_ENDPOINT}`);
    }
  }
  return list;
}

/** TABBY_ETCD_TRANSPORT: `grpc`, `http` or unset (the program's default). */
export function parseEtcdTransport(v: string | undefined, source: string): 'grpc' | 'http' | undefined {
  const t = (v ?? '').trim();
  if (t === '') return undefined;
  if (t === 'grpc' || t === 'http') return t;
  throw new DatastoreConfigError(`${source}: unknown etcd transport ${JSON.stringify(t)}`, `${source} must be "grpc" or "http"`);
}

function nonEmpty(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
}

function build(type: DatastoreType, fields: Omit<DatastoreConfig, 'type'>): DatastoreConfig {
  const cfg: DatastoreConfig = { type };
  for (const [k, v] of Object.entries(fields) as Array<[keyof DatastoreConfig, unknown]>) {
    if (v !== undefined) (cfg as unknown as Record<string, unknown>)[k] = v;
  }
  if (type !== 'etcdv3') {
    for (const k of ['etcdEndpoints', 'etcdCaCertFile', 'etcdCertFile', 'etcdKeyFile', 'etcdUsername', 'etcdPassword', 'etcdTransport'] as const) delete cfg[k];
  }
  if (type !== 'kubernetes') delete cfg.kubeconfig;
  if (type === 'etcdv3' && (cfg.etcdCertFile === undefined) !== (cfg.etcdKeyFile === undefined)) {
    throw new DatastoreConfigError('etcd client certificate and key must be given together', 'set both ETCD_CERT_FILE and ETCD_KEY_FILE (or neither)');
  }
  return cfg;
}

/** Calico's environment variables. */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): DatastoreConfig {
  const type = parseDatastoreType(env.DATASTORE_TYPE, 'DATASTORE_TYPE');
  return build(type, {
    etcdEndpoints: type === 'etcdv3' ? parseEtcdEndpoints(env.ETCD_ENDPOINTS, 'ETCD_ENDPOINTS') : undefined,
    etcdTransport: type === 'etcdv3' ? parseEtcdTransport(env.TABBY_ETCD_TRANSPORT, 'TABBY_ETCD_TRANSPORT') : undefined,
    etcdCaCertFile: nonEmpty(env.ETCD_CA_CERT_FILE),
    etcdCertFile: nonEmpty(env.ETCD_CERT_FILE),
    etcdKeyFile: nonEmpty(env.ETCD_KEY_FILE),
    etcdUsername: nonEmpty(env.ETCD_USERNAME),
    etcdPassword: nonEmpty(env.ETCD_PASSWORD),
    kubeconfig: nonEmpty(env.KUBECONFIG),
  });
}

/** The datastore keys of a CNI network config (as Calico's CNI plugin reads them); env fills the gaps. */
export function configFromCniNetConf(conf: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): DatastoreConfig {
  const base = configFromEnv({ ...env, DATASTORE_TYPE: nonEmpty(conf.datastore_type) ?? env.DATASTORE_TYPE });
  const k8s = conf.kubernetes;
  if (k8s !== undefined && (typeof k8s !== 'object' || k8s === null || Array.isArray(k8s))) {
    throw new DatastoreConfigError('CNI config: "kubernetes" must be an object', 'e.g. "kubernetes": {"kubeconfig": "/etc/cni/net.d/tabby-kubeconfig"}');
  }
  const endpoints = conf.etcd_endpoints;
  if (endpoints !== undefined && typeof endpoints !== 'string') {
    throw new DatastoreConfigError('CNI config: "etcd_endpoints" must be a string', `e.g. "etcd_endpoints": "${DEFAULT_ETCD_ENDPOINT}"`);
  }
  return build(base.type, {
    ...base,
    etcdEndpoints: base.type === 'etcdv3' ? (nonEmpty(endpoints) ? parseEtcdEndpoints(endpoints as string, 'CNI config etcd_endpoints') : base.etcdEndpoints) : undefined,
    etcdCaCertFile: nonEmpty(conf.etcd_ca_cert_file) ?? base.etcdCaCertFile,
    etcdCertFile: nonEmpty(conf.etcd_cert_file) ?? base.etcdCertFile,
    etcdKeyFile: nonEmpty(conf.etcd_key_file) ?? base.etcdKeyFile,
    kubeconfig: nonEmpty((k8s as Record<string, unknown> | undefined)?.kubeconfig) ?? base.kubeconfig,
  });
}

/**
 * The `yaml` package, loaded on first use: only tabbyctl config files need it, and loading it costs
 * a short-lived process (the CNI plugins) tens of milliseconds.
 */
function parseYaml(text: string): unknown {
  const yaml = createRequire(import.meta.url)('yaml') as typeof YamlLib;
  return yaml.parse(text);
}

/** Parse a tabbyctl/calicoctl-style CalicoAPIConfig document. */
export function configFromCtlText(text: string, source = 'tabbyctl config'): DatastoreConfig {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new DatastoreConfigError(`${source}: not valid YAML: ${err instanceof Error ? err.message : String(err)}`, 'see README "Datastore configuration" for the format');
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new DatastoreConfigError(`${source}: expected a CalicoAPIConfig document`, 'apiVersion: projectcalico.org/v3, kind: CalicoAPIConfig, spec: {datastoreType: …}');
  }
  const d = doc as { apiVersion?: unknown; kind?: unknown; spec?: unknown };
  if (d.kind !== 'CalicoAPIConfig' || (d.apiVersion !== 'projectcalico.org/v3' && d.apiVersion !== 'v1')) {
    throw new DatastoreConfigError(`${source}: kind must be CalicoAPIConfig with apiVersion projectcalico.org/v3`, 'apiVersion: projectcalico.org/v3, kind: CalicoAPIConfig');
  }
  const spec = (d.spec ?? {}) as Record<string, unknown>;
  if (typeof spec !== 'object' || Array.isArray(spec)) throw new DatastoreConfigError(`${source}: spec must be a mapping`, 'spec: {datastoreType: etcdv3, etcdEndpoints: …}');
  const type = parseDatastoreType(nonEmpty(spec.datastoreType), `${source} spec.datastoreType`);
  const eps = spec.etcdEndpoints;
  return build(type, {
    etcdEndpoints: type === 'etcdv3' ? parseEtcdEndpoints(typeof eps === 'string' || Array.isArray(eps) ? (eps as string | string[]) : undefined, `${source} spec.etcdEndpoints`) : undefined,
    etcdCaCertFile: nonEmpty(spec.etcdCACertFile),
    etcdCertFile: nonEmpty(spec.etcdCertFile),
    etcdKeyFile: nonEmpty(spec.etcdKeyFile),
    etcdUsername: nonEmpty(spec.etcdUsername),
    etcdPassword: nonEmpty(spec.etcdPassword),
    kubeconfig: nonEmpty(spec.kubeconfig),
  });
}

/** Read a tabbyctl config file (e.g. /etc/tabby/tabbyctl.cfg). */
export function configFromFile(path: string): DatastoreConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new DatastoreConfigError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, 'pass --config with a readable CalicoAPIConfig file, or set DATASTORE_TYPE/ETCD_ENDPOINTS');
  }
  return configFromCtlText(text, path);
}

/**
 * tabbyctl's rule (as calicoctl's): an explicit --config must exist; otherwise the default file is
 * used when present, else the environment.
 */
export function resolveCtlConfig(explicitPath: string | undefined, env: NodeJS.ProcessEnv = process.env, defaultPath = DEFAULT_CTL_CONFIG): DatastoreConfig {
  if (explicitPath !== undefined) return configFromFile(explicitPath);
  if (existsSync(defaultPath)) return configFromFile(defaultPath);
  return configFromEnv(env);
}

/** Where a config points, for messages ("etcdv3 at http://…"). Never includes passwords. */
export function describeConfig(cfg: DatastoreConfig): string {
  if (cfg.type === 'etcdv3') return `etcdv3 at ${(cfg.etcdEndpoints ?? [DEFAULT_ETCD_ENDPOINT]).join(',')}`;
  if (cfg.type === 'kubernetes') return `kubernetes via ${cfg.kubeconfig ?? 'default kubeconfig'}`;
  return 'memory';
}
