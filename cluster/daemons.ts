/**
 * The cluster's long-lived processes: etcd (in the fabric namespace, on its fabric address), BIRD
 * (the ToR) and one tabby-node per node namespace. All start detached with a log file and are
 * recorded in the state (pid + a command-line guard) before this returns.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ClusterState, NodePlan, Plan, ProcRecord } from './plan.js';
import { ClusterError, birdConfig, nodeEnv } from './plan.js';
import type { SaveState } from './topology.js';
import { childEnv, inNs, must, procAlive, run, sleep, spawnDetached } from './sys.js';

function record(state: ClusterState, save: SaveState, rec: ProcRecord): void {
  state.procs = state.procs.filter((p) => p.role !== rec.role);
  state.procs.push(rec);
  save();
}

function findProc(state: ClusterState, role: string): ProcRecord | undefined {
  const p = state.procs.find((x) => x.role === role);
  return p !== undefined && procAlive(p.pid, p.match) ? p : undefined;
}

function tail(file: string, n = 5): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-n).join(' | ');
  } catch {
    return '(no log)';
  }
}

async function waitFor(what: string, limitMs: number, probe: () => Promise<boolean>, alive: () => boolean, log: string): Promise<void> {
  const end = Date.now() + limitMs;
  // Dead only when two looks 100 ms apart agree: while `ip netns exec` execs the daemon, its
  // /proc/<pid>/cmdline can read empty for a moment (seen in CI under load, 5 ms after the spawn).
  let missed = 0;
  while (Date.now() < end) {
    if (await probe()) return;
    missed = alive() ? 0 : missed + 1;
    if (missed >= 2) throw new ClusterError(`${what} exited during start: ${tail(log)}`, `see ${log}`);
    await sleep(100);
  }
  throw new ClusterError(`${what} not ready within ${limitMs / 1000} s: ${tail(log)}`, `see ${log}`);
}

export async function etcdHealthy(plan: Plan): Promise<boolean> {
  const r = await inNs(plan.fabricNs, ['etcdctl', `--endpoints=${plan.etcdEndpoint}`, '--dial-timeout=1s', 'endpoint', 'health'], {
    env: childEnv({ ETCDCTL_API: '3' }),
    timeoutMs: 5000,
  });
  return r.code === 0;
}

/** Start etcd (Debian etcd-server) inside the fabric namespace on the fabric address. */
export async function startEtcd(plan: Plan, state: ClusterState, save: SaveState): Promise<string> {
  if (findProc(state, 'etcd') !== undefined && (await etcdHealthy(plan))) return 'already running';
  const o = plan.options;
  mkdirSync(plan.etcdDataDir, { recursive: true, mode: 0o700 });
  const client = plan.etcdEndpoint;
  const peer = `http://127.0.0.1:${o.etcdPeerPort}`;
  const name = `${o.prefix}etcd`;
  const env = childEnv();
  for (const k of Object.keys(env)) if (k.startsWith('ETCD_')) delete env[k];
  const pid = spawnDetached(
    plan.fabricNs,
    ['etcd', '--name', name, '--data-dir', plan.etcdDataDir,
      '--listen-client-urls', `${client},http://127.0.0.1:${o.etcdClientPort}`, '--advertise-client-urls', client,
      '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `${name}=${peer}`,
      '--logger', 'zap', '--log-level', 'warn'],
    plan.etcdLog,
    env,
  );
  record(state, save, { role: 'etcd', pid, netns: plan.fabricNs, match: plan.etcdDataDir, log: plan.etcdLog });
  await waitFor('etcd', 20000, () => etcdHealthy(plan), () => procAlive(pid, plan.etcdDataDir), plan.etcdLog);
  return `${client} (pid ${pid})`;
}

/**
 * The Kubernetes API test server (test/k8s-server, run with tsx from the checkout) inside the fabric
 * namespace on etcd's address: `--datastore kubernetes` without a cluster of one's own. It writes
 * plan.kubeconfig once it listens. Its store is in memory (a restart starts empty).
 */
