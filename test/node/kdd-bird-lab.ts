/**
 * Lab for tabby-node ↔ BIRD tests on the Kubernetes datastore (the API-faithful test server):
 * a node namespace and a BIRD namespace joined by a veth pair (`<node>.2` ↔ `<bird>.1` in one /24),
 * the test server in the root namespace reached from the node namespace through a unix socket
 * bridged by socat (`127.0.0.1:<apiPort>` inside the namespace), BIRD processes, tabby-node as a
 * child process. Everything (processes, namespaces, temp dir, server) goes in t.after, even when
 * the test fails.
 */
import type { TestContext } from 'node:test';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createConnection, createServer, type Server } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startK8sDatastore, type K8sDatastoreHarness } from '../k8s-server/harness.js';
import { writeKubeconfig } from '../k8s-server/server.js';

export const ROOT = new URL('../../', import.meta.url).pathname;

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function delNs(ns: string): void {
  try {
    sh('ip', ['netns', 'del', ns]);
  } catch {
    /* not there */
  }
}

export async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, debug: () => string, tries = 300): Promise<T> {
  let last = '';
  for (let i = 0; i < tries; i++) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = String(err);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`gave up waiting for ${what} ${last}\n${debug()}`);
}

export interface LabOptions {
  nodeNs: string;
  birdNs: string;
  nodeIp: string;
  birdIp: string;
  /** Port of the API bridge inside the node namespace. */
  apiPort: number;
  /** Name of the veth on both sides. */
  link: string;
  /** Temp dir name prefix. */
  prefix: string;
}

export interface Bird {
  conf: string;
  proc: ChildProcess;
  birdc(...args: string[]): string;
}

export interface Lab {
  dir: string;
  k: K8sDatastoreHarness;
  /** Kubeconfig for processes in the node namespace. */
  kubeconfig: string;
  spawnIn(ns: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv): ChildProcess;
  /** Start BIRD in the BIRD namespace (config checked with `bird -p` first); its stderr goes to birdLog(). */
  startBird(name: string, text: string): Promise<Bird>;
  birdLog(): string;
  /** tabby-node in the node namespace with this environment (plus process.env); output to nodeLog(). */
  startNode(env: NodeJS.ProcessEnv): ChildProcess;
  nodeLog(): string;
}

export async function makeKddBirdLab(t: TestContext, o: LabOptions): Promise<Lab> {
  const dir = await mkdtemp(join(tmpdir(), `${o.prefix}-`));
  const k = await startK8sDatastore();
  const procs: ChildProcess[] = [];
  const sock = join(dir, 'k8s.sock');
  const bridge: Server = createServer((c) => {
    const up = createConnection(k.srv.port, '127.0.0.1');
    c.pipe(up).pipe(c);
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
  });
  let nodeLog = '';
  let birdLog = '';
  t.after(async () => {
    for (const p of procs) {
      if (p.exitCode === null && p.signalCode === null) {
        await new Promise<void>((resolve) => {
          p.once('exit', () => resolve());
          p.kill('SIGKILL');
        });
      }
    }
    await new Promise<void>((r) => (bridge.listening ? bridge.close(() => r()) : r()));
    delNs(o.nodeNs);
    delNs(o.birdNs);
    await k.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  delNs(o.nodeNs);
  delNs(o.birdNs);
  sh('ip', ['netns', 'add', o.nodeNs]);
  sh('ip', ['netns', 'add', o.birdNs]);
  sh('ip', ['-n', o.nodeNs, 'link', 'add', o.link, 'type', 'veth', 'peer', 'name', o.link, 'netns', o.birdNs]);
  for (const [ns, ip] of [[o.nodeNs, o.nodeIp], [o.birdNs, o.birdIp]] as const) {
    sh('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', o.link]);
    sh('ip', ['-n', ns, 'link', 'set', o.link, 'up']);
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }

  await new Promise<void>((r) => bridge.listen(sock, () => r()));
  const spawnIn = (ns: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess => {
    const p = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(p);
    return p;
  };
  spawnIn(o.nodeNs, 'socat', [`TCP-LISTEN:${o.apiPort},bind=127.0.0.1,fork,reuseaddr`, `UNIX-CONNECT:${sock}`]);
  const kubeconfig = await writeKubeconfig(join(dir, 'kubeconfig-ns'), { url: `http://127.0.0.1:${o.apiPort}`, token: k.srv.token });

  return {
    dir,
    k,
    kubeconfig,
    spawnIn,
    async startBird(name, text) {
      const conf = join(dir, `${name}.conf`);
      const ctl = join(dir, `${name}.ctl`);
      await writeFile(conf, text);
      sh('bird', ['-p', '-c', conf]);
      const proc = spawnIn(o.birdNs, 'bird', ['-f', '-c', conf, '-s', ctl]);
      proc.stderr?.on('data', (d: Buffer) => (birdLog += `${name}: ${d.toString()}`));
      return { conf, proc, birdc: (...args: string[]): string => sh('birdc', ['-s', ctl, ...args]) };
    },
    birdLog: () => birdLog,
    startNode(extra) {
      const env: NodeJS.ProcessEnv = { ...process.env, KUBECONFIG: kubeconfig, DATASTORE_TYPE: 'kubernetes', ...extra };
      delete env.NODE_EXTRA_CA_CERTS;
      const node = spawnIn(o.nodeNs, process.execPath, ['--import', 'tsx', join(ROOT, 'node/main.ts')], env);
      node.stdout?.on('data', (d: Buffer) => (nodeLog += d.toString()));
      node.stderr?.on('data', (d: Buffer) => (nodeLog += d.toString()));
      return node;
    },
    nodeLog: () => nodeLog,
  };
}
