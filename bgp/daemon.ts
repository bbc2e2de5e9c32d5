/**
 * tabby-bgp: the speaker as a standalone daemon.
 *
 *   config file ──loadConfig──► BgpSpeaker ◄── SessionTransports ◄── BgpListener (TCP 179, MD5 keys)
 *                                   │
 *                                   ├─► NetlinkFibSink (fib.install)
 *                                   └─► status socket (tabbyctl bgp status / routes)
 *
 * SIGHUP reloads the file and applies the difference without restarting: unchanged peers keep
 * their sessions, and listen address/port, fib and statusSocket change live (see bgp/README.md);
 * SIGTERM/SIGINT close every session with Cease (administrative shutdown) and exit. Kernel routes
 * are left in place on exit; the next start finds them, announces the GR F bit and defers
 * advertisements until peers sent End-of-RIB (bounded), then removes what is no longer wanted.
 */
import type net from 'node:net';
import { createLogger, type Logger } from '../lib/log.js';
import { errorMessage } from '../lib/errors.js';
import { BgpListener } from './net/index.js';
import { BgpSpeaker } from './speaker.js';
import { SessionTransports } from './speaker/session-transport.js';
import type { NetlinkFibSink } from './fib/netlink.js';
import { loadConfig, type DaemonConfig } from './daemon/config.js';
import type { SpeakerConfig } from './speaker/config.js';
import { serveStatusSocket } from './daemon/status-socket.js';

export interface DaemonOptions {
  configFile: string;
  logger?: Logger;
  /** Install SIGHUP/SIGTERM handlers (default true). */
  signals?: boolean;
  /** Network namespace of the kernel routing table (tests); default: ours. */
  fibNetns?: string;
}

export interface RunningDaemon {
  speaker: BgpSpeaker;
  /** The configuration in effect (after the last successful reload). */
  readonly config: DaemonConfig;
  /** Listening address (port 0 in the file = not listening). */
  readonly listening: { address: string; port: number } | undefined;
  reload(): Promise<void>;
  shutdown(message?: string): Promise<void>;
}

type Listen = { address?: string; port: number } | undefined;

const sameJson = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

