/**
 * What tabby-bgp loads at start (bench/results/bgpfib.md): the bundle's static import graph must
 * not reach koffi/netlink (loaded only with fib.install), yaml (only for a YAML file), the Calico
 * resource validation (only with filters) or ajv (the bundle has the schema as standalone code).
 * And the bundled validator still rejects a bad file with the path of the problem.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { build, type Metafile } from 'esbuild';

const root = fileURLToPath(new URL('../../..', import.meta.url));

/** Sources and external packages reachable from the entry through static imports only. */
function staticGraph(meta: Metafile, entry: string): { sources: Set<string>; packages: Set<string> } {
  const sources = new Set<string>();
  const packages = new Set<string>();
  const seen = new Set<string>();
  const todo = Object.keys(meta.outputs).filter((o) => meta.outputs[o]?.entryPoint === entry);
  for (let o = todo.pop(); o !== undefined; o = todo.pop()) {
    if (seen.has(o)) continue;
    seen.add(o);
    const out = meta.outputs[o]!;
    Object.keys(out.inputs).forEach((i) => sources.add(i));
    for (const imp of out.imports) {
      if (imp.kind !== 'import-statement') continue; // dynamic imports load on demand
      if (imp.external) packages.add(imp.path);
      else todo.push(imp.path);
    }
  }
  return { sources, packages };
}

test('tabby-bgp: koffi, netlink, yaml, ajv and the resource validation are not loaded at start', async () => {
  const res = await build({
    entryPoints: { 'tabby-bgp': join(root, 'bgp/daemon-main.ts') },
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    outdir: join(tmpdir(), 'tabby-bgp-startup'), // nothing is written
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  const { sources, packages } = staticGraph(res.metafile, 'bgp/daemon-main.ts');
  assert.ok(sources.has('bgp/daemon.ts') && sources.has('bgp/speaker.ts'), `the walk reached the daemon: ${[...sources].slice(0, 5).join(', ')}`);
  for (const pkg of ['koffi', 'yaml', 'ajv', 'ajv-formats']) assert.ok(![...packages].some((p) => p === pkg || p.startsWith(`${pkg}/`)), `${pkg} is imported statically: ${[...packages].join(', ')}`);
  // lib/libc.ts is reachable (MD5/TTL sockopts) but requires koffi only on its first call.
  for (const src of ['netlink/socket.ts', 'bgp/fib/netlink.ts', 'api/validate.ts']) assert.ok(!sources.has(src), `${src} is on the startup path`);
});

test('tabby-bgp bundle: the build-time config validator rejects a bad file like ajv does', { timeout: 60_000 }, async (t) => {
  const b = spawnSync(process.execPath, [join(root, 'scripts/build.mjs')], { cwd: root, encoding: 'utf8' });
  assert.equal(b.status, 0, b.stderr);
  const dir = await mkdtemp(join(tmpdir(), 'tabby-bgp-startup-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'bad.json');
  await writeFile(file, JSON.stringify({ routerId: '10.0.0', asNumber: 0, listen: { port: 0 } }));
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const r = spawnSync(process.execPath, [join(root, 'bin/tabby-bgp'), '-c', file], { encoding: 'utf8', env, timeout: 30_000 });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /\/routerId must match format "ipv4"; \/asNumber must be >= 1/);
});
