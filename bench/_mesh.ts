/**
 * Shared harness of the tabby-node benchmarks (bench/node-convergence.ts, bench/mesh-scale.ts):
 * a fabric namespace with one bridge, etcd inside it, N node namespaces each with one veth onto the
 * bridge and the real `bin/tabby-node` (the esbuild bundle), and a netlink route subscription in
 * every node namespace so the bench sees each kernel route the moment it is installed.
 *
 * Layout (prefix `tnb-`, addresses that exist only inside these namespaces and on one root link):
 *   tnb-fab     bridge br0 172.29.0.2/16; etcd on 172.29.0.2:23920 (peer port 23921 on its loopback)
 *   tnb-n<i>    eth0 172.29.<1 + i>>8>.<i & 255>/16, tabby-node NODENAME=nb-<i>, BGP full mesh, AS 64512
 *   root ns     tnb-host 172.29.0.254/16 (peer on br0), so this process reaches etcd
 *   pool        10.250.0.0/16, /26 blocks, no encapsulation
 *
 * Cleanup: `Mesh.destroy()` (also run on SIGINT/SIGTERM and uncaught errors) stops every agent it
 * started, then kills whatever still lives in a `tnb-` namespace, deletes those namespaces, the root
 * link and the temp dir. `sweep()` does the namespace/link part at start too, so a run after a
 * crash begins clean.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { getPriority, setPriority, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Datastore } from '../datastore/types.js';
import { Netlink, type NetlinkEvent, type Subscription } from '../netlink/index.js';
import { readStatus } from '../node/status.js';

export const PREFIX = 'tnb-';
export const FABRIC = `${PREFIX}fab`;
const HOST_LINK = `${PREFIX}host`;
const ETCD_IP = '172.29.0.2';
const ETCD_PORT = 23920;
const ETCD_PEER_PORT = 23921;
export const ETCD_ENDPOINT = `http://${ETCD_IP}:${ETCD_PORT}`;
export const POOL_CIDR = '10.250.0.0/16';
export const OBSERVER_IP = '172.29.0.254';
export const OBSERVER_PORT = 23923;
export const BLOCK_SIZE = 26;
const HEALTH_PORT = 23922;
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
/** BENCH_TABBY_ROOT: run another checkout's built tabby-node (a before/after comparison in one harness). */
const agentRoot = process.env.BENCH_TABBY_ROOT ?? root;
const BIN = join(agentRoot, 'bin', 'tabby-node');

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

export function run(cmd: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: opts.timeoutMs ?? 30000, encoding: 'utf8', maxBuffer: 8 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}
const tryRun = (cmd: string, args: string[]): Promise<string | undefined> => run(cmd, args).catch(() => undefined);

/** Run `fn` over `items` with at most `limit` in flight. */
export async function pool<T>(items: T[], limit: number, fn: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

export function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}

export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

export interface MeshNode {
  index: number;
  name: string;
  ns: string;
  ip: string;
  dir: string;
  log: string;
  child?: ChildProcess;
  pid?: number;
  /** Kernel IPv4 unicast routes seen in this namespace: dst → time first seen (ms, nowMs clock). */
  routes: Map<string, number>;
  sub?: Subscription;
  nl?: Netlink;
}

export function nodeIp(i: number): string {
  return `172.29.${1 + (i >> 8)}.${i & 255}`;
}

/** The /26 block number k of the pool (k < 1024). */
export function blockCidr(k: number): string {
  return `10.250.${k >> 2}.${(k & 3) * 64}/${BLOCK_SIZE}`;
}

async function nsPids(ns: string): Promise<number[]> {
  const out = await tryRun('ip', ['netns', 'pids', ns]);
  return (out ?? '').split(/\s+/).filter(Boolean).map(Number).filter((n) => n > 1 && n !== process.pid);
}

/**
 * Remove every `tnb-` namespace (killing the processes inside first) and the root link; another
 * benchmark's layout passes its own prefix (and root link, if it has one).
 */
