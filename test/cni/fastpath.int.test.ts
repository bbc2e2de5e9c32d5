/**
 * The CNI fast path: the `tabby` sh shim → socat → tabby-node's CNI server.
 * - The shim's shell logic against a scripted fake server (needs socat, no root).
 * - The real server (`tabby-node cni-server`, started inside a tcf-node-* namespace so the pods' host
 *   side never touches the machine's own links) against real network namespaces: results and errors
 *   equal to the Node plugin, idempotent DEL, fallback when the server is down or dead, 10 concurrent ADDs.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { decodeRequest, type ShimRequest } from '../../cni/shim/protocol.js';
import { shimScript } from '../../cni/shim/script.js';
import { realProbe } from '../../node/cni-server.js';
import { firstReason, needCommand, needRoot } from '../lib/skip.js';
import { ROOT, type PluginRun, buildOnce, childEnv, cniDir, netnsAdd, netnsDel, runPlugin } from './helpers.js';

const needSocat = needCommand('socat');

// ---- the shim against a fake server ---------------------------------------------------------

interface Fake {
  dir: string;
  shim: string;
  requests: ShimRequest[];
  server: Server;
}

/** A shim whose fallback prints FALLBACK, its arguments and the stdin it got, exit 7; a fake server answering `reply`. */
async function fake(t: { after: (fn: () => unknown) => void }, reply: string | undefined): Promise<Fake> {
  const dir = mkdtempSync(join(tmpdir(), 'tcf-shim-'));
  const shim = join(dir, 'tabby');
  writeFileSync(shim, shimScript({ fallback: ['printf "FALLBACK %s\\n" "$*"', 'cat', 'exit 7'] }));
  chmodSync(shim, 0o755);
  const requests: ShimRequest[] = [];
  const server = createServer({ allowHalfOpen: true }, (sock) => {
    const chunks: Buffer[] = [];
    sock.on('data', (b: Buffer) => chunks.push(b));
    sock.on('end', () => {
      requests.push(decodeRequest(Buffer.concat(chunks)));
      if (reply === undefined) sock.destroy();
      else sock.end(reply);
    });
  });
  if (reply !== null) await new Promise<void>((r) => server.listen(join(dir, 'cni.sock'), r));
  t.after(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, shim, requests, server };
}

/** Async: the fake server lives in this process and must keep answering while the shim runs. */
function runShim(shim: string, env: NodeJS.ProcessEnv, stdin: string, args: string[] = []): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(shim, args, { env: { PATH: process.env.PATH, ...env }, stdio: ['pipe', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(stdin);
  });
}

const cniEnv = (dir: string, over: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  CNI_COMMAND: 'DEL',
  CNI_CONTAINERID: 'c1',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/opt/cni/bin',
  CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=p',
  TABBY_RUN_DIR: dir,
  ...over,
});

test('shim: forwards env, meta and the config; prints the reply and exits with its code', { skip: needSocat }, async (t) => {
  const f = await fake(t, '1\n{"cniVersion":"1.0.0","code":4,"msg":"bad"}\n');
  const conf = '{"cniVersion":"1.0.0","name":"n","type":"tabby"}';
  const r = await runShim(f.shim, cniEnv(f.dir, { LD_PRELOAD: '', NODENAME: 'n1' }), conf);
  assert.deepEqual(r, { code: 1, stdout: '{"cniVersion":"1.0.0","code":4,"msg":"bad"}\n' });
  assert.equal(f.requests.length, 1);
  const q = f.requests[0]!;
  assert.equal(q.stdin, conf + '\n');
  assert.equal(q.meta.self, f.shim);
  assert.equal(q.meta.netns, '', 'DEL: no netns identity');
  assert.deepEqual(q.env, { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin', CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=p', TABBY_RUN_DIR: f.dir, NODENAME: 'n1', PATH: process.env.PATH });
});

test('shim: the config reaches the server byte for byte (backslashes, $, backquotes, big)', { skip: needSocat }, async (t) => {
  const f = await fake(t, '0\n');
  const conf = JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'tabby', odd: 'a\\"b $(id) `x` ${HOME} \\n\tz', big: 'x'.repeat(200_000) });
  assert.deepEqual(await runShim(f.shim, cniEnv(f.dir), conf), { code: 0, stdout: '' });
  assert.equal(f.requests[0]!.stdin, conf + '\n');
});

