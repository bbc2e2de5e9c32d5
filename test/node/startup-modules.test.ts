/**
 * What tabby-node loads at start.
 * - The module graph (an esbuild build with code splitting): its static import part must not reach the
 *   gRPC etcd client or the ajv validator; those are dynamic imports only (bench/results/etcdwatch.md:
 *   ≈ 25 and ≈ 10 MB per agent). Nor yaml, the Kubernetes client or prom-client, and pino is not
 *   imported at all (bench/results/startup.md). The shipped bundle is one CommonJS file, where esbuild
 *   puts each module behind an import() into an init function run by that import(), so the split
 *   graph says what runs at start there too.
 * - The built bundle itself (scripts/build.mjs, started through bin/tabby-node): it starts, requires
 *   none of those packages at start, its import() of the ESM-only Kubernetes client works, and the
 *   launcher's V8 code cache is written, used, and ignored (then replaced) when corrupt.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { launcherTestEnv } from './launcher-env.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
/** npm packages tabby-node must not load at start. */
const HEAVY = ['etcd3', '@grpc/grpc-js', 'ajv', 'ajv-formats', '@kubernetes/client-node', 'yaml', 'prom-client', 'pino'];

test('tabby-node: etcd3, grpc, ajv, yaml, prom-client are not on the static import path of the bundle, pino not at all', async () => {
  const res = await build({
    entryPoints: { 'tabby-node': join(root, 'node/main.ts') },
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    outdir: join(tmpdir(), 'tabby-startup-modules'), // nothing is written
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  const outputs = res.metafile.outputs;
  const entry = Object.keys(outputs).find((k) => outputs[k]?.entryPoint?.endsWith('node/main.ts'));
  assert.ok(entry, 'entry output found');
  const seen = new Set<string>();
  const externals = new Set<string>();
  const everyExternal = new Set<string>(); // static and dynamic imports, the whole reachable graph
  const all = new Set<string>();
  const every = [entry];
  while (every.length) {
    const o = every.pop()!;
    if (all.has(o)) continue;
    all.add(o);
    for (const imp of outputs[o]?.imports ?? []) {
      if (imp.external) everyExternal.add(imp.path);
      else every.push(imp.path);
    }
  }
  // pino is never imported by tabby-node (lib/linelog.ts writes its lines; lib/log.ts createLogger
  // loads pino on first use, which tabby-node does not call): ≈ 30–50 ms CPU per start.
  assert.ok(![...everyExternal].some((e) => e === 'pino' || e.startsWith('pino/')), `pino is imported: ${[...everyExternal].join(', ')}`);
  assert.ok(all.size > 5, `the walk reached the lazy chunks too (${all.size} outputs)`);
  const sources = new Set<string>();
  const todo = [entry];
  while (todo.length) {
    const o = todo.pop()!;
    if (seen.has(o)) continue;
    seen.add(o);
    const out = outputs[o];
    assert.ok(out, `output ${o}`);
    for (const input of Object.keys(out.inputs)) sources.add(input);
    for (const imp of out.imports) {
      if (imp.kind !== 'import-statement') continue; // dynamic imports load on demand
      if (imp.external) externals.add(imp.path);
      else todo.push(imp.path);
    }
  }
  for (const pkg of HEAVY.filter((p) => p !== 'pino')) {
    assert.ok(![...externals].some((e) => e === pkg || e.startsWith(`${pkg}/`)), `${pkg} is imported statically: ${[...externals].join(', ')}`);
  }
  assert.ok(![...sources].some((s) => s.endsWith('api/validate.ts')), 'api/validate.ts (ajv) is on the startup path');
  assert.ok(![...sources].some((s) => s.endsWith('datastore/etcd.ts')), 'datastore/etcd.ts (gRPC backend) is on the startup path');
  assert.ok(sources.has('node/main.ts') && sources.has('node/agent.ts'), `the walk reached the agent: ${[...sources].slice(0, 5).join(', ')}`);
});

let built: boolean | undefined;
/** `npm run build` once per file (the tests below run the shipped bundle, not the sources). */
function buildOnce(): void {
  if (built) return;
  const r = spawnSync(process.execPath, [join(root, 'scripts/build.mjs')], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, `build failed: ${r.stdout}${r.stderr}`);
  built = true;
}

/** npm package names of the module paths under node_modules. */
function packagesOf(paths: string[]): string[] {
  const names = new Set<string>();
  for (const p of paths) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(p.slice(p.lastIndexOf('node_modules/')));
    if (m) names.add(m[1]!);
  }
  return [...names].sort();
}

test('the built tabby-node is one CommonJS file that starts and requires none of the heavy packages at start', (t) => {
  buildOnce();
  assert.ok(existsSync(join(root, 'dist/bin/tabby-node.cjs')), 'dist/bin/tabby-node.cjs built');
  assert.equal(existsSync(join(root, 'dist/bin/tabby-node.mjs')), false, 'no ESM bundle of tabby-node next to it');
  const dir = mkdtempSync(join(tmpdir(), 'tabby-startmods-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // Every CommonJS module loaded (require.cache) when the process exits; --help returns right after
  // the bundle's top level, so this is what the agent requires before its first import().
  const preload = join(dir, 'preload.cjs');
  writeFileSync(preload, "process.on('exit', () => require('node:fs').writeFileSync(process.env.TABBY_TEST_LOADED, JSON.stringify(Object.keys(require.cache))));\n");
  const out = join(dir, 'loaded.json');
  const r = spawnSync(join(root, 'bin/tabby-node'), ['--help'], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, NODE_OPTIONS: `--require ${preload}`, TABBY_TEST_LOADED: out, TABBY_CODE_CACHE: 'off' },
  });
  assert.equal(r.status, 0, `bin/tabby-node --help: ${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /^usage: tabby-node /);
  assert.equal(r.stderr, '');
  const loaded = JSON.parse(readFileSync(out, 'utf8')) as string[];
  const pkgs = packagesOf(loaded);
  for (const pkg of HEAVY) assert.ok(!pkgs.includes(pkg), `${pkg} is loaded at start (${pkgs.join(', ')})`);
  // ipaddr.js comes with the netlink codec, which the agent needs at start: the walk saw node_modules.
  assert.ok(pkgs.includes('ipaddr.js'), `packages loaded at start: ${pkgs.join(', ')}`);
});

/** SHA-1 header + payload, as bin/tabby-node writes its cache files. */
function validCache(file: string): boolean {
  const data = readFileSync(file);
  return data.length > 20 && createHash('sha1').update(data.subarray(20)).digest().equals(data.subarray(0, 20));
}

test('the CommonJS bundle imports the ESM-only Kubernetes client; the V8 code cache is written, reused, and replaced when corrupt', async (t) => {
  buildOnce();
  const dir = mkdtempSync(join(tmpdir(), 'tabby-codecache-'));
  // A stand-in API server: every request fails, so the agent keeps waiting for its datastore (and,
  // with no BGP backend and no health port, opens no socket of its own).
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    res.writeHead(500, { 'content-type': 'application/json' }).end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const { port } = server.address() as AddressInfo;
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, [
    'apiVersion: v1',
    'kind: Config',
    `clusters: [{name: c, cluster: {server: "http://127.0.0.1:${port}", insecure-skip-tls-verify: true}}]`,
    'users: [{name: u, user: {token: t}}]',
    'contexts: [{name: c, context: {cluster: c, user: u}}]',
    'current-context: c',
    '',
  ].join('\n'));
  const cacheDir = join(dir, 'cache');
  const cacheFiles = (): string[] => (existsSync(cacheDir) ? readdirSync(cacheDir).filter((f) => f.endsWith('.v8')) : []);
  const until = async (what: string, ok: () => boolean): Promise<void> => {
    for (let i = 0; i < 300 && !ok(); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(ok(), `gave up waiting for ${what}`);
  };

  /** Starts the agent, waits until it asked the API server and `also()` holds, stops it; its output. */
  const agent = async (also: () => boolean = () => true): Promise<string> => {
    const seen = requests.length;
    const child = spawn(join(root, 'bin/tabby-node'), [], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: launcherTestEnv(dir, cacheDir, { DATASTORE_TYPE: 'kubernetes', KUBECONFIG: kubeconfig, NODENAME: 'cc-node', IP: '127.0.0.1/8' }),
    });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      await until(`a request from tabby-node (output: ${output.slice(-600)})`, () => requests.length > seen || child.exitCode !== null);
      assert.equal(child.exitCode, null, `tabby-node exited: ${output}`);
      await until('the cache condition', also);
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    return output;
  };

  // 1. No cache yet: the Kubernetes client was imported (its requests arrive), nothing but JSON log
  //    lines were printed (no experimental-feature warning), and the cache is written.
  const out1 = await agent(() => cacheFiles().length > 0);
  assert.ok(requests.some((r) => r.startsWith('GET /apis/crd.projectcalico.org/v1/')), requests.join(', '));
  for (const line of out1.split('\n').filter(Boolean)) assert.doesNotThrow(() => JSON.parse(line), `not a log line: ${line}`);
  assert.deepEqual(cacheFiles().length, 1);
  const file = join(cacheDir, cacheFiles()[0]!);
  assert.ok(validCache(file));

  // 2. With the cache: V8 accepts it, so the launcher does not write it again (same inode after the
  //    write delay has passed).
  const before = statSync(file);
  const startedAt = Date.now();
  await agent(() => Date.now() - startedAt > 5500); // an agent that never starts writes 5 s after the bundle’s top level
  assert.equal(statSync(file).ino, before.ino, 'an accepted cache is not rewritten');

  // 3. Corrupt payload (its SHA-1 no longer matches): ignored, the agent starts, the cache is replaced.
  const data = readFileSync(file);
  const mid = data.length >> 1;
  data[mid] = data[mid]! ^ 0xff;
  writeFileSync(file, data);
  const corrupt = statSync(file).ino;
  await agent(() => statSync(file).ino !== corrupt);
  assert.ok(validCache(file), 'the replaced cache is whole');

  // 4. A well-formed file whose payload is not V8's (V8 rejects it): the agent starts, the cache is replaced.
  const junk = randomBytes(4096);
  writeFileSync(file, Buffer.concat([createHash('sha1').update(junk).digest(), junk]));
  const rejected = statSync(file).ino;
  await agent(() => statSync(file).ino !== rejected);
  assert.ok(validCache(file));
  assert.deepEqual(cacheFiles().length, 1, 'no temp files left');
});

test("the launcher's V8 flags keep Node's code cache of its builtin modules valid", () => {
  buildOnce();
  // NODE_DEBUG_NATIVE=CODE_CACHE makes Node say, per builtin module, whether V8 accepted its embedded
  // code cache. A V8 flag on the shebang that enters V8's flag hash makes every one "rejected".
  const r = spawnSync(join(root, 'bin/tabby-node'), ['--help'], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, NODE_OPTIONS: '', NODE_DEBUG_NATIVE: 'CODE_CACHE', TABBY_CODE_CACHE: 'off' },
  });
  assert.equal(r.status, 0, `bin/tabby-node --help: ${r.stdout}${r.stderr}`);
  assert.match(r.stderr, /is accepted/, 'Node reports its builtin code cache (NODE_DEBUG_NATIVE)');
  const rejected = r.stderr.split('\n').filter((l) => /is rejected/.test(l));
  assert.deepEqual(rejected, [], 'builtin modules compiled from source under the shebang flags');
});

test("the launcher knows V8's default interrupt budget for this node (it restores it around the cache write)", () => {
  const launcher = readFileSync(join(root, 'bin/tabby-node'), 'utf8');
  const table = /const DEFAULT_INTERRUPT_BUDGET = \{([^}]*)\}/.exec(launcher)?.[1];
  assert.ok(table, 'DEFAULT_INTERRUPT_BUDGET table in bin/tabby-node');
  const known = new Map([...table.matchAll(/'([\d.]+)': (\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
  const v8Minor = process.versions.v8.split('.').slice(0, 2).join('.');
  const opts = spawnSync(process.execPath, ['--v8-options'], { encoding: 'utf8' }).stdout;
  const def = Number(/--interrupt-budget \(.*\)\n\s+type: int\s+default: --interrupt-budget=(\d+)/.exec(opts)?.[1]);
  assert.ok(def > 0, 'node --v8-options lists the interrupt budget default');
  // Another V8: add its default to the table (the launcher skips the raise for an unknown V8).
  assert.equal(known.get(v8Minor), def, `V8 ${v8Minor}: default interrupt budget ${def} not in the launcher's table`);
});
