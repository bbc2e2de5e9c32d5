/**
 * tabby-node: the per-node agent (`tabby-node`), plus `tabby-node install-cni` (the deploy helper's
 * installer, once merged). SIGTERM/SIGINT stop cleanly and keep kernel routes.
 */
import type { EventEmitter } from 'node:events';
import type net from 'node:net';
import { createLineLogger, type Logger } from '../lib/log.js';
import type { DatastoreConfig } from '../datastore/config.js';
import type { Datastore } from '../datastore/types.js';
import { errorMessage, TabbyError } from '../lib/errors.js';
import { openDatastore } from '../datastore/index.js';
import { DEFAULT_RUN_DIR, parseNodeConfig } from './config.js';
import { autodetect, locateAddress, summarize } from './autodetect.js';
import { NodeAgent, type SpeakerLike } from './agent.js';
import { kubernetesCore, secretAccessFrom, secretSettings } from './secrets.js';
import type { NodeBgpListeners } from './bgp-listen.js';
import { SESSION_TIMERS } from './bgp-config.js';
import { podGcOwners, type GcOwnerSource } from './ipam-gc.js';
import { kernelRestartState } from './graceful.js';
import { parseCniTokenConfig } from './cni-token.js';


async function hostMtu(iface: string | undefined): Promise<number> {
  if (!iface) return 1500;
  const { Netlink } = await import('../netlink/index.js');
  const nl = Netlink.open();
  try {
    return (await nl.linkByName(iface)).mtu ?? 1500;
  } catch {
    return 1500;
  } finally {
    nl.close();
  }
}

/**
 * The CNI server with a datastore pool (seeded with the agent's connection). A server that cannot
 * start is logged, not fatal: the `tabby` shim then runs the Node plugin for every call.
 */
async function cniServer(o: { runDir: string; log: Logger; seed?: { cfg: DatastoreConfig; ds: Datastore } }): Promise<{ close(): Promise<void> }> {
  const [{ startCniServer }, { DatastorePool }] = await Promise.all([import('./cni-server.js'), import('./datastore-pool.js')]);
  const pool = new DatastorePool((c) => openDatastore(c, { logger: o.log }), o.log);
  if (o.seed) pool.seed(o.seed.cfg, o.seed.ds);
  try {
    const srv = await startCniServer({ runDir: o.runDir, log: o.log, datastores: pool });
    return { close: () => srv.close().then(() => pool.close()) };
  } catch (err) {
    o.log.error({ err: errorMessage(err), runDir: o.runDir }, 'cannot start the CNI server; CNI calls run the Node plugin');
    return { close: () => pool.close() };
  }
}

