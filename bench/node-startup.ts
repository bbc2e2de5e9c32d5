/**
 * tabby-node startup cost: CPU seconds, wall time and memory of one agent from exec to "tabby-node
 * started" (the log line after the agent has registered, started its speaker and dataplane), against
 * a real etcd. In a mesh of N agents starting together every agent pays this before any real work,
 * so N × this CPU is a floor for the mesh's convergence on a few cores (bench/results/startup.md).
 *
 * Layout (prefix `tk4-`, addresses only on these links):
 *   tk4-n1     eth0 172.30.4.1/24, the agent (NODENAME st-1, AS 64512, etcd datastore, pool 10.251.0.0/16)
 *   root ns    tk4-host 172.30.4.254/24 (the veth's other end); etcd on 172.30.4.254:23980 (peer 127.0.0.1:23981)
 *
 * Per run (sequential, BENCH_RUNS, default 10; one unmeasured warm-up start first so the datastore
 * objects the agent creates on its first start exist): spawn the real launcher (`bin/tabby-node`, its
 * shebang's V8 flags; BENCH_AGENT_NODE_FLAGS="…" runs `node <flags> bin/tabby-node` instead), stamp
 * the "tabby-node started" log line, read utime+stime from /proc/<pid>/stat at that moment, wait
 * BENCH_SETTLE_MS (default 2000) and read VmRSS / VmHWM / CPU again, then SIGTERM.
 * BENCH_TABBY_ROOT=<checkout> starts that checkout's bin/tabby-node (built) instead of this one's.
 * BENCH_PROFILE=1: one more run with --cpu-prof, and a breakdown of its samples up to "started"
 * (BENCH_PROFILE_OUT=<file> keeps the .cpuprofile).
 *
 *   npm run build && node --import tsx bench/node-startup.ts
 */
