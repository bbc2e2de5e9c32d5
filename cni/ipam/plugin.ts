/**
 * tabby-ipam command handlers (CNI IPAM plugin over the block allocator). I/O-free apart from the
 * injected datastore opener, so tests run it in-process over the memory datastore.
 *
 * Handles: `<network name>.<containerID>` (Calico: `k8s-pod-network.<id>`); DEL also releases the
 * legacy workload handle `<namespace>.<pod>` when K8S_POD_* args are present.
 */
import type { Datastore } from '../../datastore/types.js';
import { DatastoreConfigError, UnavailableError } from '../../datastore/types.js';
import { errorMessage } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import { parseIp } from '../../ipam/cidr.js';
import { IpamError } from '../../ipam/errors.js';
import { type Assignment, Ipam } from '../../ipam/ipam.js';
import type { CniEnv } from '../protocol/env.js';
import { CniCode, CniError } from '../protocol/errors.js';
import type { CniHandlers, NetConf } from '../protocol/run.js';
import { resultForVersion } from '../protocol/version.js';
import { type IpamPluginConfig, pluginConfig } from './config.js';

/** Our own CNI error codes (100+). Stable: documented in cni/ipam/README.md. */
export const IPAM_CNI_CODES: Record<string, number> = {
  NoPools: 101,
  PoolUnusable: 102,
  BlockLimit: 103,
  StrictAffinity: 104,
  Exhausted: 105,
  AlreadyAssigned: 106,
  NotInPool: 107,
  BadSequenceNumber: 108,
  NotAllocatedToHandle: 109,
};

/** Map any error to the CNI error JSON the runtime sees. */
export function toCniError(err: unknown): CniError {
  if (err instanceof CniError) return err;
  if (err instanceof UnavailableError) return new CniError(CniCode.TryAgainLater, err.message, err.hint);
  if (err instanceof DatastoreConfigError) return new CniError(CniCode.InvalidNetworkConfig, err.message, err.hint);
  if (err instanceof IpamError) {
    if (err.code === 'RetriesExhausted' || err.code === 'LockTimeout') return new CniError(CniCode.TryAgainLater, err.message, err.hint);
    if (err.code === 'InvalidAddress' || err.code === 'InvalidCidr' || err.code === 'InvalidArgument' || err.code === 'InvalidConfig') {
      return new CniError(CniCode.InvalidNetworkConfig, err.message, err.hint);
    }
    return new CniError(IPAM_CNI_CODES[err.code] ?? CniCode.PluginBase, err.message, err.hint);
  }
  return new CniError(CniCode.PluginBase, errorMessage(err));
}

/**
 * Test seam: TABBY_IPAM_TEST_CRASH=after-handle-write kills this process with SIGKILL between the
 * handle write and the block write, to prove `ipam check` finds the leak. Never set in production.
 */
function crashSeam(env: NodeJS.ProcessEnv): { afterHandleWrite?: () => Promise<void> } {
  if (env.TABBY_IPAM_TEST_CRASH !== 'after-handle-write') return {};
  return {
    afterHandleWrite: () => {
      process.kill(process.pid, 'SIGKILL');
      return new Promise<void>(() => {});
    },
  };
}

export type DatastoreOpener = (cfg: IpamPluginConfig, log: Logger) => Promise<Datastore>;

export interface IpamPluginDeps {
  openDatastore: DatastoreOpener;
  /** Gets the parsed plugin config (to create a file logger) and returns a logger. */
  logger: (cfg: IpamPluginConfig) => Logger;
  env?: NodeJS.ProcessEnv;
}

/** Specific addresses requested: runtimeConfig.ips (`ips` capability) and CNI_ARGS `IP=a,b`. */
function requestedIps(cfg: IpamPluginConfig, env: CniEnv): string[] {
  const raw = [...cfg.runtimeIps, ...(env.args.IP ? env.args.IP.split(',') : [])];
  return raw.map((s) => {
    const ip = s.trim().split('/')[0]!;
    try {
      parseIp(ip);
    } catch {
      throw new CniError(CniCode.InvalidNetworkConfig, `requested IP ${JSON.stringify(s)} is not an IP address`);
    }
    return ip;
  });
}

function attrsFor(cfg: IpamPluginConfig, env: CniEnv): Record<string, string> {
  const a: Record<string, string> = { node: cfg.nodename, timestamp: new Date().toISOString() };
  if (env.args.K8S_POD_NAMESPACE) a.namespace = env.args.K8S_POD_NAMESPACE;
  if (env.args.K8S_POD_NAME) a.pod = env.args.K8S_POD_NAME;
  a.containerID = env.containerId;
  return a;
}

function toResult(ips: Assignment[], cniVersion: string): Record<string, unknown> {
  return resultForVersion({ ips: ips.map((a) => ({ address: `${a.ip}/${a.family === 4 ? 32 : 128}` })), routes: [], dns: {} }, cniVersion);
}