/** `tabby-node cni-server`: only the CNI server (TABBY_RUN_DIR, LOG_LEVEL), until SIGTERM/SIGINT. */
async function runCniServerOnly(env: NodeJS.ProcessEnv): Promise<void> {
  const log = createLineLogger({ name: 'tabby-node', level: env.LOG_LEVEL ?? 'info' });
  const srv = await cniServer({ runDir: env.TABBY_RUN_DIR || DEFAULT_RUN_DIR, log });
  const stop = (): void => {
    void srv.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

export async function runNode(env: NodeJS.ProcessEnv = process.env): Promise<NodeAgent> {
  const cfg = parseNodeConfig(env);
  const log = createLineLogger({ name: 'tabby-node', level: env.LOG_LEVEL ?? cfg.felix.logSeverityScreen });
  log.info({ node: cfg.nodeName, datastore: cfg.datastore.type, runDir: cfg.runDir, libDir: cfg.libDir }, 'tabby-node starting');
  const ds = await openDatastore(cfg.datastore, { logger: log });

  const [{ BgpSpeaker }, { SessionTransports }, { openBgpListeners, openEarlyListeners, sessionLogger, speakerLogger }, { Dataplane }, { inputsFromResources, impliedNextHops }, { Ipam }] = await Promise.all([
    import('../bgp/speaker.js'),
    import('../bgp/speaker/session-transport.js'),
    import('./bgp-listen.js'),
    import('../felix/dataplane.js'),
    import('../felix/resources.js'),
    import('../ipam/ipam.js'),
  ]);
  const listeners: NodeBgpListeners[] = [];
  // Listen before the Node is registered, so peers that see it connect instead of being refused.
  let early = cfg.networkingBackend === 'bird' ? await openEarlyListeners(ds, 179, cfg.ip6.mode !== 'none', log) : undefined;
  const dropEarly = (): void => {
    void early?.close();
    early = undefined;
  };
  const speakerFactory = (sc: Parameters<NonNullable<ConstructorParameters<typeof NodeAgent>[1]['speaker']>>[0]): SpeakerLike => {
    const route: { to?: InstanceType<typeof SessionTransports> } = {};
    const accept = (s: net.Socket): void => (route.to ? route.to.incoming(s) : void s.destroy());
    const port = sc.listen?.port ?? 179;
    const held = early && early.port === port ? early : undefined;
    if (!held) dropEarly();
    early = undefined;
    const l = held ? held.listeners : openBgpListeners(accept, port, cfg.ip6.mode !== 'none', log);
    listeners.push(l);
    const ready = l.ready;
    const listener = l.options;
    const transports = new SessionTransports({ logger: sessionLogger(log), listener, ...SESSION_TIMERS });
    route.to = transports;
    const sp = new BgpSpeaker(sc as ConstructorParameters<typeof BgpSpeaker>[0], { transport: transports.factory, logger: speakerLogger(log) });
    sp.on('warning', (w) => log.warn(w, w.message));
    const start = sp.start.bind(sp);
    return Object.assign(sp, {
      start: async () => {
        await ready;
        await start();
        // The peers are registered (with their MD5 keys on the listener): held connections go to them.
        held?.deliver(accept, sc.peers);
      },
    }) as unknown as SpeakerLike;
  };

  // Kubernetes: pods are the owners of workload addresses (a pod deleted without a CNI DEL leaves its WorkloadEndpoint).
  let ipamGcOwners: GcOwnerSource | undefined;
  if (cfg.ipamGc?.enabled && cfg.datastore.type === 'kubernetes') {
    const { kubernetesPodLister } = await import('./ipam-gc-k8s.js');
    ipamGcOwners = podGcOwners(ds, await kubernetesPodLister(cfg.datastore.kubeconfig));
  }

  // Secrets (BGP passwords) and Services/Endpoints (per-service advertisement) from the core API.
  const core = await kubernetesCore(env, ds);
  const agent = new NodeAgent(cfg, {
    secrets: secretAccessFrom(env, core),
    ...(core.reader ? { services: { source: core.reader, refreshMs: secretSettings(env).refreshMs } } : {}),
    ...(ipamGcOwners ? { ipamGcOwners } : {}),
    ds,
    log,
    detect: async () => {
      const d = await autodetect(cfg.autodetect);
      log.info({ considered: d.explanation }, `IP autodetection: ${summarize(d)}`);
      return d;
    },
    detect6: async () => {
      const d = await autodetect(cfg.autodetect6, 6);
      log.info({ considered: d.explanation }, `IPv6 autodetection: ${summarize(d)}`);
      return d;
    },
    locate: locateAddress,
    hostMtu,
    ipam: new Ipam({ datastore: ds, log }),
    speaker: speakerFactory,
    restartState: () => kernelRestartState(log),
    dataplane: () => {
      const dc: Parameters<typeof Dataplane.open>[0] = { libDir: cfg.libDir, routeRefreshIntervalMs: cfg.felix.routeRefreshIntervalSec * 1000, ipv6: cfg.felix.ipv6Support, log };
      if (cfg.felix.ipipMTU !== undefined) dc.ipipMTU = cfg.felix.ipipMTU;
      if (cfg.felix.vxlanMTU !== undefined) dc.vxlanMTU = cfg.felix.vxlanMTU;
      if (cfg.felix.vxlanMTUV6 !== undefined) dc.vxlanMTUV6 = cfg.felix.vxlanMTUV6;
      const dp = Dataplane.open(dc);
      return { start: () => dp.start(), stop: () => dp.stop(), update: (i) => dp.update(i as Parameters<typeof dp.update>[0]) };
    },
    dataplaneInputs: (v) => inputsFromResources(v),
    impliedNextHops: (v) => impliedNextHops(v),
    // BGP not run after all (disabled, no address): the early listeners go.
    onFirstPlan: (speakerStarted) => void (speakerStarted || dropEarly()),
    ...(cfg.cniServer ? { cniServer: () => cniServer({ runDir: cfg.runDir, log, seed: { cfg: cfg.datastore, ds } }) } : {}),
  });
  await agent.start();
  // CALICO_MANAGE_CNI: keep the CNI kubeconfig's token fresh (node/cni-token-k8s.ts); undefined when off.
  // The Kubernetes edge (client, yaml) is imported only when enabled: ≈ 40 ms of module loading otherwise.
  const cniToken = parseCniTokenConfig(env).enabled ? await (await import('./cni-token-k8s.js')).startCniTokenRefresher(env, log) : undefined;
  const cpu = process.cpuUsage();
  // CPU used to get here: every agent of a mesh pays it before any BGP work (bench/mesh-scale.ts reads it).
  log.info({ startupCpuMs: Math.round((cpu.user + cpu.system) / 1000) }, 'tabby-node started');
  // For bin/tabby-node: the start's builtin modules are loaded, so it may now change V8 flags (it raises
  // the interrupt budget) and it writes its code cache a little later.
  (process as EventEmitter).emit('tabby:started');
  let stopping = false;
  const stop = (sig: string): void => {
    if (stopping) return;
    stopping = true;
    const used = process.cpuUsage();
    log.info({ signal: sig, cpuMs: Math.round((used.user + used.system) / 1000), ...agent.counts }, 'stopping (kernel routes are kept)');
    void agent
      .stop()
      .then(() => cniToken?.stop())
      .then(() => Promise.all([...listeners.map((l) => l.close()), early?.close()]))
      .then(() => ds.close())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err: errorMessage(err) }, 'error while stopping');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  return agent;
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === 'install-cni') {
    const { runInstallCni } = await import('./install-cni-main.js');
    process.exit(await runInstallCni(argv.slice(1)));
  }
  if (argv[0] === 'cni-server') {
    await runCniServerOnly(process.env);
    return;
  }
  if (argv[0] === '--help' || argv[0] === '-h') {
    process.stdout.write(
      'usage: tabby-node            run the node agent (configured by calico-node environment variables)\n       tabby-node install-cni install the CNI plugin and its config\n       tabby-node cni-server  only the CNI server for the tabby shim (<TABBY_RUN_DIR>/cni.sock)\n',
    );
    return;
  }
  try {
    await runNode();
  } catch (err) {
    process.stderr.write(`tabby-node: ${errorMessage(err)}\n`);
    process.exit(err instanceof TabbyError ? 2 : 1);
  }
}

void main(process.argv.slice(2));
