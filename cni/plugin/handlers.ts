/**
 * tabby CNI command handlers: IPAM delegation, pod plumbing through a PodDataplane, the workload
 * endpoint record, idempotent ADD via a result cache, DEL/CHECK/GC/STATUS.
 * I/O is injected (dataplane, datastore opener, delegate exec) so unit tests run it in-process.
 */
import { randomBytes } from 'node:crypto';
// Sync fs on purpose: a short-lived CLI, and node:fs/promises would be one more module to load per exec.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Datastore } from '../../datastore/types.js';
import type { CniLog } from './filelog.js';
import type { CniEnv } from '../protocol/env.js';
import { CniCode, CniError } from '../protocol/errors.js';
import type { CniHandlers, NetConf } from '../protocol/run.js';
import { type PluginConfig, checkIfname, pluginConfig, resolveMtu } from './config.js';
import { type PodDataplane, type SetupParams, checkPod } from './dataplane.js';
import { HOST_IF_PREFIX, attachmentAlias, hostVethName, parseAttachmentAlias, randomMac } from './names.js';
import { type PodIp, buildResult, mergeWithPrev, normalizeResult, parseIpamResult, renderResult } from './result.js';
import { type WorkloadEndpoint, buildWep } from './wep.js';

/** tabby's own CNI error codes (100+). */
export const TABBY_CNI_CODES = {
  Internal: 100,
  NoAddresses: 110,
  CheckFailed: 111,
  Dataplane: 112,
} as const;

export type Delegate = (type: string, command: string, stdin: string, env: NodeJS.ProcessEnv, cniPath: string[]) => Promise<unknown>;

export interface HandlerDeps {
  dataplane: () => Promise<PodDataplane>;
  delegate: Delegate;
  /** Opens the configured datastore (the caller makes its own pino logger: that path loads heavy clients anyway). */
  openDatastore: (conf: NetConf, cfg: PluginConfig) => Promise<Datastore>;
  logger: (cfg: PluginConfig) => CniLog;
  env: NodeJS.ProcessEnv;
  hostname: string;
}

