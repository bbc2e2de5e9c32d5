/**
 * tabby-node: the per-node agent (`tabby-node`), plus `tabby-node install-cni` (the deploy helper's
 * installer, once merged). SIGTERM/SIGINT stop cleanly and keep kernel routes.
 */
import type net from 'node:net';
import { createLogger } from '../lib/log.js';
import { errorMessage, TabbyError } from '../lib/errors.js';
import { openDatastore } from '../datastore/index.js';
import { parseNodeConfig } from './config.js';
import { autodetect, summarize } from './autodetect.js';
import { NodeAgent, type SpeakerLike } from './agent.js';

/**
 * Connect retry for every session (seconds). RFC 4271's default is 120 s, Calico's BIRD template
 * uses 5 s. At mesh start a peer whose Node resource is already registered is often not listening
 * yet and refuses; each refusal costs one retry interval (with 120 s sessions stayed down for two
 * minutes). A refused SYN is cheap, so tabby-node retries after 2 s (bench/mesh-scale.ts: 5 nodes
 * all Established ≈ 3 s instead of ≈ 6.5 s). The connect timeout is capped at 80 % of it (1.6 s);
 * bgp/net decides a timeout only after polling I/O, so a stalled event loop does not fail connects.
 */
export const CONNECT_RETRY_SECONDS = 2;

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

export async function runNode(env: NodeJS.ProcessEnv = process.env): Promise<NodeAgent> {
  const cfg = parseNodeConfig(env);
  const log = createLogger({ name: 'tabby-node', level: env.LOG_LEVEL ?? cfg.felix.logSeverityScreen });
  log.info({ node: cfg.nodeName, datastore: cfg.datastore.type, runDir: cfg.runDir, libDir: cfg.libDir }, 'tabby-node starting');
  const ds = await openDatastore(cfg.datastore, { logger: log });

  const [{ BgpSpeaker }, { SessionTransports }, { BgpListener }, { Dataplane }, { inputsFromResources }, { Ipam }] = await Promise.all([
    import('../bgp/speaker.js'),
    import('../bgp/speaker/session-transport.js'),
    import('../bgp/net/index.js'),
    import('../felix/dataplane.js'),
    import('../felix/resources.js'),
    import('../ipam/ipam.js'),
  ]);
  let listener: InstanceType<typeof BgpListener> | undefined;
  const speakerFactory = (sc: Parameters<NonNullable<ConstructorParameters<typeof NodeAgent>[1]['speaker']>>[0]): SpeakerLike => {
    const route: { to?: InstanceType<typeof SessionTransports> } = {};
    listener = new BgpListener((s: net.Socket) => (route.to ? route.to.incoming(s) : s.destroy()));
    const port = sc.listen?.port ?? 179;
    const ready = listener.listen('0.0.0.0', port).then(
      (l) => log.info(l, 'listening for BGP connections'),
      (err: unknown) => log.error({ err: errorMessage(err), port }, 'cannot listen for BGP; outgoing sessions only'),
    );
    const transports = new SessionTransports({ logger: log, listener, connectRetryTime: CONNECT_RETRY_SECONDS });
    route.to = transports;
    const sp = new BgpSpeaker(sc as ConstructorParameters<typeof BgpSpeaker>[0], { transport: transports.factory, logger: log });
    sp.on('warning', (w) => log.warn(w, w.message));
    const start = sp.start.bind(sp);
    return Object.assign(sp, {
      start: async () => {
        await ready;
        await start();
      },
    }) as unknown as SpeakerLike;
  };

  const agent = new NodeAgent(cfg, {
    ds,
    log,
    detect: async () => {
      const d = await autodetect(cfg.autodetect);
      log.info({ considered: d.explanation }, `IP autodetection: ${summarize(d)}`);
      return d;
    },
    hostMtu,
    ipam: new Ipam({ datastore: ds, log }),
    speaker: speakerFactory,
    dataplane: () => {
      const dc: Parameters<typeof Dataplane.open>[0] = { libDir: cfg.libDir, routeRefreshIntervalMs: cfg.felix.routeRefreshIntervalSec * 1000, log };
      if (cfg.felix.ipipMTU !== undefined) dc.ipipMTU = cfg.felix.ipipMTU;
      if (cfg.felix.vxlanMTU !== undefined) dc.vxlanMTU = cfg.felix.vxlanMTU;
      const dp = Dataplane.open(dc);
      return { start: () => dp.start(), stop: () => dp.stop(), update: (i) => dp.update(i as Parameters<typeof dp.update>[0]) };
    },
    dataplaneInputs: (v) => inputsFromResources(v),
  });
  await agent.start();
  log.info('tabby-node started');
  let stopping = false;
  const stop = (sig: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal: sig }, 'stopping (kernel routes are kept)');
    void agent
      .stop()
      .then(() => listener?.close())
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
  if (argv[0] === '--help' || argv[0] === '-h') {
    process.stdout.write('usage: tabby-node            run the node agent (configured by calico-node environment variables)\n       tabby-node install-cni install the CNI plugin and its config\n');
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
