/**
 * tabby-node's CNI server: `<run_dir>/cni.sock` (mode 0600, root only) answers the `tabby` shim
 * (cni/shim/) with the same handlers the Node plugin runs (`runCni(tabbyHandlers(...))`), in this
 * process: no Node start per CNI call. Per request it uses the request's environment (never
 * process.env), one long-lived netlink handle in our namespace (pod-side sockets are bound into
 * CNI_NETNS per request), the shared datastore connections (DatastorePool) and exec'd delegates as
 * the plugin does. A request it cannot serve exactly as the runtime meant gets `fallback`
 * (cni/shim/decide.ts) and the shim runs the Node plugin.
 */
import { accessSync, constants, realpathSync, statSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { listenPrivate } from '../lib/private-socket.js';
import { createServer, type Server, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { configFromCniNetConf } from '../datastore/config.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { PodDataplane } from '../cni/plugin/dataplane.js';
import { execDelegateWith, runPlugin } from '../cni/plugin/exec.js';
import { fileLog } from '../cni/plugin/filelog.js';
import { tabbyHandlers } from '../cni/plugin/handlers.js';
import { ipamDelegate, ipamRunner } from '../cni/plugin/ipam-delegate.js';
import { mapPluginError } from '../cni/plugin/map-error.js';
import { CniCode, CniError } from '../cni/protocol/errors.js';
import { runCni } from '../cni/protocol/run.js';
import { LATEST_VERSION } from '../cni/protocol/version.js';
import { type FsProbe, fallbackReason } from '../cni/shim/decide.js';
import { CNI_SOCKET_NAME, MAX_REQUEST_BYTES, type ShimReply, type ShimRequest, ShimProtocolError, decodeRequest, encodeReply } from '../cni/shim/protocol.js';
import type { DatastorePool } from './datastore-pool.js';
import { posixSpawnRunner } from './posix-spawn.js';

export const DEFAULT_CNI_REQUEST_TIMEOUT_MS = 120_000;

export interface CniServerOptions {
  runDir: string;
  log: Logger;
  datastores: DatastorePool;
  /** Per request; on expiry the runtime gets error 11 (try again later). */
  timeoutMs?: number;
  /** How delegates are exec'd: posix_spawn (default, no fork of this process) or child_process ('node'). */
  spawn?: 'posix' | 'node';
  /** Test seams. */
  probe?: FsProbe;
  hostname?: string;
}

export interface CniServer {
  path: string;
  /** Requests answered so far, by outcome. */
  readonly counts: { served: number; fallback: number };
  close(): Promise<void>;
}

/** The real file system, as this process (its mount namespace) sees it. */
export const realProbe: FsProbe = {
  identity(path) {
    try {
      const st = statSync(path);
      return `${st.dev}:${st.ino}`;
    } catch {
      return undefined;
    }
  },
  exists(path) {
    try {
      statSync(path);
      return true;
    } catch {
      return false;
    }
  },
  findPlugin(type, dirs) {
    for (const d of dirs) {
      try {
        accessSync(join(d, type), constants.X_OK);
        return true;
      } catch {
        // next directory
      }
    }
    return false;
  },
};

function cniVersionOf(stdin: string): string {
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion;
    return typeof v === 'string' && v !== '' ? v : LATEST_VERSION;
  } catch {
    return LATEST_VERSION;
  }
}

/**
 * The pod dataplane for a request: netlink (per-call handles — a shared one would queue every request
 * behind a slow veth delete — sending from the libuv pool so the kernel's waits never block the event
 * loop), or iproute2 when the request asks for it (TABBY_CNI_DATAPLANE=iproute).
 */
function dataplanes(): (env: Record<string, string>) => Promise<PodDataplane> {
  let netlink: Promise<PodDataplane> | undefined;
  let iproute: Promise<PodDataplane> | undefined;
  return (env) => {
    if (env.TABBY_CNI_DATAPLANE === 'iproute') return (iproute ??= import('../cni/plugin/dataplane-ip.js').then((m) => new m.IprouteDataplane()));
    return (netlink ??= import('../cni/plugin/dataplane-netlink.js').then((dp) => new dp.NetlinkDataplane({ asyncSend: true })));
  };
}

/** Serve one decoded request: the reply the shim prints (or `fallback`). */
export function requestHandler(o: Pick<CniServerOptions, 'runDir' | 'log' | 'datastores' | 'timeoutMs' | 'probe' | 'hostname' | 'spawn'>, dataplane: (env: Record<string, string>) => Promise<PodDataplane>) {
  const probe = o.probe ?? realProbe;
  const host = o.hostname ?? hostname();
  const openForIpam = ipamRunner((cfg) => o.datastores.open(cfg.datastore));
  const exec = execDelegateWith(o.spawn === 'node' ? runPlugin : posixSpawnRunner);
  return async (req: ShimRequest): Promise<ShimReply> => {
    const reason = fallbackReason(req, o.runDir, probe);
    if (reason) return { kind: 'fallback', reason };
    const env = req.env;
    const self = req.meta.self;
    const ownBinDir = () => {
      try {
        return self ? dirname(realpathSync.native(self)) : undefined;
      } catch {
        return undefined;
      }
    };
    let stdout = '';
    const run = runCni(
      tabbyHandlers({
        dataplane: () => dataplane(env),
        delegate: ipamDelegate(exec, ownBinDir, openForIpam),
        openDatastore: async (conf) => o.datastores.open(configFromCniNetConf(conf, env)),
        logger: (cfg) => fileLog({ name: 'tabby', file: cfg.logFile, level: cfg.logLevel }),
        env,
        hostname: host,
      }),
      { env, stdin: () => Promise.resolve(req.stdin), stdout: (s) => (stdout += s + '\n'), mapError: mapPluginError },
    );
    const timeoutMs = o.timeoutMs ?? DEFAULT_CNI_REQUEST_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
    try {
      const code = await Promise.race([run, expired]);
      if (code === 'timeout') {
        o.log.error({ command: env.CNI_COMMAND, containerId: env.CNI_CONTAINERID, timeoutMs }, 'CNI request timed out (it may still complete)');
        const err = new CniError(CniCode.TryAgainLater, `tabby-node CNI server: ${env.CNI_COMMAND ?? 'request'} timed out after ${timeoutMs} ms`, 'the operation may still finish; the runtime retries');
        return { kind: 'result', code: 1, stdout: JSON.stringify(err.toJSON(cniVersionOf(req.stdin))) + '\n' };
      }
      return { kind: 'result', code, stdout };
    } finally {
      clearTimeout(timer);
    }
  };
}

/** Start serving `<runDir>/cni.sock` (a stale socket file is replaced). */
export async function startCniServer(o: CniServerOptions): Promise<CniServer> {
  const path = join(o.runDir, CNI_SOCKET_NAME);
  const handle = requestHandler(o, dataplanes());
  const counts = { served: 0, fallback: 0 };
  const open = new Set<Socket>();

  const onConnection = (sock: Socket): void => {
    open.add(sock);
    sock.on('close', () => open.delete(sock));
    sock.on('error', () => undefined);
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    sock.on('data', (b: Buffer) => {
      size += b.length;
      if (size > MAX_REQUEST_BYTES) tooBig = true;
      else chunks.push(b);
    });
    sock.on('end', () => {
      const t0 = performance.now();
      void (async (): Promise<ShimReply> => {
        if (tooBig) return { kind: 'fallback', reason: `request larger than ${MAX_REQUEST_BYTES} bytes` };
        let req: ShimRequest;
        try {
          req = decodeRequest(Buffer.concat(chunks));
        } catch (err) {
          if (err instanceof ShimProtocolError) return { kind: 'fallback', reason: err.message };
          throw err;
        }
        const reply = await handle(req);
        const ms = Math.round((performance.now() - t0) * 10) / 10;
        if (reply.kind === 'fallback') o.log.debug({ command: req.env.CNI_COMMAND, reason: reply.reason }, 'CNI request: fallback to the Node plugin');
        else o.log.debug({ command: req.env.CNI_COMMAND, containerId: req.env.CNI_CONTAINERID, code: reply.code, ms }, 'CNI request served');
        return reply;
      })()
        .catch((err: unknown): ShimReply => {
          // A bug in the server itself: the Node plugin still gives the runtime an answer.
          o.log.error({ err: errorMessage(err) }, 'CNI request failed inside the server');
          return { kind: 'fallback', reason: 'internal server error' };
        })
        .then((reply) => {
          if (reply.kind === 'fallback') counts.fallback++;
          else counts.served++;
          if (!sock.destroyed) sock.end(encodeReply(reply));
        });
    });
  };

  const srv: Server = createServer({ allowHalfOpen: true }, onConnection);
  await listenPrivate(srv, path);
  o.log.info({ path }, 'CNI server listening');
  return {
    path,
    counts,
    close: async () => {
      await unlink(path).catch(() => undefined);
      const closed = new Promise<void>((r) => srv.close(() => r()));
      for (const s of open) s.destroy();
      await closed;
    },
  };
}