function cachePath(cfg: PluginConfig, env: CniEnv): string {
  return join(cfg.libDir, 'cni-results', `${cfg.name}-${env.containerId}-${env.ifname}.json`);
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function needNetns(env: CniEnv): void {
  if (!existsSync(env.netns)) {
    throw new CniError(CniCode.InvalidEnv, `network namespace ${env.netns} (CNI_NETNS) does not exist`, 'the runtime must create the namespace before ADD/CHECK');
  }
}

/** The pod's addresses, MAC and MTU recorded in a previous result (CHECK's prevResult, the ADD cache). */
function wantFromResult(raw: Record<string, unknown>, env: CniEnv, hostIf: string, mtu: number, allowIpForwarding: boolean): SetupParams {
  const r = normalizeResult(raw);
  const ifaces = r.interfaces ?? [];
  const podIndex = ifaces.findIndex((i) => i.name === env.ifname && i.sandbox);
  const podIf = ifaces[podIndex];
  if (!podIf) throw new CniError(TABBY_CNI_CODES.CheckFailed, `prevResult has no interface ${env.ifname} in a sandbox`);
  const ips: PodIp[] = (r.ips ?? []).filter((x) => x.interface === undefined || x.interface === podIndex).map((x) => {
    const ip = x.address.split('/')[0] ?? '';
    return { ip, family: ip.includes(':') ? 6 : 4 };
  });
  return {
    netns: env.netns,
    ifname: env.ifname,
    hostIf,
    containerMac: podIf.mac ?? '',
    mtu: podIf.mtu ?? mtu,
    ips,
    alias: attachmentAlias(env.containerId, env.ifname),
    allowIpForwarding,
  };
}

export function tabbyHandlers(deps: HandlerDeps): CniHandlers {
  const setup = (conf: NetConf) => {
    const cfg = pluginConfig(conf, deps.env, deps.hostname);
    return { cfg, log: deps.logger(cfg) };
  };
  const ipamEnv = (env: CniEnv) => ({ ...deps.env, CNI_CONTAINERID: env.containerId, CNI_NETNS: env.netns, CNI_IFNAME: env.ifname, CNI_PATH: env.path.join(':') });

  /** GC and STATUS exist from spec 1.1.0 on: ask the IPAM plugin first, skip it when it is older. */
  async function delegateNew(cfg: PluginConfig, command: 'GC' | 'STATUS', conf: NetConf, env: CniEnv, log: CniLog): Promise<void> {
    const info = (await deps.delegate(cfg.ipamType, 'VERSION', JSON.stringify({ cniVersion: cfg.cniVersion }), ipamEnv(env), env.path)) as { supportedVersions?: unknown } | undefined;
    const versions = Array.isArray(info?.supportedVersions) ? (info.supportedVersions as unknown[]) : [];
    if (!versions.includes(cfg.cniVersion)) {
      log.info({ ipam: cfg.ipamType, command }, 'IPAM plugin does not speak this version; not delegating');
      return;
    }
    await deps.delegate(cfg.ipamType, command, JSON.stringify(conf), ipamEnv(env), env.path);
  }

  async function withDatastore<T>(conf: NetConf, cfg: PluginConfig, fn: (ds: Datastore) => Promise<T>): Promise<T> {
    let ds: Datastore;
    try {
      ds = await deps.openDatastore(conf, cfg);
    } catch (err) {
      if (err instanceof CniError) throw err;
      throw new CniError(CniCode.TryAgainLater, `datastore: ${(err as Error).message}`);
    }
    try {
      return await fn(ds);
    } finally {
      await ds.close().catch(() => undefined);
    }
  }

  return {
    async add(env, conf) {
      const { cfg, log } = setup(conf);
      checkIfname(env.ifname);
      needNetns(env);
      const hostIf = hostVethName(env.args, env.containerId);
      const alias = attachmentAlias(env.containerId, env.ifname);
      const dp = await deps.dataplane();
      const cache = cachePath(cfg, env);
      const cached = readText(cache);
      const existing = await dp.hostLink(hostIf);
      if (cached !== undefined && existing?.alias === alias) {
        log.info({ containerId: env.containerId, hostIf }, 'ADD retried: returning the existing result');
        return renderResult(normalizeResult(JSON.parse(cached) as Record<string, unknown>), cfg.cniVersion);
      }
      if (existing) {
        log.warn({ hostIf, owner: existing.alias }, 'deleting a stale host veth with our name');
        await dp.deleteLink(hostIf);
      }
      const mtu = resolveMtu(cfg.mtu, readText(join(cfg.libDir, 'mtu')));
      const stdin = JSON.stringify(conf);
      const ipamRaw = await deps.delegate(cfg.ipamType, 'ADD', stdin, ipamEnv(env), env.path);
      let ipam;
      try {
        ipam = parseIpamResult(ipamRaw, cfg.ipamType);
      } catch (err) {
        await deps.delegate(cfg.ipamType, 'DEL', stdin, ipamEnv(env), env.path).catch((e: unknown) => log.error({ err: e }, 'IPAM release failed'));
        throw err;
      }
      const params: SetupParams = {
        netns: env.netns,
        ifname: env.ifname,
        hostIf,
        containerMac: randomMac(randomBytes(6)),
        mtu,
        ips: ipam.ips,
        alias,
        allowIpForwarding: cfg.allowIpForwarding,
      };
      try {
        try {
          await dp.setup(params);
        } catch (err) {
          if (err instanceof CniError) throw err;
          throw new CniError(TABBY_CNI_CODES.Dataplane, `pod network setup failed: ${(err as Error).message}`);
        }
        const result = mergeWithPrev(
          cfg.prevResult ? normalizeResult(cfg.prevResult) : undefined,
          buildResult({ hostIf, ifname: env.ifname, containerMac: params.containerMac, netns: env.netns, mtu, ips: ipam.ips }, ipam.dns),
        );
        if (cfg.datastoreConfigured) {
          const wep = buildWep({
            node: cfg.nodename,
            args: env.args,
            containerId: env.containerId,
            ifname: env.ifname,
            hostIf,
            mac: params.containerMac,
            ipNetworks: ipam.ips.map((x) => `${x.ip}/${x.family === 4 ? 32 : 128}`),
          });
          await withDatastore(conf, cfg, async (ds) => {
            try {
              await ds.create(wep);
            } catch (err) {
              if ((err as { code?: string }).code !== 'AlreadyExists') throw err;
              const cur = await ds.get(wep.kind, wep.metadata.name, wep.metadata.namespace);
              await ds.update({ ...wep, metadata: { ...wep.metadata, resourceVersion: cur.metadata.resourceVersion } });
            }
          });
        }
        mkdirSync(join(cfg.libDir, 'cni-results'), { recursive: true });
        writeFileSync(cache, JSON.stringify(result));
        log.info({ containerId: env.containerId, hostIf, ips: result.ips?.map((x) => x.address), mtu }, 'pod network added');
        return renderResult(result, cfg.cniVersion);
      } catch (err) {
        log.error({ err, containerId: env.containerId }, 'ADD failed; releasing the veth and the IPAM allocation');
        await dp.deleteLink(hostIf).catch(() => undefined);
        await deps.delegate(cfg.ipamType, 'DEL', stdin, ipamEnv(env), env.path).catch((e: unknown) => log.error({ err: e }, 'IPAM release failed'));
        rmSync(cache, { force: true });
        throw err;
      }
    },

    async del(env, conf) {
      const { cfg, log } = setup(conf);
      const hostIf = hostVethName(env.args, env.containerId);
      const dp = await deps.dataplane();
      const link = await dp.hostLink(hostIf);
      const owner = parseAttachmentAlias(link?.alias);
      if (link && (!owner || (owner.containerID === env.containerId && owner.ifname === env.ifname))) await dp.deleteLink(hostIf);
      else if (link) log.info({ hostIf, owner }, 'DEL: host veth belongs to another attachment; left alone');
      await deps.delegate(cfg.ipamType, 'DEL', JSON.stringify(conf), ipamEnv(env), env.path);
      if (cfg.datastoreConfigured) {
        const wep = buildWep({ node: cfg.nodename, args: env.args, containerId: env.containerId, ifname: env.ifname, hostIf, mac: '', ipNetworks: [] });
        await withDatastore(conf, cfg, async (ds) => {
          try {
            const cur = await ds.get<typeof wep>(wep.kind, wep.metadata.name, wep.metadata.namespace);
            if (cur.spec.containerID === env.containerId) await ds.delete(wep.kind, wep.metadata.name, { namespace: wep.metadata.namespace ?? 'default' });
          } catch (err) {
            if ((err as { code?: string }).code !== 'NotFound') throw err;
          }
        });
      }
      rmSync(cachePath(cfg, env), { force: true });
      log.info({ containerId: env.containerId, hostIf }, 'pod network deleted');
    },

    async check(env, conf) {
      const { cfg } = setup(conf);
      checkIfname(env.ifname);
      needNetns(env);
      if (!cfg.prevResult) throw new CniError(CniCode.InvalidNetworkConfig, 'CHECK needs prevResult in the network configuration');
      const hostIf = hostVethName(env.args, env.containerId);
      const want = wantFromResult(cfg.prevResult, env, hostIf, resolveMtu(cfg.mtu, readText(join(cfg.libDir, 'mtu'))), cfg.allowIpForwarding);
      const dp = await deps.dataplane();
      const got = await dp.observe({ netns: env.netns, ifname: env.ifname, hostIf, v6: want.ips.some((x) => x.family === 6) });
      const problems = checkPod(want, got);
      if (problems.length > 0) throw new CniError(TABBY_CNI_CODES.CheckFailed, `CHECK failed for ${env.containerId}: ${problems[0]}`, problems.join('; '));
      await deps.delegate(cfg.ipamType, 'CHECK', JSON.stringify(conf), ipamEnv(env), env.path);
    },

    async gc(env, conf) {
      const { cfg, log } = setup(conf);
      const valid = new Set(cfg.validAttachments.map((a) => `${a.containerID}\0${a.ifname}`));
      const dp = await deps.dataplane();
      for (const link of await dp.listHostLinks(HOST_IF_PREFIX)) {
        const owner = parseAttachmentAlias(link.alias);
        if (!owner || valid.has(`${owner.containerID}\0${owner.ifname}`)) continue;
        log.info({ hostIf: link.name, owner }, 'GC: removing a leftover pod veth');
        await dp.deleteLink(link.name);
        rmSync(join(cfg.libDir, 'cni-results', `${cfg.name}-${owner.containerID}-${owner.ifname}.json`), { force: true });
      }
      if (cfg.datastoreConfigured) {
        // WorkloadEndpoints of this node whose attachment is no longer valid.
        await withDatastore(conf, cfg, async (ds) => {
          const weps = await ds.list<WorkloadEndpoint>('WorkloadEndpoint');
          for (const w of weps.items) {
            const { node, containerID, endpoint } = w.spec;
            if (node !== cfg.nodename || !containerID || valid.has(`${containerID}\0${endpoint ?? ''}`)) continue;
            log.info({ wep: w.metadata.name, containerID }, 'GC: removing a leftover WorkloadEndpoint');
            await ds.delete('WorkloadEndpoint', w.metadata.name, { namespace: w.metadata.namespace ?? 'default' }).catch((err: unknown) => {
              if ((err as { code?: string }).code !== 'NotFound') throw err;
            });
          }
        });
      }
      await delegateNew(cfg, 'GC', conf, env, log);
    },

    async status(env, conf) {
      const { cfg, log } = setup(conf);
      if (cfg.datastoreConfigured) {
        await withDatastore(conf, cfg, async (ds) => {
          try {
            await ds.get('Node', cfg.nodename);
          } catch (err) {
            const code = (err as { code?: string }).code;
            if (code === 'NotFound') throw new CniError(CniCode.PluginNotAvailable, `node ${cfg.nodename} is not registered in the datastore`, 'start tabby-node on this host');
            throw new CniError(CniCode.PluginNotAvailable, `datastore unreachable: ${(err as Error).message}`);
          }
        }).catch((err: unknown) => {
          if (err instanceof CniError && err.cniCode === CniCode.TryAgainLater) throw new CniError(CniCode.PluginNotAvailable, err.message);
          throw err;
        });
      }
      await delegateNew(cfg, 'STATUS', conf, env, log);
    },
  };
}