export async function sweep(prefix = PREFIX, hostLink: string | undefined = HOST_LINK): Promise<void> {
  let names: string[] = [];
  try {
    names = readdirSync('/var/run/netns').filter((n) => n.startsWith(prefix));
  } catch {
    // no namespaces at all
  }
  for (const ns of names) for (const pid of await nsPids(ns)) tryKill(pid, 'SIGKILL');
  if (names.length) await sleep(200);
  await pool(names, 8, async (ns) => void (await tryRun('ip', ['netns', 'del', ns])));
  if (hostLink && existsSync(`/sys/class/net/${hostLink}`)) await tryRun('ip', ['link', 'del', hostLink]);
}

function tryKill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone already
  }
}

export interface MeshOptions {
  /** tabby-node log level (LOG_LEVEL); default info, as deployed. */
  logLevel?: string;
  /** Extra environment for every agent. */
  env?: Record<string, string>;
}

export class Mesh {
  readonly nodes: MeshNode[] = [];
  readonly dir = mkdtempSync(join(tmpdir(), 'tabby-nodebench-'));
  private etcd: ChildProcess | undefined;
  private routeWaiters: Array<() => void> = [];
  private destroyed = false;
  private readonly onSignal = (sig: NodeJS.Signals): void => {
    // Ctrl-C reaches us twice (the process group, and the re-exec parent passing it on): stay
    // subscribed so the second one does not kill the cleanup.
    if (this.destroyed) return;
    process.stderr.write(`\n${sig}: cleaning up\n`);
    void this.destroy().finally(() => process.exit(130));
  };