test('shim: ADD sends the identity of CNI_NETNS as stat sees it, equal to the server\'s view', { skip: needSocat }, async (t) => {
  const f = await fake(t, '0\n{"ok":true}\n');
  const netns = join(f.dir, 'netns-file');
  writeFileSync(netns, '');
  const r = await runShim(f.shim, cniEnv(f.dir, { CNI_COMMAND: 'ADD', CNI_NETNS: netns }), '{}');
  assert.deepEqual(r, { code: 0, stdout: '{"ok":true}\n' });
  assert.equal(f.requests[0]!.meta.netns, realProbe.identity(netns));
});

test('shim: the run dir comes from the config key run_dir (any JSON whitespace) before TABBY_RUN_DIR', { skip: needSocat }, async (t) => {
  const f = await fake(t, '0\n');
  const conf = `{"cniVersion": "1.0.0",\n  "run_dir"\t:\n   "${f.dir}", "name": "n"}`;
  const r = await runShim(f.shim, cniEnv('/nonexistent'), conf);
  assert.deepEqual(r, { code: 0, stdout: '' });
  assert.equal(f.requests.length, 1);
});

test('shim: a "fallback" reply runs the Node plugin with the same config and arguments', { skip: needSocat }, async (t) => {
  const f = await fake(t, 'fallback cannot see CNI_NETNS\n');
  const r = await runShim(f.shim, cniEnv(f.dir), '{"a":1}', ['x']);
  assert.deepEqual(r, { code: 7, stdout: 'FALLBACK x\n{"a":1}\n' });
  assert.equal(f.requests.length, 1);
});

test('shim: falls back without asking the server: no socket, off switch, no CNI_COMMAND, a newline in a value', { skip: needSocat }, async (t) => {
  const f = await fake(t, '0\n');
  const none = mkdtempSync(join(tmpdir(), 'tcf-shim-empty-'));
  t.after(() => rmSync(none, { recursive: true, force: true }));
  assert.deepEqual(await runShim(f.shim, cniEnv(none), '{"a":1}'), { code: 7, stdout: 'FALLBACK \n{"a":1}\n' });
  assert.deepEqual(await runShim(f.shim, cniEnv(f.dir, { TABBY_CNI_SERVER: 'off' }), '{"a":1}'), { code: 7, stdout: 'FALLBACK \n{"a":1}' });
  assert.deepEqual(await runShim(f.shim, cniEnv(f.dir, { CNI_COMMAND: undefined }), '{"a":1}'), { code: 7, stdout: 'FALLBACK \n{"a":1}' });
  assert.deepEqual(await runShim(f.shim, cniEnv(f.dir, { CNI_ARGS: 'A=1\nB=2' }), '{"a":1}'), { code: 7, stdout: 'FALLBACK \n{"a":1}\n' });
  assert.equal(f.requests.length, 0);
});

test('shim: a server that closes without answering, or a stale socket file, means fallback', { skip: needSocat }, async (t) => {
  const f = await fake(t, undefined);
  assert.deepEqual(await runShim(f.shim, cniEnv(f.dir), '{"a":1}'), { code: 7, stdout: 'FALLBACK \n{"a":1}\n' });
  assert.equal(f.requests.length, 1);
  // A stale socket: the file exists, nobody listens (a server killed with SIGKILL).
  const stale = mkdtempSync(join(tmpdir(), 'tcf-shim-stale-'));
  t.after(() => rmSync(stale, { recursive: true, force: true }));
  // A child that listens and exits without closing: its socket file stays, nobody accepts.
  const path = join(stale, 'cni.sock');
  execFileSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.exit(0))`]);
  assert.ok(existsSync(path), 'stale socket file in place');
  assert.deepEqual(await runShim(f.shim, cniEnv(stale), '{"a":1}'), { code: 7, stdout: 'FALLBACK \n{"a":1}\n' });
});

// ---- the real server --------------------------------------------------------------------------

const skipReal = firstReason(needRoot(), needSocat, existsSync('/usr/lib/cni/host-local') ? undefined : 'needs /usr/lib/cni/host-local (containernetworking-plugins)');
let seq = 0;

/** The server's pino lines (debug: one per request) go to `logFile`. */
async function startServer(nodeNs: string, runDir: string, logFile: string): Promise<ChildProcess> {
  const log = openSync(logFile, 'a');
  const child = spawn('ip', ['netns', 'exec', nodeNs, join(ROOT, 'bin/tabby-node'), 'cni-server'], { env: { ...childEnv(), TABBY_RUN_DIR: runDir, LOG_LEVEL: 'debug' }, stdio: ['ignore', 'ignore', log] });
  closeSync(log);
  for (let i = 0; i < 400 && !existsSync(join(runDir, 'cni.sock')); i++) {
    if (child.exitCode !== null) throw new Error(`tabby-node cni-server exited with ${child.exitCode}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.ok(existsSync(join(runDir, 'cni.sock')), 'server socket appeared');
  return child;
}