import { execFile, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, openSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PREFIX = 'tk4-';
const NS = `${PREFIX}n1`;
const HOST_LINK = `${PREFIX}host`;
const HOST_IP = '172.30.4.254';
const NODE_IP = '172.30.4.1';
const ETCD_PORT = 23980;
const ETCD_PEER_PORT = 23981;
const HEALTH_PORT = 23982;
const ETCD = `http://${HOST_IP}:${ETCD_PORT}`;
/** BENCH_TABBY_ROOT: start another checkout's built tabby-node (before/after comparisons, as bench/_mesh.ts). */
const root = process.env.BENCH_TABBY_ROOT ?? join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(root, 'bin', 'tabby-node');
const LAUNCHER_FLAGS = (/^#!.*node\s+(.*)$/m.exec(readFileSync(BIN, 'utf8').split('\n')[0] ?? '')?.[1] ?? '').split(/\s+/).filter(Boolean);
const HZ = 100; // USER_HZ of /proc/<pid>/stat

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;
const loadAverage = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 30000, encoding: 'utf8' }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`)) : resolve(stdout)));
  });
}
const tryRun = (cmd: string, args: string[]): Promise<string | undefined> => run(cmd, args).catch(() => undefined);

function cpuOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / HZ;
}
function memOf(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(/\d+/.exec(status.split('\n').find((l) => l.startsWith(k)) ?? '')?.[0] ?? NaN);
  return { rss: kb('VmRSS:') / 1024, hwm: kb('VmHWM:') / 1024 };
}

async function sweep(): Promise<void> {
  if (existsSync(`/var/run/netns/${NS}`)) {
    for (const pid of ((await tryRun('ip', ['netns', 'pids', NS])) ?? '').split(/\s+/).filter(Boolean).map(Number)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await tryRun('ip', ['netns', 'del', NS]);
  }
  if (existsSync(`/sys/class/net/${HOST_LINK}`)) await tryRun('ip', ['link', 'del', HOST_LINK]);
}

interface Sample {
  startedMs: number;
  cpuStarted: number;
  cpuSettled: number;
  rss: number;
  hwm: number;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) return void console.log('skip: needs root (network namespaces)');
  if (!existsSync('/usr/bin/etcd')) return void console.log('skip: needs /usr/bin/etcd (apt-get install etcd-server)');
  if (!['cjs', 'mjs'].some((ext) => existsSync(join(root, 'dist', 'bin', `tabby-node.${ext}`)))) return void console.log(`skip: run \`npm run build\` in ${root} first`);
  const runs = Number(process.env.BENCH_RUNS ?? 10);
  const settleMs = Number(process.env.BENCH_SETTLE_MS ?? 2000);
  const flags = process.env.BENCH_AGENT_NODE_FLAGS;
  const dir = mkdtempSync(join(tmpdir(), 'tabby-startup-'));
  const children = new Set<ReturnType<typeof spawn>>();
  let etcd: ReturnType<typeof spawn> | undefined;
  const cleanup = async (): Promise<void> => {
    for (const c of children) c.kill('SIGKILL');
    if (etcd && etcd.exitCode === null) {
      etcd.kill('SIGTERM');
      const end = Date.now() + 3000;
      while (Date.now() < end && etcd.exitCode === null && etcd.signalCode === null) await sleep(50);
      if (etcd.exitCode === null) etcd.kill('SIGKILL');
    }
    await sweep();
    rmSync(dir, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void cleanup().finally(() => process.exit(130)));
  try {
    await sweep();
    await run('ip', ['netns', 'add', NS]);
    await run('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
    await run('ip', ['link', 'add', HOST_LINK, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS]);
    await run('ip', ['addr', 'add', `${HOST_IP}/24`, 'dev', HOST_LINK]);
    await run('ip', ['link', 'set', HOST_LINK, 'up']);
    await run('ip', ['-n', NS, 'addr', 'add', `${NODE_IP}/24`, 'dev', 'eth0']);
    await run('ip', ['-n', NS, 'link', 'set', 'eth0', 'up']);
    const etcdEnv = { ...process.env };
    for (const k of Object.keys(etcdEnv)) if (k.startsWith('ETCD_')) delete etcdEnv[k];
    const peer = `http://127.0.0.1:${ETCD_PEER_PORT}`;
    const elog = openSync(join(dir, 'etcd.log'), 'a');
    etcd = spawn('etcd', ['--name', 'tk4', '--data-dir', join(dir, 'etcd'), '--listen-client-urls', ETCD, '--advertise-client-urls', ETCD, '--listen-peer-urls', peer,
      '--initial-advertise-peer-urls', peer, '--initial-cluster', `tk4=${peer}`, '--log-level', 'warn', '--logger', 'zap'], { stdio: ['ignore', elog, elog], env: etcdEnv });
    closeSync(elog);
    const end = Date.now() + 20000;
    for (;;) {
      if ((await tryRun('etcdctl', [`--endpoints=${ETCD}`, '--dial-timeout=1s', 'endpoint', 'health'])) !== undefined) break;
      if (Date.now() > end || etcd.exitCode !== null) throw new Error(`etcd did not start: ${readFileSync(join(dir, 'etcd.log'), 'utf8').slice(-400)}`);
      await sleep(100);
    }

    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith('FELIX_') || k.startsWith('CALICO_') || k.startsWith('ETCD_')) delete env[k];
    delete env.NODE_EXTRA_CA_CERTS; // ~115 ms per Node start on this machine
    delete env.NODE_OPTIONS;
    Object.assign(env, {
      NODENAME: 'st-1',
      DATASTORE_TYPE: 'etcdv3',
      ETCD_ENDPOINTS: ETCD,
      IP: `${NODE_IP}/24`,
      AS: '64512',
      CALICO_IPV4POOL_CIDR: '10.251.0.0/16',
      CALICO_IPV4POOL_IPIP: 'Never',
      CALICO_IPV4POOL_VXLAN: 'Never',
      TABBY_RUN_DIR: join(dir, 'run'),
      TABBY_LIB_DIR: join(dir, 'lib'),
      FELIX_HEALTHPORT: String(HEALTH_PORT),
      LOG_LEVEL: 'info',
      PATH: `${dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    });

    const once = async (extra: string[] = []): Promise<Sample> => {
      const cmd = flags === undefined && extra.length === 0 ? [BIN] : [process.execPath, ...(flags === undefined ? LAUNCHER_FLAGS : flags.split(' ').filter(Boolean)), ...extra, BIN];
      const t0 = nowMs();
      const child = spawn('ip', ['netns', 'exec', NS, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'], env });
      children.add(child);
      let out = '';
      const s = await new Promise<{ startedMs: number; cpuStarted: number }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "tabby-node started" within 60 s:\n${out.slice(-1500)}`)), 60000);
        const onData = (b: Buffer): void => {
          out += b.toString();
          if (out.includes('"msg":"tabby-node started"')) {
            const at = nowMs();
            clearTimeout(timer);
            child.stdout.off('data', onData);
            child.stderr.off('data', onData);
            resolve({ startedMs: at - t0, cpuStarted: cpuOf(child.pid!) });
          }
        };
        child.stdout.on('data', onData);
        child.stderr.on('data', onData);
        child.on('exit', (code, sig) => reject(new Error(`tabby-node exited (${code ?? sig}):\n${out.slice(-1500)}`)));
      });
      child.stdout.resume();
      child.stderr.resume();
      await sleep(settleMs);
      const cpuSettled = cpuOf(child.pid!);
      const mem = memOf(child.pid!);
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(5000).then(() => void child.kill('SIGKILL'))]);
      await exited;
      children.delete(child);
      return { ...s, cpuSettled, ...mem };
    };

    const loadBefore = loadAverage();
    await once(); // warm-up: the first start creates the pool, the Node, its block affinity…
    const samples: Sample[] = [];
    for (let i = 0; i < runs; i++) samples.push(await once());
    const loadAfter = loadAverage();
    const f1 = (x: number): string => x.toFixed(1);
    const f2 = (x: number): string => x.toFixed(2);
    const col = (k: keyof Sample): number[] => samples.map((s) => s[k]);
    console.log(`tabby-node startup (${BIN}), ${runs} sequential starts (+1 warm-up), ${flags === undefined ? 'the launcher (shebang flags)' : `node ${flags}`}`);
    console.log(`  CPU s to "started"      median ${f2(median(col('cpuStarted')))}  min ${f2(Math.min(...col('cpuStarted')))}  max ${f2(Math.max(...col('cpuStarted')))}`);
    console.log(`  CPU s after ${settleMs} ms      median ${f2(median(col('cpuSettled')))}`);
    console.log(`  wall ms to "started"    median ${median(col('startedMs')).toFixed(0)}  min ${Math.min(...col('startedMs')).toFixed(0)}  max ${Math.max(...col('startedMs')).toFixed(0)}`);
    console.log(`  VmRSS MB settled        median ${f1(median(col('rss')))}  max ${f1(Math.max(...col('rss')))}`);
    console.log(`  VmHWM MB                median ${f1(median(col('hwm')))}  max ${f1(Math.max(...col('hwm')))}`);
    console.log(`  load average            ${loadBefore} -> ${loadAfter}`);
    console.log(`| ${new Date().toISOString().slice(0, 16).replace('T', ' ')} | ${runs} | ${f2(median(col('cpuStarted')))} | ${f2(median(col('cpuSettled')))} | ${median(col('startedMs')).toFixed(0)} | ${f1(median(col('rss')))} / ${f1(Math.max(...col('rss')))} | ${f1(median(col('hwm')))} / ${f1(Math.max(...col('hwm')))} | ${loadBefore} → ${loadAfter} |`);

    if (process.env.BENCH_PROFILE) {
      const profDir = join(dir, 'prof');
      const s = await once(['--cpu-prof', `--cpu-prof-dir=${profDir}`, '--cpu-prof-interval=200']);
      const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
      if (!file) throw new Error('no .cpuprofile written');
      console.log(`\n--cpu-prof run (sampling 200 µs; the profiler adds its own overhead): "started" after ${s.startedMs.toFixed(0)} ms, ${f2(s.cpuStarted)} CPU s`);
      if (process.env.BENCH_PROFILE_OUT) copyFileSync(join(profDir, file), process.env.BENCH_PROFILE_OUT);
      breakdown(JSON.parse(readFileSync(join(profDir, file), 'utf8')) as CpuProfile);
    }
  } finally {
    await cleanup();
  }
}

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/**
 * Classify each sample by its stack (up to the first 2.5 s of the profile, i.e. the start):
 * - gc / idle / program: V8's pseudo-frames;
 * - compile+link: inside Node's ESM loader (node:internal/modules/esm/…) with no module body
 *   below — source read, V8 parse/compile of the module, linking;
 * - module evaluation: below a module's top-level code (a frame at line 0 col 0 of a file) — module
 *   bodies and what they call at import time;
 * - work: any other stack (the agent's real start: config, datastore, speaker, dataplane…),
 *   split by the deepest package/bundle frame.
 */