  constructor(private readonly opts: MeshOptions = {}) {
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  /** Fabric namespace, bridge, root link, etcd. */
  async setup(): Promise<void> {
    await sweep();
    await run('ip', ['netns', 'add', FABRIC]);
    const f = ['-n', FABRIC];
    await run('ip', [...f, 'link', 'set', 'lo', 'up']);
    await run('ip', [...f, 'link', 'add', 'br0', 'type', 'bridge']);
    await run('ip', [...f, 'addr', 'add', `${ETCD_IP}/16`, 'dev', 'br0']);
    await run('ip', [...f, 'link', 'set', 'br0', 'up']);
    await run('ip', ['link', 'add', HOST_LINK, 'type', 'veth', 'peer', 'name', 'host', 'netns', FABRIC]);
    await run('ip', [...f, 'link', 'set', 'host', 'master', 'br0', 'up']);
    await run('ip', ['addr', 'add', `${OBSERVER_IP}/16`, 'dev', HOST_LINK]);
    await run('ip', ['link', 'set', HOST_LINK, 'up']);
    const data = join(this.dir, 'etcd');
    const log = openSync(join(this.dir, 'etcd.log'), 'a');
    const env = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith('ETCD_')) delete env[k];
    const peer = `http://127.0.0.1:${ETCD_PEER_PORT}`;
    this.etcd = spawn(
      'ip',
      ['netns', 'exec', FABRIC, 'etcd', '--name', 'tnb', '--data-dir', data, '--listen-client-urls', ETCD_ENDPOINT, '--advertise-client-urls', ETCD_ENDPOINT,
        '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `tnb=${peer}`, '--log-level', 'warn', '--logger', 'zap'],
      { stdio: ['ignore', log, log], env },
    );
    closeSync(log);
    const end = Date.now() + 20000;
    while (Date.now() < end) {
      if ((await tryRun('etcdctl', [`--endpoints=${ETCD_ENDPOINT}`, '--dial-timeout=1s', 'endpoint', 'health'])) !== undefined) return;
      if (this.etcd.exitCode !== null) break;
      await sleep(100);
    }
    throw new Error(`etcd did not become healthy: ${readFileSync(join(this.dir, 'etcd.log'), 'utf8').slice(-500)}`);
  }

  /** Node namespaces 1..n with their veths, and a route subscription in each. */
  async addNodes(n: number): Promise<void> {
    const fresh: MeshNode[] = [];
    for (let i = this.nodes.length + 1; i <= n; i++) {
      const name = `nb-${i}`;
      const dir = join(this.dir, name);
      fresh.push({ index: i, name, ns: `${PREFIX}n${i}`, ip: nodeIp(i), dir, log: join(this.dir, `${name}.log`), routes: new Map() });
    }
    await pool(fresh, 6, async (m) => {
      await run('ip', ['netns', 'add', m.ns]);
      await run('ip', ['-n', m.ns, 'link', 'set', 'lo', 'up']);
      await run('ip', ['-n', FABRIC, 'link', 'add', `v${m.index}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', m.ns]);
      await run('ip', ['-n', FABRIC, 'link', 'set', `v${m.index}`, 'master', 'br0', 'up']);
      await run('ip', ['-n', m.ns, 'addr', 'add', `${m.ip}/16`, 'dev', 'eth0']);
      await run('ip', ['-n', m.ns, 'link', 'set', 'eth0', 'up']);
      await run('ip', ['netns', 'exec', m.ns, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
    });
    this.nodes.push(...fresh);
    await this.staticNeighbours();
    for (const m of fresh) {
      m.nl = Netlink.open({ netns: m.ns });
      m.sub = m.nl.subscribe(['ipv4-route'], (ev: NetlinkEvent) => this.onRoute(m, ev));
      for (const r of await m.nl.routeList({ family: 2 })) if (r.dst && r.type === 1) m.routes.set(r.dst, nowMs());
    }
  }

  /**
   * Permanent ARP entries for every address on the fabric, in every namespace. The kernel's neighbour
   * table is shared by all namespaces and `gc_thresh3` (default 1024) bounds its dynamic entries
   * machine-wide: a 50-node mesh needs 50·49 of them, the table overflows ("neighbor table
   * overflow!"), ARP fails and connects time out. Permanent entries do not count against it; one
   * real host per node would need only its own N−1.
   */
  private async staticNeighbours(): Promise<void> {
    const mac = async (args: string[]): Promise<string> => (JSON.parse(await run('ip', ['-j', ...args])) as Array<{ address: string }>)[0]!.address;
    const table: Array<[string, string]> = [
      [ETCD_IP, await mac(['-n', FABRIC, 'link', 'show', 'br0'])],
      [OBSERVER_IP, await mac(['link', 'show', HOST_LINK])],
    ];
    for (const m of this.nodes) table.push([m.ip, await mac(['-n', m.ns, 'link', 'show', 'eth0'])]);
    const batch = async (ns: string | undefined, dev: string, self: string): Promise<void> => {
      const file = join(this.dir, `neigh-${ns ?? 'root'}`);
      writeFileSync(file, table.filter(([ip]) => ip !== self).map(([ip, lladdr]) => `neigh replace ${ip} lladdr ${lladdr} dev ${dev} nud permanent\n`).join(''));
      await run('ip', [...(ns ? ['-n', ns] : []), '-batch', file]);
    };
    await batch(undefined, HOST_LINK, OBSERVER_IP);
    await batch(FABRIC, 'br0', ETCD_IP);
    await pool(this.nodes, 6, (m) => batch(m.ns, 'eth0', m.ip));
  }

  private onRoute(m: MeshNode, ev: NetlinkEvent): void {
    if (ev.kind !== 'route' || !ev.route.dst || (ev.route.table ?? 254) !== 254) return;
    if (ev.action === 'new' && ev.route.type === 1) {
      if (!m.routes.has(ev.route.dst)) m.routes.set(ev.route.dst, nowMs());
    } else if (ev.action === 'del') {
      m.routes.delete(ev.route.dst);
    }
    const w = this.routeWaiters;
    this.routeWaiters = [];
    for (const f of w) f();
  }

  /** Resolves when `done()` holds, re-checked on every route event; rejects after timeoutMs. */
  waitRoutes(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what}: not within ${timeoutMs / 1000} s`)), timeoutMs);
      const check = (): void => {
        if (done()) {
          clearTimeout(timer);
          resolve();
        } else this.routeWaiters.push(check);
      };
      check();
    });
  }

