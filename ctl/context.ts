/**
 * What every tabbyctl command gets: output streams, stdin, environment, the global flags and a lazily
 * opened datastore. The process edge (main.ts) fills it from `process`; tests fill it in memory.
 */
import { readFile } from 'node:fs/promises';
import type { Resource } from '../api/meta.js';
import type { Datastore } from '../datastore/types.js';
import { NotFoundError } from '../datastore/types.js';
import { TabbyError } from '../lib/errors.js';
import { VERSION } from '../lib/version.js';
import type { DatastoreConfig } from '../datastore/config.js';
import { DEFAULT_CTL_CONFIG, configFromEnv, parseDatastoreType, parseEtcdEndpoints, resolveCtlConfig } from '../datastore/config.js';
import { openDatastore } from '../datastore/index.js';

export const DEFAULT_CONFIG_PATH = DEFAULT_CTL_CONFIG;

export interface CtlIO {
  out(text: string): void;
  err(text: string): void;
  readStdin(): Promise<string>;
  env: Record<string, string | undefined>;
  /** Use this datastore instead of opening one from the configuration (tests, embedding). */
  datastore?: Datastore;
}

export interface GlobalOptions {
  /** --config; undefined = the default file when it exists, else the environment. */
  config: string | undefined;
  allowVersionMismatch: boolean;
}

/** A tabbyctl failure with a one-line reason; the CLI prints it and exits non-zero. */
export class CtlError extends TabbyError {
  constructor(message: string, hint?: string) {
    super('Ctl', message, hint === undefined ? undefined : { hint });
  }
}

function envValue(env: Record<string, string | undefined>, key: string): string | undefined {
  const v = env[key]?.trim();
  return v === undefined || v === '' ? undefined : v;
}

/**
 * The datastore configuration tabbyctl uses: the config file (--config, which must exist, or the
 * default file when present) with DATASTORE_TYPE / ETCD_ENDPOINTS / KUBECONFIG from the environment
 * overriding its fields; only the environment when there is no file.
 */
export function ctlDatastoreConfig(explicitPath: string | undefined, env: Record<string, string | undefined>, defaultPath = DEFAULT_CTL_CONFIG): DatastoreConfig {
  const base = resolveCtlConfig(explicitPath, env, defaultPath);
  const type = envValue(env, 'DATASTORE_TYPE');
  const endpoints = envValue(env, 'ETCD_ENDPOINTS');
  const kubeconfig = envValue(env, 'KUBECONFIG');
  const cfg: DatastoreConfig = { ...base };
  if (type !== undefined) cfg.type = parseDatastoreType(type, 'DATASTORE_TYPE');
  if (cfg.type === 'etcdv3') {
    if (endpoints !== undefined) cfg.etcdEndpoints = parseEtcdEndpoints(endpoints, 'ETCD_ENDPOINTS');
    else if (base.type !== 'etcdv3') cfg.etcdEndpoints = configFromEnv({}).etcdEndpoints ?? [];
  } else {
    for (const k of ['etcdEndpoints', 'etcdCaCertFile', 'etcdCertFile', 'etcdKeyFile', 'etcdUsername', 'etcdPassword'] as const) delete cfg[k];
  }
  if (cfg.type === 'kubernetes') {
    if (kubeconfig !== undefined) cfg.kubeconfig = kubeconfig;
  } else {
    delete cfg.kubeconfig;
  }
  return cfg;
}

export class CtlContext {
  private ds: Promise<Datastore> | undefined;
  private opened: Datastore | undefined;

  constructor(
    readonly io: CtlIO,
    readonly globals: GlobalOptions,
  ) {}

  out(line: string): void {
    this.io.out(line.endsWith('\n') ? line : `${line}\n`);
  }

  err(line: string): void {
    this.io.err(line.endsWith('\n') ? line : `${line}\n`);
  }

  /** Text of `-f <file>`, or stdin for `-f -`. */
  async readInput(file: string): Promise<string> {
    if (file === '-') return this.io.readStdin();
    try {
      return await readFile(file, 'utf8');
    } catch (e) {
      throw new CtlError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
  }

  /** The datastore, opened on first use and checked against the cluster version. */
  datastore(): Promise<Datastore> {
    this.ds ??= this.open();
    return this.ds;
  }

  private async open(): Promise<Datastore> {
    const ds = this.io.datastore ?? (await this.openConfigured());
    if (!this.globals.allowVersionMismatch) await checkVersion(ds);
    return ds;
  }

  private async openConfigured(): Promise<Datastore> {
    const ds = await openDatastore(ctlDatastoreConfig(this.globals.config, this.io.env));
    this.opened = ds;
    return ds;
  }

  async close(): Promise<void> {
    const ds = this.opened;
    this.opened = undefined;
    if (ds) await ds.close();
  }
}

/** `major.minor` of a version string (`v3.28.1` → `3.28`). */
export function majorMinor(v: string): string {
  return v.replace(/^v/, '').split('.').slice(0, 2).join('.');
}

/** ClusterInformation `default`, or undefined when the cluster has none yet. */
export async function clusterInformation(ds: Datastore): Promise<Resource | undefined> {
  try {
    return await ds.get('ClusterInformation', 'default');
  } catch (e) {
    if (e instanceof NotFoundError) return undefined;
    throw e;
  }
}

/** Refuse to work against a cluster of another major.minor version (calicoctl's guard). */
async function checkVersion(ds: Datastore): Promise<void> {
  const info = await clusterInformation(ds);
  const clusterVersion = (info?.spec as { calicoVersion?: unknown } | undefined)?.calicoVersion;
  if (typeof clusterVersion !== 'string' || clusterVersion === '') return;
  if (majorMinor(clusterVersion) !== majorMinor(VERSION)) {
    throw new CtlError(
      `Version mismatch. Client Version: v${VERSION}. Cluster Version: ${clusterVersion}.`,
      'use --allow-version-mismatch to override',
    );
  }
}