export async function runDaemon(opts: DaemonOptions): Promise<RunningDaemon> {
  const log = opts.logger ?? createLogger({ name: 'tabby-bgp' });
  let config = await loadConfig(opts.configFile);
  const speakerCfg = { ...config.speaker };

  // The netlink library (and koffi under it) loads only when kernel installation is on.
  const newFib = async (f: DaemonConfig['fib']): Promise<NetlinkFibSink | undefined> => {
    if (!f.install) return undefined;
    const { NetlinkFibSink } = await import('./fib/netlink.js');
    const fo: ConstructorParameters<typeof NetlinkFibSink>[0] = { protocol: f.protocol };
    if (f.table !== undefined) fo.table = f.table;
    if (f.metric !== undefined) fo.metric = f.metric;
    if (opts.fibNetns !== undefined) fo.netns = opts.fibNetns;
    return new NetlinkFibSink(fo);
  };
  let fib = await newFib(config.fib);
  if (fib) {
    const kept = await fib.list();
    if (kept.length > 0 && speakerCfg.gracefulRestart?.restarting === undefined) {
      // Our routes survived a restart: we are the restarting side of graceful restart.
      log.info({ routes: kept.length }, 'kernel routes kept from a previous run: restarting with graceful restart');
      speakerCfg.gracefulRestart = { ...speakerCfg.gracefulRestart, restarting: true };
    }
  }

  // The listener hands connections to the transports, which put peers' MD5 keys on the listener.
  const transports = new SessionTransports({ logger: log });
  let listener: BgpListener | undefined;
  let listening: RunningDaemon['listening'];
  /** Listen as configured (port 0: not at all); on failure nothing listens and the error is thrown. */
  const listen = async (l: Listen): Promise<void> => {
    const port = l?.port ?? 179;
    listener = undefined;
    listening = undefined;
    transports.setListener(undefined);
    if (port === 0) return;
    const next = new BgpListener((s: net.Socket) => transports.incoming(s));
    listening = await next.listen(l?.address ?? '::', port);
    listener = next;
    transports.setListener(next);
    log.info(listening, 'listening for BGP connections');
  };
  await listen(config.speaker.listen);

  // Routes no filter gave a priority have the FIB's metric, when one is configured.
  const withPriority = (sc: SpeakerConfig, f: DaemonConfig['fib']): SpeakerConfig => (sc.routePriority === undefined && f.metric !== undefined ? { ...sc, routePriority: f.metric } : sc);
  const speaker = new BgpSpeaker(withPriority(speakerCfg, config.fib), { transport: transports.factory, logger: log, ...(fib ? { fib } : {}) });
  speaker.on('warning', (w) => log.warn(w, w.message));
  await speaker.start();

  let status = config.statusSocket ? await serveStatusSocket(config.statusSocket, speaker) : undefined;

  /** listen: stop accepting on the old socket (its sessions go on), accept on the new one. */
  const applyListen = async (prev: Listen, next: Listen): Promise<Listen> => {
    if (sameJson(prev, next)) return next;
    const old = listener;
    // The listening socket closes at once; connections it accepted stay up.
    void old?.close();
    try {
      await listen(next);
      return next;
    } catch (err) {
      log.error({ err: errorMessage(err), listen: next }, 'cannot listen on the new address; keeping the old one');
      await listen(prev).catch((e: unknown) => log.error({ err: errorMessage(e) }, 'cannot listen on the old address either: not listening'));
      return prev;
    }
  };

  /** fib: new sink gets the Loc-RIB, the old one's routes are removed. */
  const applyFib = async (prev: DaemonConfig['fib'], next: DaemonConfig['fib']): Promise<void> => {
    if (sameJson(prev, next)) return;
    const old = fib;
    fib = await newFib(next);
    // Same protocol and table: the old routes are only told apart by metric, so they go first.
    const apart = prev.protocol !== next.protocol || prev.table !== next.table;
    await speaker.setFib(fib, apart ? 'install-first' : 'remove-first');
    old?.close();
    log.info({ fib: next }, next.install ? 'kernel installation (re)configured' : 'kernel installation off: our routes removed');
  };

  const applyStatusSocket = async (prev: string | undefined, next: string | undefined): Promise<void> => {
    if (prev === next) return;
    await status?.close();
    status = undefined;
    if (next) status = await serveStatusSocket(next, speaker);
  };

  let closing = false;
  const reload = async (): Promise<void> => {
    let next: DaemonConfig;
    try {
      next = await loadConfig(opts.configFile);
    } catch (err) {
      log.error({ err: errorMessage(err) }, 'reload failed; keeping the running configuration');
      return;
    }
    try {
      const listenNow = await applyListen(config.speaker.listen, next.speaker.listen);
      await applyStatusSocket(config.statusSocket, next.statusSocket);
      await applyFib(config.fib, next.fib);
      const sc = withPriority({ ...next.speaker, ...(speakerCfg.gracefulRestart ? { gracefulRestart: speakerCfg.gracefulRestart } : {}) }, next.fib);
      if (listenNow) sc.listen = listenNow;
      else delete sc.listen;
      await speaker.setConfig(sc);
      config = { ...next, speaker: { ...next.speaker, ...(listenNow ? { listen: listenNow } : {}) } };
      log.info({ peers: next.speaker.peers.length }, 'configuration reloaded');
    } catch (err) {
      log.error({ err: errorMessage(err) }, 'reload partly failed; see the errors above');
    }
  };
  const shutdown = async (message = 'shutting down'): Promise<void> => {
    if (closing) return;
    closing = true;
    log.info('closing sessions (Cease, administrative shutdown)');
    await speaker.stop(message);
    // Give the NOTIFICATIONs a moment to leave before the sockets are torn down.
    await new Promise((r) => setTimeout(r, 200));
    await listener?.close();
    await status?.close();
    fib?.close();
  };
  if (opts.signals !== false) {
    process.on('SIGHUP', () => void reload());
    const stop = (): void => {
      void shutdown().then(() => process.exit(0));
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  }
  return {
    speaker,
    get config() {
      return config;
    },
    get listening() {
      return listening;
    },
    reload,
    shutdown,
  };
}