  env(m: MeshNode): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      NODENAME: m.name,
      DATASTORE_TYPE: 'etcdv3',
      ETCD_ENDPOINTS: ETCD_ENDPOINT,
      IP: `${m.ip}/16`,
      AS: '64512',
      CALICO_IPV4POOL_CIDR: POOL_CIDR,
      CALICO_IPV4POOL_BLOCK_SIZE: String(BLOCK_SIZE),
      CALICO_IPV4POOL_IPIP: 'Never',
      CALICO_IPV4POOL_VXLAN: 'Never',
      TABBY_RUN_DIR: join(m.dir, 'run'),
      TABBY_LIB_DIR: join(m.dir, 'lib'),
      FELIX_HEALTHPORT: String(HEALTH_PORT),
      LOG_LEVEL: this.opts.logLevel ?? 'info',
      ...this.opts.env,
    };
    if (process.env.BENCH_AGENT_NODE_OPTIONS !== undefined) env.NODE_OPTIONS = process.env.BENCH_AGENT_NODE_OPTIONS;
    delete env.NODE_EXTRA_CA_CERTS; // ~115 ms per Node start on this machine
    // ensureThreadPool() sized the pool of this process (one parked thread per namespace it watches); an
    // agent runs with libuv's default, as deployed. Inherited, 116 pool threads were created in every
    // agent (≈ 2 MB RSS and a burst of clone()s each; bench/RESULTS.md, session 5).
    delete env.UV_THREADPOOL_SIZE;
    env.PATH = `${dirname(process.execPath)}:${env.PATH ?? '/usr/bin:/bin'}`; // the launcher's `env node`
    for (const k of Object.keys(env)) if (k.startsWith('FELIX_') && !k.startsWith('FELIX_HEALTH') && !(this.opts.env && k in this.opts.env)) delete env[k];
    return env;
  }

  /** Start tabby-node in every namespace (the process is `node bin/tabby-node`, exec'd by ip netns exec). */
  startAgents(nodes: MeshNode[] = this.nodes, opts: { profileDir?: string } = {}): void {
    spawnBoosted((spawned) => this.spawnAgents(nodes, opts, spawned));
  }

  private spawnAgents(nodes: MeshNode[], opts: { profileDir?: string }, spawned: (pid: number | undefined) => void): void {
    for (const m of nodes) {
      const fd = openSync(m.log, 'a');
      const flags = process.env.BENCH_AGENT_NODE_FLAGS;
      // Default: exec the launcher itself, so its shebang's V8 flags apply as in the image (ENTRYPOINT).
      let cmd = flags === undefined ? [BIN] : [process.execPath, ...flags.split(' ').filter(Boolean), BIN];
      const env = this.env(m);
      // BENCH_PROFILE_DIR: a CPU profile of BENCH_PROFILE_AGENTS (default 5) agents spread over the
      // spawn order (the others run unprofiled, so the profiler's overhead barely changes the run).
      // They run `node <the launcher's shebang flags> --cpu-prof … <launcher>`.
      const profDir = opts.profileDir ?? process.env.BENCH_PROFILE_DIR;
      const every = opts.profileDir ? 1 : Math.max(1, Math.floor(this.nodes.length / Number(process.env.BENCH_PROFILE_AGENTS ?? 5)));
      if (profDir && (opts.profileDir || this.nodes.indexOf(m) % every === Math.floor(every / 2))) {
        const shebang = flags ?? (/^#!.*?node\s+(.*)$/m.exec(readFileSync(BIN, 'utf8').split('\n')[0] ?? '')?.[1] ?? '');
        const prof = ['--cpu-prof', `--cpu-prof-dir=${profDir}`, `--cpu-prof-interval=${process.env.BENCH_PROFILE_INTERVAL_US ?? 500}`];
        cmd = [process.execPath, ...shebang.split(' ').filter(Boolean), ...prof, BIN];
      }
      const child = spawn('ip', ['netns', 'exec', m.ns, ...cmd], { stdio: ['ignore', fd, fd], env });
      closeSync(fd);
      m.child = child;
      if (child.pid !== undefined) m.pid = child.pid;
      spawned(child.pid);
      child.on('exit', (code, sig) => {
        if (!this.destroyed) process.stderr.write(`tabby-node ${m.name} exited (${code ?? sig}); log ${m.log}:\n${tail(m.log)}\n`);
      });
    }
  }

  /** Every node has a kernel route to every other node's block(s) (`blocks`: node name → cidrs). */
  meshComplete(blocks: Map<string, string[]>): boolean {
    for (const m of this.nodes) {
      for (const [owner, cidrs] of blocks) {
        if (owner === m.name) continue;
        for (const c of cidrs) if (!m.routes.has(c)) return false;
      }
    }
    return true;
  }

  /** One /26 per node (blockCidr(index)) claimed through the IPAM library: node name → its block(s). */
  async claimBlocks(): Promise<Map<string, string[]>> {
    const claimer = await openClaimer();
    const blocks = new Map<string, string[]>();
    try {
      for (const m of this.nodes) {
        const cidr = blockCidr(m.index);
        await claimer.claim(m.name, cidr);
        blocks.set(m.name, [cidr]);
      }
    } finally {
      await claimer.close();
    }
    return blocks;
  }

  /** BGP peers per node from the status sockets: [node, established, total]. */
  async sessions(nodes: MeshNode[] = this.nodes): Promise<Array<{ node: string; established: number; total: number }>> {
    const out: Array<{ node: string; established: number; total: number }> = [];
    await pool(nodes, 8, async (m) => {
      try {
        const s = await readStatus(join(m.dir, 'run'), 3000);
        out.push({ node: m.name, established: s.bgp.peers.filter((p) => p.state === 'Established').length, total: s.bgp.peers.length });
      } catch {
        out.push({ node: m.name, established: 0, total: -1 });
      }
    });
    return out;
  }

  /**
   * From the agents' logs (pino `time`, ms since the epoch): per node, the time its last BGP session
   * became Established for good (no later transition away), or undefined when one is not Established.
   */
  /** CPU seconds each agent had used when it logged "tabby-node started" (its startupCpuMs). */
  startupCpu(): number[] {
    const out: number[] = [];
    for (const m of this.nodes) {
      let text = '';
      try {
        text = readFileSync(m.log, 'utf8');
      } catch {
        continue;
      }
      const line = text.split('\n').find((l) => l.includes('"tabby-node started"'));
      const ms = line ? (JSON.parse(line) as { startupCpuMs?: number }).startupCpuMs : undefined;
      if (ms !== undefined) out.push(ms / 1000);
    }
    return out;
  }

  establishedAt(): Map<string, number | undefined> {
    const out = new Map<string, number | undefined>();
    for (const m of this.nodes) {
      const last = new Map<string, { to: string; time: number }>();
      let text = '';
      try {
        text = readFileSync(m.log, 'utf8');
      } catch {
        // no log yet
      }
      for (const line of text.split('\n')) {
        if (!line.includes(' -> ')) continue;
        try {
          const j = JSON.parse(line) as { msg?: string; peer?: string; to?: string; time?: number };
          if (j.peer && j.to && j.time && j.msg?.startsWith('peer ')) last.set(j.peer, { to: j.to, time: j.time });
        } catch {
          // not a log line
        }
      }
      const states = [...last.values()];
      out.set(m.name, states.length > 0 && states.every((x) => x.to === 'Established') ? Math.max(...states.map((x) => x.time)) : undefined);
    }
    return out;
  }

  /**
   * etcd's keys with the writes each got after revision `since` (per kind: keys written, writes),
   * and the current revision. Every write here is a watch event for every agent watching that kind.
   */
  async etcdWrites(since = 0): Promise<{ revision: number; byKind: Map<string, { keys: number; writes: number }> }> {
    const b64 = (x: string): string => Buffer.from(x).toString('base64');
    const res = await fetch(`${ETCD_ENDPOINT}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: b64('/'), range_end: b64('0'), keys_only: true }) });
    const j = (await res.json()) as { header: { revision: string }; kvs?: Array<{ key: string; create_revision: string; mod_revision: string; version: string }> };
    const byKind = new Map<string, { keys: number; writes: number }>();
    for (const kv of j.kvs ?? []) {
      if (Number(kv.mod_revision) <= since) continue;
      const key = Buffer.from(kv.key, 'base64').toString();
      const kind = key.split('/').slice(0, -1).filter((x) => x && !/^(calico|resources|v3|projectcalico\.org)$/.test(x)).slice(0, 2).join('/');
      // Writes since `since`: all of them for a key created after it, at least one otherwise.
      const writes = Number(kv.create_revision) > since ? Number(kv.version) : 1;
      const e = byKind.get(kind) ?? { keys: 0, writes: 0 };
      e.keys++;
      e.writes += writes;
      byKind.set(kind, e);
    }
    return { revision: Number(j.header.revision), byKind };
  }

  /** CPU seconds of all agents: main thread and other threads (procCpuByThread). */
  agentThreads(): Map<string, number> {
    const out = new Map<string, number>();
    for (const m of this.nodes) {
      if (m.pid === undefined) continue;
      try {
        for (const [k, v] of procCpuByThread(m.pid)) out.set(k, (out.get(k) ?? 0) + v);
      } catch {
        // the agent ended
      }
    }
    return out;
  }

  /** CPU seconds (utime+stime) etcd has used so far (the `ip netns exec` child execs etcd: same pid). */
  etcdCpu(): number {
    return this.etcd?.pid === undefined ? NaN : procCpu(this.etcd.pid);
  }

  /** VmRSS and VmHWM (MB) and CPU seconds (utime+stime) of every running agent. */
  memory(): Array<{ node: string; rss: number; hwm: number; cpu: number; sys: number }> {
    const out: Array<{ node: string; rss: number; hwm: number; cpu: number; sys: number }> = [];
    for (const m of this.nodes) {
      if (m.pid === undefined) continue;
      try {
        const mem = procMemory(m.pid);
        const c = procCpuSplit(m.pid);
        out.push({ node: m.name, ...mem, cpu: c.user + c.sys, sys: c.sys });
      } catch {
        // exited
      }
    }
    return out;
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await stopNodes(this.nodes);
    if (this.etcd && this.etcd.exitCode === null) {
      this.etcd.kill('SIGTERM');
      const e = Date.now() + 3000;
      while (Date.now() < e && this.etcd.exitCode === null && this.etcd.signalCode === null) await sleep(50);
      if (this.etcd.exitCode === null && this.etcd.signalCode === null) this.etcd.kill('SIGKILL');
    }
    await sweep();
    if (process.env.BENCH_KEEP) process.stderr.write(`kept logs in ${this.dir} (BENCH_KEEP)\n`);
    else rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Close every node's route subscription, SIGTERM every child still running, SIGKILL those left
 * after `graceMs`.
 */
export async function stopNodes(nodes: Array<{ sub?: Subscription; nl?: Netlink; child?: ChildProcess }>, graceMs = 5000): Promise<void> {
  for (const m of nodes) {
    m.sub?.close();
    m.nl?.close();
  }
  const running = (c: ChildProcess): boolean => c.exitCode === null && c.signalCode === null;
  const live = nodes.flatMap((m) => (m.child && running(m.child) ? [m.child] : []));
  for (const c of live) c.kill('SIGTERM');
  const end = Date.now() + graceMs;
  while (Date.now() < end && live.some(running)) await sleep(50);
  for (const c of live) if (running(c)) c.kill('SIGKILL');
}

/** Machine-wide CPU seconds since boot from /proc/stat: busy (user, nice, system, irq, softirq, steal) and idle (idle, iowait). */
export function machineCpu(): { busy: number; idle: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  return { busy: (user + nice + system + irq + softirq + steal) / 100, idle: (idle + iowait) / 100 };
}

/** VmRSS and VmHWM of a process in MB (/proc/<pid>/status); throws when it is gone. */
export function procMemory(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(/\d+/.exec(status.split('\n').find((l) => l.startsWith(k)) ?? '')?.[0] ?? NaN);
  return { rss: kb('VmRSS:') / 1024, hwm: kb('VmHWM:') / 1024 };
}

/** utime+stime of a process in seconds (/proc/<pid>/stat, 100 ticks per second); throws when it is gone. */
export function procCpu(pid: number): number {
  const { user, sys } = procCpuSplit(pid);
  return user + sys;
}

/**
 * CPU seconds of a process with nanosecond resolution, from /proc/<pid>/task/<tid>/schedstat (time
 * on CPU), split into the main thread (tid = pid) and the others (Node names all its threads `node`).
 * A BIRD daemon uses a few ms, which the 10 ms ticks of utime+stime round to zero. Threads that
 * already ended are not counted.
 */
export function procCpuByThread(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = Number(tid) === pid ? 'main thread' : 'other threads';
      const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      out.set(name, (out.get(name) ?? 0) + ns / 1e9);
    } catch {
      // the thread ended
    }
  }
  return out;
}

/** procCpuByThread summed over the threads. */
export function procCpuPrecise(pid: number): number {
  let s = 0;
  for (const v of procCpuByThread(pid).values()) s += v;
  return s;
}

/** User and system CPU seconds of a process (utime, stime). */
export function procCpuSplit(pid: number, path = `/proc/${pid}/stat`): { user: number; sys: number } {
  const stat = readFileSync(path, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(f[11]) / 100, sys: Number(f[12]) / 100 };
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-5).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Claim block `cidr` for `host` through the IPAM library (assignIp of its first address claims the
 * block: pending affinity → block → confirmed affinity). Returns the time (nowMs clock) at which the
 * datastore acknowledged the write that confirmed the affinity.
 */
export interface Claimer {
  claim(host: string, cidr: string): Promise<number>;
  close(): Promise<void>;
}

export async function openClaimer(): Promise<Claimer> {
  const { openDatastore } = await import('../datastore/index.js');
  const { Ipam } = await import('../ipam/ipam.js');
  const ds = await openDatastore({ type: 'etcdv3', etcdEndpoints: [ETCD_ENDPOINT] });
  let confirmedAt = 0;
  // The datastore as IPAM sees it, stamping the moment a BlockAffinity `confirmed` write returns.
  const watched = new Proxy(ds, {
    get(target, prop, recv) {
      const v = Reflect.get(target, prop, recv) as unknown;
      if (prop === 'update' && typeof v === 'function') {
        return async (obj: { kind?: string; spec?: { state?: string } }) => {
          const r = (await (v as (o: unknown) => Promise<unknown>).call(target, obj)) as unknown;
          if (obj.kind === 'BlockAffinity' && obj.spec?.state === 'confirmed') confirmedAt = nowMs();
          return r;
        };
      }
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as Datastore;
  const ipam = new Ipam({ datastore: watched });
  return {
    async claim(host, cidr) {
      confirmedAt = 0;
      await ipam.assignIp({ ip: cidr.split('/')[0]!, hostname: host, handleId: `bench-${cidr.replace(/[./]/g, '-')}`, attrs: { node: host } });
      if (confirmedAt === 0) throw new Error(`claiming ${cidr} for ${host}: no affinity confirmation seen`);
      return confirmedAt;
    },
    close: () => ds.close(),
  };
}

/** The IPPool, created before the agents start (so no agent creates the default one). */
export async function createPool(): Promise<void> {
  const { openDatastore } = await import('../datastore/index.js');
  const ds = await openDatastore({ type: 'etcdv3', etcdEndpoints: [ETCD_ENDPOINT] });
  try {
    await ds.create({
      apiVersion: 'projectcalico.org/v3',
      kind: 'IPPool',
      metadata: { name: 'default-ipv4-ippool' },
      spec: { cidr: POOL_CIDR, blockSize: BLOCK_SIZE, ipipMode: 'Never', vxlanMode: 'Never', natOutgoing: false, nodeSelector: 'all()' },
    });
  } finally {
    await ds.close();
  }
}

/**
 * BENCH_SPAWN_BOOST=1: run `spawnAll` with this process at nice −10 and put every spawned daemon back
 * to this process's own nice value at once (`spawned(pid)`; `ip netns exec` execs the daemon in that
 * pid). Without it, N daemons "started at once" are spawned over many seconds at a CPU-bound mesh
 * start (≈ 10–13 s for 100 tabby-nodes, ≈ 7 s for the Node floor): each fork of this large process
 * waits behind the daemons already running. Off by default, so earlier results stay comparable.
 */
export function spawnBoosted(spawnAll: (spawned: (pid: number | undefined) => void) => void): void {
  if (process.env.BENCH_SPAWN_BOOST !== '1') return spawnAll(() => undefined);
  const nice = getPriority();
  setPriority(-10);
  try {
    spawnAll((pid) => {
      if (pid !== undefined) setPriority(pid, nice);
    });
  } finally {
    setPriority(nice);
  }
}

/**
 * Every netlink subscription parks one libuv pool thread in poll(2) (netlink/socket.ts), and the pool
 * has 4 threads by default: with one subscription per node namespace nothing else (DNS, fs, the etcd
 * client) would run. Re-exec this benchmark once with a pool big enough for `threads` subscriptions.
 */
export async function ensureThreadPool(threads: number): Promise<void> {
  if (Number(process.env.UV_THREADPOOL_SIZE ?? 0) >= threads) return;
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, UV_THREADPOOL_SIZE: String(Math.min(1024, threads)) },
  });
  // Ctrl-C reaches the whole process group; a signal sent to this pid alone (timeout, kill) is passed
  // on, so the child always cleans up.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void child.kill(sig));
  const code = await new Promise<number>((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 130 : 1))));
  process.exit(code);
}

export function needRootAndEtcd(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)';
  for (const c of ['/usr/bin/etcd', '/usr/bin/etcdctl']) if (!existsSync(c)) return `needs ${c} (apt-get install etcd-server etcd-client)`;
  // tabby-node.cjs since the one-file CommonJS build; a BENCH_TABBY_ROOT from before has tabby-node.mjs.
  if (!['cjs', 'mjs'].some((ext) => existsSync(join(agentRoot, 'dist', 'bin', `tabby-node.${ext}`)))) return 'needs the bundle: run `npm run build` first';
  return undefined;
}


/**
 * A passive iBGP speaker (the bgp library, in this process) on the root link, peered with every node
 * through a global BGPPeer (`peerIP 172.29.0.254:23923`), like a ToR or route reflector would be. It
 * stamps the first time each prefix gets a best path: the BGP export path (datastore watch on the
 * claiming node → its speaker → UPDATE), which the kernel routes do not show because felix also routes
 * remote blocks straight from the datastore.
 */
export interface Observer {
  /** prefix → { time (nowMs clock), from (the advertising peer) } */
  seen: Map<string, { time: number; from: string }>;
  established(): number;
  onChange(fn: () => void): void;
  close(): Promise<void>;
}

export async function startObserver(nodes: MeshNode[]): Promise<Observer> {
  const { BgpSpeaker } = await import('../bgp/speaker.js');
  const { SessionTransports } = await import('../bgp/speaker/session-transport.js');
  const { BgpListener } = await import('../bgp/net/index.js');
  const { openDatastore } = await import('../datastore/index.js');
  const route: { to?: InstanceType<typeof SessionTransports> } = {};
  const listener = new BgpListener((s) => (route.to ? route.to.incoming(s) : s.destroy()));
  await listener.listen(OBSERVER_IP, OBSERVER_PORT);
  const transports = new SessionTransports({ listener });
  route.to = transports;
  const sp = new BgpSpeaker(
    { routerId: OBSERVER_IP, asNumber: 64512, peers: nodes.map((m) => ({ address: m.ip, asNumber: 64512, passive: true })) },
    { transport: transports.factory },
  );
  const seen = new Map<string, { time: number; from: string }>();
  let waiters: Array<() => void> = [];
  const changed = (): void => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  sp.on('best-path', (e) => {
    if (e.best && !seen.has(e.prefix)) seen.set(e.prefix, { time: nowMs(), from: e.best.source.id });
    changed();
  });
  sp.on('peer-state', changed);
  await sp.start();
  const ds = await openDatastore({ type: 'etcdv3', etcdEndpoints: [ETCD_ENDPOINT] });
  try {
    await ds.create({ apiVersion: 'projectcalico.org/v3', kind: 'BGPPeer', metadata: { name: 'bench-observer' }, spec: { peerIP: `${OBSERVER_IP}:${OBSERVER_PORT}`, asNumber: 64512 } });
  } finally {
    await ds.close();
  }
  return {
    seen,
    established: () => sp.status().peers.filter((p) => p.state === 'Established').length,
    onChange: (fn) => void waiters.push(fn),
    async close() {
      await sp.stop('benchmark done');
      await listener.close();
    },
  };
}