export function ipamHandlers(deps: IpamPluginDeps): CniHandlers {
  const session = async <T>(conf: NetConf, fn: (ipam: Ipam, cfg: IpamPluginConfig, log: Logger) => Promise<T>): Promise<T> => {
    const cfg = pluginConfig(conf, deps.env);
    const log = deps.logger(cfg);
    const ds = await deps.openDatastore(cfg, log);
    try {
      return await fn(new Ipam({ datastore: ds, log, runDir: cfg.runDir, ...crashSeam(deps.env ?? process.env) }), cfg, log);
    } catch (err) {
      log.error({ err: errorMessage(err) }, 'IPAM request failed');
      throw err;
    } finally {
      await ds.close();
    }
  };

  return {
    add: (env, conf) =>
      session(conf, async (ipam, cfg, log) => {
        const handleId = `${cfg.networkName}.${env.containerId}`;
        const specific = requestedIps(cfg, env);
        const existing = await ipam.ipsByHandle(handleId);
        if (existing.length > 0) {
          log.info({ handleId, ips: existing.map((a) => a.ip) }, 'handle already has addresses; returning them');
          return toResult(existing, conf.cniVersion);
        }
        const attrs = attrsFor(cfg, env);
        let got: Assignment[] = [];
        if (specific.length > 0) {
          try {
            for (const ip of specific) got.push(await ipam.assignIp({ ip, handleId, attrs, hostname: cfg.nodename }));
          } catch (err) {
            if (got.length > 0) await ipam.releaseIps(got.map((a) => a.ip), cfg.nodename);
            throw err;
          }
        } else {
          const r = await ipam.autoAssign({
            num4: cfg.assignIpv4 ? 1 : 0,
            num6: cfg.assignIpv6 ? 1 : 0,
            handleId,
            attrs,
            hostname: cfg.nodename,
            ipv4Pools: cfg.ipv4Pools,
            ipv6Pools: cfg.ipv6Pools,
          });
          got = [...r.ipv4, ...r.ipv6];
        }
        log.info({ handleId, ips: got.map((a) => a.ip) }, 'assigned');
        return toResult(got, conf.cniVersion);
      }),

    del: (env, conf) =>
      session(conf, async (ipam, cfg, log) => {
        const handles = [`${cfg.networkName}.${env.containerId}`];
        if (env.args.K8S_POD_NAMESPACE && env.args.K8S_POD_NAME) handles.push(`${env.args.K8S_POD_NAMESPACE}.${env.args.K8S_POD_NAME}`);
        for (const h of handles) {
          const n = await ipam.releaseByHandle(h, cfg.nodename);
          log.info({ handleId: h, released: n }, n > 0 ? 'released' : 'nothing to release');
        }
      }),

    check: (env, conf) =>
      session(conf, async (ipam, cfg) => {
        const prev = conf.prevResult as { ips?: Array<{ address?: string }> } | undefined;
        if (!prev || !Array.isArray(prev.ips)) throw new CniError(CniCode.InvalidNetworkConfig, 'CHECK needs prevResult with ips');
        const handleId = `${cfg.networkName}.${env.containerId}`;
        const mine = new Set((await ipam.ipsByHandle(handleId)).map((a) => a.ip));
        for (const ip of prev.ips) {
          const addr = (ip.address ?? '').split('/')[0]!;
          if (!mine.has(addr)) {
            throw new CniError(IPAM_CNI_CODES.NotAllocatedToHandle!, `${addr} is not allocated to ${handleId}`, 'the container must be re-created');
          }
        }
      }),

    gc: (_env, conf) =>
      session(conf, async (ipam, cfg, log) => {
        const valid = conf['cni.dev/valid-attachments'];
        if (valid !== undefined && !Array.isArray(valid)) throw new CniError(CniCode.InvalidNetworkConfig, 'cni.dev/valid-attachments must be a list');
        const keep = new Set((valid ?? []).map((v: { containerID?: string }) => `${cfg.networkName}.${v.containerID ?? ''}`));
        const prefix = `${cfg.networkName}.`;
        const stale = new Set<string>();
        for (const b of await ipam.store.listBlocks()) {
          for (const a of b.spec.attributes) {
            const h = a.handle_id;
            if (h && h.startsWith(prefix) && a.secondary?.node === cfg.nodename && !keep.has(h)) stale.add(h);
          }
        }
        for (const h of stale) {
          const n = await ipam.releaseByHandle(h, cfg.nodename);
          log.info({ handleId: h, released: n }, 'GC released stale attachment');
        }
      }),

    status: (_env, conf) =>
      session(conf, async (ipam) => {
        let pools;
        try {
          pools = await ipam.pools();
        } catch (err) {
          throw new CniError(CniCode.PluginNotAvailable, `datastore unavailable: ${errorMessage(err)}`);
        }
        if (!pools.some((p) => !p.disabled)) throw new CniError(CniCode.PluginNotAvailable, 'no enabled IP pool exists', 'create an IPPool');
      }),
  };
}