export async function startApiServer(root: string, plan: Plan, state: ClusterState, save: SaveState): Promise<string> {
  const main = join(root, 'test', 'k8s-server', 'main.ts');
  if (findProc(state, 'kube-apiserver') !== undefined && existsSync(plan.kubeconfig)) return 'already running';
  let tsx: string;
  try {
    tsx = pathToFileURL(createRequire(join(root, 'package.json')).resolve('tsx')).href;
  } catch {
    throw new ClusterError('--datastore kubernetes without --kubeconfig needs the checkout\'s dev dependencies (tsx)', 'run `npm ci` in the checkout, or pass --kubeconfig <file>');
  }
  if (!existsSync(main)) throw new ClusterError(`${main} missing (the Kubernetes API test server lives in the checkout)`, 'pass --kubeconfig <file> of a real cluster');
  mkdirSync(dirname(plan.kubeconfig), { recursive: true, mode: 0o700 });
  rmSync(plan.kubeconfig, { force: true });
  const o = plan.options;
  const pid = spawnDetached(plan.fabricNs, [process.execPath, '--import', tsx, main, '--host', plan.etcdIp, '--port', String(o.apiPort), '--kubeconfig', plan.kubeconfig], plan.apiLog, childEnv());
  record(state, save, { role: 'kube-apiserver', pid, netns: plan.fabricNs, match: main, log: plan.apiLog });
  await waitFor('Kubernetes API test server', 20000, async () => existsSync(plan.kubeconfig), () => procAlive(pid, main), plan.apiLog);
  return `${plan.apiEndpoint} (pid ${pid}), kubeconfig ${plan.kubeconfig}`;
}

export async function birdc(plan: Plan, cmd: string[]): Promise<{ code: number; text: string }> {
  const r = await run('birdc', ['-s', plan.birdCtl, ...cmd], { timeoutMs: 5000 });
  return { code: r.code, text: (r.stdout + r.stderr).trim() };
}

/** Write the ToR's BIRD config, check it (`bird -p`), start BIRD in the ToR namespace. */
export async function startBird(plan: Plan, state: ClusterState, save: SaveState): Promise<string> {
  const conf = birdConfig(plan);
  mkdirSync(dirname(plan.birdConf), { recursive: true });
  const running = findProc(state, 'bird');
  const same = existsSync(plan.birdConf) && readFileSync(plan.birdConf, 'utf8') === conf;
  writeFileSync(plan.birdConf, conf);
  await must('bird', ['-p', '-c', plan.birdConf]);
  if (running !== undefined) {
    if (!same) await must('birdc', ['-s', plan.birdCtl, 'configure']);
    return same ? 'already running' : 'reconfigured';
  }
  const pid = spawnDetached(plan.torNs, ['bird', '-f', '-c', plan.birdConf, '-s', plan.birdCtl], plan.birdLog, childEnv());
  record(state, save, { role: 'bird', pid, netns: plan.torNs, match: plan.birdConf, log: plan.birdLog });
  await waitFor('BIRD', 10000, async () => (await birdc(plan, ['show', 'status'])).code === 0, () => procAlive(pid, plan.birdConf), plan.birdLog);
  return `${plan.torIpA} AS ${plan.options.torAs} (pid ${pid})`;
}

/**
 * Whether a bundled executable is real or still the "not implemented yet" stub of a branch that
 * has not landed (the stub bundle calls notImplemented("<name>", …)). The bundle is
 * dist/bin/<name>.mjs, or <name>.cjs for tabby-node (scripts/build.mjs builds it as one CommonJS file).
 */
export function binAvailable(root: string, name: string): { ok: boolean; why?: string } {
  const base = join(root, 'dist', 'bin', name);
  const bundle = [`${base}.mjs`, `${base}.cjs`].find((f) => existsSync(f));
  if (!bundle) return { ok: false, why: `${base}.mjs missing (run \`npm run build\`)` };
  const text = readFileSync(bundle, 'utf8');
  if (text.includes(`notImplemented("${name}"`) || text.includes(`notImplemented('${name}'`)) {
    return { ok: false, why: `${name} not available yet (its branch has not landed: the bundle is the stub)` };
  }
  return { ok: true };
}

export async function startNode(root: string, plan: Plan, n: NodePlan, state: ClusterState, save: SaveState): Promise<string> {
  const role = `tabby-node:${n.name}`;
  if (findProc(state, role) !== undefined) return 'already running';
  mkdirSync(n.runDir, { recursive: true });
  mkdirSync(n.libDir, { recursive: true });
  const bin = join(root, 'bin', 'tabby-node');
  // The launcher itself (not `node <launcher>`), so its first line's V8 flags for a long-running agent
  // apply; its `env -S node` finds this harness's node first on PATH.
  const env = childEnv(nodeEnv(plan, n));
  env.PATH = `${dirname(process.execPath)}:${env.PATH ?? '/usr/bin:/bin'}`;
  const pid = spawnDetached(n.netns, [bin], n.logFile, env);
  // The command line is `node <flags> <root>/bin/tabby-node`; the node's netns is the distinguishing part,
  // checked by down through `ip netns pids` as well.
  record(state, save, { role, pid, netns: n.netns, match: bin, log: n.logFile });
  await sleep(200);
  // Twice, 100 ms apart: the command line reads empty for a moment while `ip netns exec` / `env` exec.
  if (!procAlive(pid, bin) && (await sleep(100), !procAlive(pid, bin))) throw new ClusterError(`tabby-node on ${n.name} exited at once: ${tail(n.logFile)}`, `see ${n.logFile}`);
  return `pid ${pid}`;
}