function breakdown(p: CpuProfile): void {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const cat = new Map<string, number>();
  const owner = new Map<string, number>();
  const add = (m: Map<string, number>, k: string, us: number): void => void m.set(k, (m.get(k) ?? 0) + us);
  const where = (url: string): string => {
    const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
    if (nm) return nm[1]!;
    if (url.includes('/dist/bin/')) return 'tabby bundle';
    if (url.startsWith('node:')) return 'node internals';
    return url ? 'other' : '(native)';
  };
  let t = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    t += dt;
    if (t > 2.5e6) break;
    const leaf = byId.get(p.samples[i]!)!;
    const name = leaf.callFrame.functionName;
    if (name === '(idle)') continue;
    if (name === '(garbage collector)' || name === '(program)') {
      add(cat, name, dt);
      continue;
    }
    const stack: CpuProfileNode[] = [];
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) stack.push(byId.get(id)!);
    const body = stack.find((n) => n.callFrame.lineNumber === 0 && n.callFrame.columnNumber === 0 && /^file:|^\//.test(n.callFrame.url));
    const inLoader = stack.some((n) => n.callFrame.url.startsWith('node:internal/modules/'));
    const k = body ? 'module evaluation' : inLoader ? 'compile+link (ESM loader)' : 'work';
    add(cat, k, dt);
    add(owner, `${k}: ${where((stack.find((n) => n.callFrame.url && !n.callFrame.url.startsWith('node:')) ?? leaf).callFrame.url)}`, dt);
  }
  const total = [...cat.values()].reduce((a, b) => a + b, 0);
  const show = (m: Map<string, number>): void => {
    for (const [k, us] of [...m].sort((a, b) => b[1] - a[1])) if (us >= 2000) console.log(`  ${(us / 1000).toFixed(0).padStart(5)} ms  ${((100 * us) / total).toFixed(0).padStart(3)} %  ${k}`);
  };
  console.log(`profile, first 2.5 s without idle: ${(total / 1000).toFixed(0)} ms sampled`);
  show(cat);
  console.log('by code (the innermost non-Node frame):');
  show(owner);
}

await main();
