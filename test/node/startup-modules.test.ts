/**
 * What tabby-node loads at start: the esbuild bundle's static import graph (as scripts/build.mjs
 * builds it, with code splitting) must not reach the gRPC etcd client or the ajv validator; those
 * are dynamic imports only (bench/results/etcdwatch.md: ≈ 25 and ≈ 10 MB per agent). Nor yaml,
 * the Kubernetes client or prom-client, and pino is not imported at all (bench/results/startup.md).
 */
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

test('tabby-node: etcd3, grpc, ajv, yaml, prom-client are not on the static import path of the bundle, pino not at all', async () => {
  const root = fileURLToPath(new URL('../..', import.meta.url));
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
  for (const pkg of ['etcd3', '@grpc/grpc-js', 'ajv', 'ajv-formats', '@kubernetes/client-node', 'yaml', 'prom-client']) {
    assert.ok(![...externals].some((e) => e === pkg || e.startsWith(`${pkg}/`)), `${pkg} is imported statically: ${[...externals].join(', ')}`);
  }
  assert.ok(![...sources].some((s) => s.endsWith('api/validate.ts')), 'api/validate.ts (ajv) is on the startup path');
  assert.ok(![...sources].some((s) => s.endsWith('datastore/etcd.ts')), 'datastore/etcd.ts (gRPC backend) is on the startup path');
  assert.ok(sources.has('node/main.ts') && sources.has('node/agent.ts'), `the walk reached the agent: ${[...sources].slice(0, 5).join(', ')}`);
});