async function stopServer(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  await done;
}

async function setup(t: { after: (fn: () => unknown) => void }) {
  buildOnce();
  const id = `${process.pid % 10000}-${seq++}`;
  const nodeNs = `tcf-node-${id}`;
  netnsAdd(nodeNs);
  const d = await cniDir(['host-local']);
  const runDir = join(d.dir, 'run');
  const pods: string[] = [];
  const serverLog = join(d.dir, 'server.log');
  let server: ChildProcess | undefined = await startServer(nodeNs, runDir, serverLog);
  t.after(async () => {
    if (server) await stopServer(server);
    for (const p of pods) netnsDel(p);
    netnsDel(nodeNs);
    await d.cleanup();
  });
  const conf = {
    cniVersion: '1.0.0',
    name: 'tcf-net',
    type: 'tabby',
    run_dir: runDir,
    log_file_path: join(d.dir, 'cni.log'),
    lib_dir: join(d.dir, 'lib'),
    ipam: { type: 'host-local', subnet: '10.97.0.0/24', dataDir: join(d.dir, 'ipam') },
  };
  const pod = (name: string) => {
    const ns = `tcf-${name}-${id}`;
    pods.push(ns);
    return { ns, path: netnsAdd(ns), containerId: `cid-${name}-${id}`, args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=tcf;K8S_POD_NAME=${name}-${id}` };
  };
  const call = (command: string, p: ReturnType<typeof pod>, opts: { conf?: Record<string, unknown>; ifname?: string; node?: boolean } = {}): Promise<PluginRun> =>
    runPlugin({
      plugin: 'tabby',
      command,
      conf: opts.conf ?? conf,
      containerId: p.containerId,
      netns: p.path,
      args: p.args,
      cniPath: d.bin,
      nodeNs,
      ...(opts.ifname ? { ifname: opts.ifname } : {}),
      ...(opts.node ? { env: { TABBY_CNI_SERVER: 'off' } } : {}),
    });
  /** pids that wrote "pod network added"/"deleted" lines to the plugin log, in order. */
  const logPids = (msg: string) =>
    readFileSync(conf.log_file_path, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { pid: number; msg: string })
      .filter((l) => l.msg === msg)
      .map((l) => l.pid);
  /** Requests the server answered itself (not `fallback`), with their exit codes. */
  const served = () =>
    readFileSync(serverLog, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { msg: string; code?: number; command?: string })
      .filter((l) => l.msg === 'CNI request served');
  return {
    nodeNs,
    conf,
    served,
    pod,
    call,
    logPids,
    serverPid: () => server?.pid,
    stop: async (signal?: NodeJS.Signals) => {
      if (server) await stopServer(server, signal);
      server = undefined;
    },
  };
}

const inPod = (ns: string, cmd: string[]) => execFileSync('ip', ['netns', 'exec', ns, ...cmd], { encoding: 'utf8' });

test('fast path: ADD/CHECK/DEL served by the server; the Node plugin agrees with what it made', { skip: skipReal }, async (t) => {
  const s = await setup(t);
  const p = s.pod('a');
  const add = await s.call('ADD', p);
  assert.equal(add.code, 0, add.raw);
  assert.match(inPod(p.ns, ['ip', '-4', 'addr', 'show', 'eth0']), /inet 10\.97\.0\.\d+\/32/);
  assert.deepEqual(s.logPids('pod network added'), [s.serverPid()], 'the server did the ADD');
  // The Node plugin's retried ADD returns the very same result from the shared cache, and its CHECK passes.
  const again = await s.call('ADD', p, { node: true });
  assert.equal(again.code, 0, again.raw);
  assert.deepEqual(again.out, add.out);
  const check = { ...s.conf, prevResult: add.out };
  assert.equal((await s.call('CHECK', p, { conf: check, node: true })).code, 0);
  assert.equal((await s.call('CHECK', p, { conf: check })).code, 0);
  // DEL, twice (idempotent), then a DEL of a container nobody knows.
  assert.equal((await s.call('DEL', p)).code, 0);
  assert.equal((await s.call('DEL', p)).code, 0);
  assert.equal((await s.call('DEL', { ...p, containerId: 'never-added' })).code, 0);
  assert.equal(s.logPids('pod network deleted').filter((pid) => pid === s.serverPid()).length, 3);
  assert.doesNotMatch(inPod(s.nodeNs, ['ip', 'link', 'show']), /cali/);
});

test('fast path: a Node-made pod is deleted by the server, and error JSON and exit codes are identical', { skip: skipReal }, async (t) => {
  const s = await setup(t);
  const p = s.pod('b');
  const add = await s.call('ADD', p, { node: true });
  assert.equal(add.code, 0, add.raw);
  assert.notDeepEqual(s.logPids('pod network added'), [s.serverPid()]);
  assert.equal((await s.call('DEL', p)).code, 0);
  assert.doesNotMatch(inPod(s.nodeNs, ['ip', 'link', 'show']), /cali/);
  const cases: Array<{ ifname?: string; conf?: Record<string, unknown>; netns?: string }> = [
    { ifname: 'eth0123456789abcdef' },
    { conf: { ...s.conf, cniVersion: '9.9.9' } },
    { conf: { ...s.conf, mtu: 'lots' } },
    { conf: { ...s.conf, ipam: { type: 'no-such-ipam' } } },
  ];
  for (const c of cases) {
    const fast = await s.call('ADD', p, c);
    const node = await s.call('ADD', p, { ...c, node: true });
    assert.equal(fast.code, 1);
    assert.equal(fast.raw, node.raw, `same error for ${JSON.stringify(c)}`);
  }
  // The first three were answered by the server; an IPAM plugin it cannot find is a fallback case.
  assert.deepEqual(
    s.served().filter((l) => l.code === 1).map((l) => l.command),
    ['ADD', 'ADD', 'ADD'],
  );
});

test('fast path: falls back to the Node plugin when the server is stopped or killed', { skip: skipReal }, async (t) => {
  const s = await setup(t);
  const p = s.pod('c');
  const q = s.pod('d');
  await s.stop('SIGKILL'); // leaves a stale socket file behind
  const add = await s.call('ADD', p);
  assert.equal(add.code, 0, add.raw);
  assert.equal((await s.call('DEL', p)).code, 0);
  await s.stop();
  const add2 = await s.call('ADD', q);
  assert.equal(add2.code, 0, add2.raw);
  assert.equal((await s.call('DEL', q)).code, 0);
  assert.equal(s.logPids('pod network added').length, 2);
});

test('fast path: 10 concurrent ADDs, then 10 concurrent DELs', { skip: skipReal }, async (t) => {
  const s = await setup(t);
  const pods = Array.from({ length: 10 }, (_, i) => s.pod(`k${i}`));
  const adds = await Promise.all(pods.map((p) => s.call('ADD', p)));
  for (const a of adds) assert.equal(a.code, 0, a.raw);
  const ips = adds.map((a) => (a.out?.ips as Array<{ address: string }>)[0]!.address);
  assert.equal(new Set(ips).size, 10, 'distinct addresses');
  assert.deepEqual(s.logPids('pod network added'), Array(10).fill(s.serverPid()));
  const dels = await Promise.all(pods.map((p) => s.call('DEL', p)));
  for (const d of dels) assert.equal(d.code, 0, d.raw);
  assert.doesNotMatch(inPod(s.nodeNs, ['ip', 'link', 'show']), /cali/);
});
