/**
 * tabby-bgp: the speaker as a standalone daemon.
 *
 *   config file ──loadConfig──► BgpSpeaker ◄── SessionTransports ◄── BgpListener (TCP 179, MD5 keys)
 *                                   │
 *                                   ├─► NetlinkFibSink (fib.install)
 *                                   └─► status socket (tabbyctl bgp status / routes)
 *
 * SIGHUP reloads the file and applies the difference (unchanged peers keep their sessions);
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
import { NetlinkFibSink } from './fib/netlink.js';
import { loadConfig, type DaemonConfig } from './daemon/config.js';
import { serveStatusSocket } from './daemon/status-socket.js';

export interface DaemonOptions {
  configFile: string;
  logger?: Logger;
  /** Install SIGHUP/SIGTERM handlers (default true). */
  signals?: boolean;
}

export interface RunningDaemon {
  speaker: BgpSpeaker;
  config: DaemonConfig;
  /** Listening address (port 0 in the file = not listening). */
  listening: { address: string; port: number } | undefined;
  reload(): Promise<void>;
  shutdown(message?: string): Promise<void>;
}

export async function runDaemon(opts: DaemonOptions): Promise<RunningDaemon> {
  const log = opts.logger ?? createLogger({ name: 'tabby-bgp' });
  let config = await loadConfig(opts.configFile);
  const speakerCfg = { ...config.speaker };

  let fib: NetlinkFibSink | undefined;
  if (config.fib.install) {
    const fo: ConstructorParameters<typeof NetlinkFibSink>[0] = { protocol: config.fib.protocol };
    if (config.fib.table !== undefined) fo.table = config.fib.table;
    if (config.fib.metric !== undefined) fo.metric = config.fib.metric;
    fib = new NetlinkFibSink(fo);
    const kept = await fib.list();
    if (kept.length > 0 && speakerCfg.gracefulRestart?.restarting === undefined) {
      // Our routes survived a restart: we are the restarting side of graceful restart.
      log.info({ routes: kept.length }, 'kernel routes kept from a previous run: restarting with graceful restart');
      speakerCfg.gracefulRestart = { ...speakerCfg.gracefulRestart, restarting: true };
    }
  }

  // The listener hands connections to the transports, which need the listener for MD5 keys.
  const route: { to?: SessionTransports } = {};
  let listener: BgpListener | undefined;
  let listening: RunningDaemon['listening'];
  const port = config.speaker.listen?.port ?? 179;
  if (port > 0) {
    listener = new BgpListener((s: net.Socket) => (route.to ? route.to.incoming(s) : s.destroy()));
    const address = config.speaker.listen?.address ?? '::';
    listening = await listener.listen(address, port);
    log.info(listening, 'listening for BGP connections');
  }
  const to: ConstructorParameters<typeof SessionTransports>[0] = { logger: log };
  if (listener) to.listener = listener;
  const transports = new SessionTransports(to);
  route.to = transports;

  const speaker = new BgpSpeaker(speakerCfg, { transport: transports.factory, logger: log, ...(fib ? { fib } : {}) });
  speaker.on('warning', (w) => log.warn(w, w.message));
  await speaker.start();

  const status = config.statusSocket ? await serveStatusSocket(config.statusSocket, speaker) : undefined;

  let closing = false;
  const reload = async (): Promise<void> => {
    try {
      const next = await loadConfig(opts.configFile);
      if (JSON.stringify(next.speaker.listen) !== JSON.stringify(config.speaker.listen) || next.statusSocket !== config.statusSocket || JSON.stringify(next.fib) !== JSON.stringify(config.fib)) {
        log.warn('listen, statusSocket and fib changes need a restart; applying the rest');
      }
      await speaker.setConfig({ ...next.speaker, listen: config.speaker.listen ?? { port }, ...(speakerCfg.gracefulRestart ? { gracefulRestart: speakerCfg.gracefulRestart } : {}) });
      config = { ...next, speaker: next.speaker };
      log.info({ peers: next.speaker.peers.length }, 'configuration reloaded');
    } catch (err) {
      log.error({ err: errorMessage(err) }, 'reload failed; keeping the running configuration');
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
  return { speaker, config, listening, reload, shutdown };
}
