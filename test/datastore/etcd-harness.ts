/**
 * Test helpers for a real etcd (Debian etcd-server): start one on a free loopback port with a temp
 * data dir, restart it on the same data, stop it and remove the dir. Plus a TCP proxy that tests can
 * cut to simulate a lost connection while etcd itself keeps running.
 *
 *   const etcd = await startEtcd();            // skip first: etcdMissing() returns a reason or undefined
 *   t.after(() => etcd.stop());
 *   const ds = new EtcdDatastore({ endpoints: [etcd.endpoint] });
 *
 * Ports: client 23790-23799 and peer 23800-23809 by default (the datastore helper's range); other
 * suites pass their own ranges.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needCommand } from '../lib/skip.js';

export interface EtcdHarnessOptions {
  /** Inclusive client port range to pick a free port from (default 23790-23799). */
  clientPorts?: [number, number];
  /** Inclusive peer port range (default 23800-23809). */
  peerPorts?: [number, number];
  /** Bound for etcd to become healthy (default 20 s). */
  startTimeoutMs?: number;
  /**
   * Serve clients over TLS (https endpoint) and require client certificates signed by `caFile`.
   * `certFile`/`keyFile` are the server's (they must carry serverAuth and clientAuth: etcd 3.4's JSON
   * gateway dials etcd's own gRPC port with them); the health check presents them too.
   */
  tls?: { caFile: string; certFile: string; keyFile: string };
  /** More etcd flags (e.g. `--auth-token-ttl 1`). */
  extraArgs?: string[];
}

export interface EtcdHarness {
  endpoint: string;
  clientPort: number;
  dataDir: string;
  /** Stop (SIGTERM, then SIGKILL) without removing the data dir. */
  kill(): Promise<void>;
  /** Start again on the same ports and data (after kill()). */
  start(): Promise<void>;
  restart(): Promise<void>;
  /** Kill and remove the data dir. Safe to call twice. */
  stop(): Promise<void>;
}

/** Reason to skip when etcd is not installed, else undefined. */
export function etcdMissing(): string | undefined {
  return needCommand('etcd', 'etcd-server');
}

/**
 * `TABBY_TEST_PORTS=lo-hi` moves every port range these helpers are given into [lo, hi] (etcd peer
 * ports into [lo+100, hi+100]), so that one test run can share the machine with others using the
 * defaults. A range keeps its place within its ten (23797-23799 → lo+7…lo+9), so test files that
 * split a ten between them still do.
 */
function portRange(lo: number, hi: number, peer = false): [number, number] {
  const m = /^(\d+)-(\d+)$/.exec(process.env.TABBY_TEST_PORTS ?? '');
  if (!m) return [lo, hi];
  const d = peer ? 100 : 0;
  const [L, H] = [Number(m[1]) + d, Number(m[2]) + d];
  if (hi - lo >= H - L) return [L, H];
  const start = Math.min(L + (lo % 10), H - (hi - lo));
  return [start, start + (hi - lo)];
}

/** A free TCP port on 127.0.0.1 within [lo, hi] (moved by TABBY_TEST_PORTS), or an error naming the range. */
export async function freePort(lo: number, hi: number, exclude: number[] = []): Promise<number> {
  return scanPort(...portRange(lo, hi), exclude);
}

async function scanPort(lo: number, hi: number, exclude: number[] = []): Promise<number> {
  for (let p = lo; p <= hi; p++) {
    if (exclude.includes(p)) continue;
    const ok = await new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(p, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (ok) return p;
  }
  throw new Error(`no free port in 127.0.0.1:${lo}-${hi}`);
}

/** GET <endpoint>/health with node:https (client certificate + CA) when `tls` is given, else fetch. */
async function health(endpoint: string, tls: EtcdHarnessOptions['tls']): Promise<{ health?: string }> {
  if (!tls) {
    const res = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1000) });
    return (await res.json()) as { health?: string };
  }
  const opts = { ca: readFileSync(tls.caFile), cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile), timeout: 1000 };
  return new Promise((resolve, reject) => {
    const req = https.get(`${endpoint}/health`, opts, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => {
        try {
          resolve(JSON.parse(text) as { health?: string });
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

async function waitHealthy(endpoint: string, proc: ChildProcess, limitMs: number, stderr: () => string, tls?: EtcdHarnessOptions['tls']): Promise<void> {
  const end = Date.now() + limitMs;
  while (Date.now() < end) {
    if (proc.exitCode !== null) throw new Error(`etcd exited with ${proc.exitCode}: ${stderr()}`);
    try {
      const body = await health(endpoint, tls);
      if (body.health === 'true') return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`etcd at ${endpoint} not healthy within ${limitMs} ms: ${stderr()}`);
}

export async function startEtcd(opts: EtcdHarnessOptions = {}): Promise<EtcdHarness> {
  const [clo, chi] = opts.clientPorts ?? [23790, 23799];
  const [plo, phi] = portRange(...(opts.peerPorts ?? [23800, 23809]), true);
  const limit = opts.startTimeoutMs ?? 20000;
  const dataDir = await mkdtemp(join(tmpdir(), 'tabby-etcd-'));
  const clientPort = await freePort(clo, chi);
  const peerPort = await scanPort(plo, phi, [clientPort]);
  const endpoint = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const args = [
    '--name', 'tabby-test',
    '--data-dir', dataDir,
    '--listen-client-urls', endpoint,
    '--advertise-client-urls', endpoint,
    '--listen-peer-urls', peer,
    '--initial-advertise-peer-urls', peer,
    '--initial-cluster', `tabby-test=${peer}`,
    '--logger', 'zap',
    '--log-level', 'error',
    ...(opts.tls ? ['--cert-file', opts.tls.certFile, '--key-file', opts.tls.keyFile, '--trusted-ca-file', opts.tls.caFile, '--client-cert-auth'] : []),
    ...(opts.extraArgs ?? []),
  ];
  let proc: ChildProcess | undefined;
  let errText = '';
  const launch = async (): Promise<void> => {
    errText = '';
    const env = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith('ETCD_')) delete env[k];
    const p = spawn('etcd', args, { stdio: ['ignore', 'ignore', 'pipe'], env });
    proc = p;
    // If the test process dies without cleanup, do not leave etcd behind.
    const onExit = (): void => {
      p.kill('SIGKILL');
    };
    process.once('exit', onExit);
    p.once('exit', () => process.removeListener('exit', onExit));
    p.stderr?.on('data', (d: Buffer) => {
      errText = (errText + d.toString()).slice(-2000);
    });
    try {
      await waitHealthy(endpoint, p, limit, () => errText, opts.tls);
    } catch (err) {
      await killProc();
      throw err;
    }
  };
  const killProc = async (): Promise<void> => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  };
  let removed = false;
  try {
    await launch();
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  return {
    endpoint,
    clientPort,
    dataDir,
    kill: killProc,
    start: launch,
    restart: async () => {
      await killProc();
      await launch();
    },
    stop: async () => {
      await killProc();
      if (!removed) {
        removed = true;
        await rm(dataDir, { recursive: true, force: true });
      }
    },
  };
}

export interface TcpProxy {
  port: number;
  endpoint: string;
  /** Drop every connection and refuse new ones until restore(). */
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

/** A loopback TCP proxy to 127.0.0.1:targetPort on a free port in [lo, hi] (default 23790-23799). */
export async function startTcpProxy(targetPort: number, range: [number, number] = [23790, 23799]): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let isCut = false;
  const server = net.createServer((client) => {
    if (isCut) {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  const port = await freePort(range[0], range[1]);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    cut() {
      isCut = true;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    restore() {
      isCut = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        isCut = true;
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
