/**
 * The Docker image cannot be built here (no engine), so this checks its inputs: what the Dockerfile
 * copies exists after `npm run build`, the bundles import only production dependencies (the image
 * prunes dev ones), the entrypoints start, and .dockerignore keeps local builds out of the context.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, readdirSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { ROOT } from '../../scripts/gen-manifests.js';

const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string>; dependencies: Record<string, string> };
const ENTRIES = Object.keys(pkg.bin);
/** dist/bin/<entry>.mjs, or .cjs for tabby-node (scripts/build.mjs builds it as one CommonJS file). */
const bundleOf = (e: string): string => join(ROOT, 'dist/bin', `${e}.${e === 'tabby-node' ? 'cjs' : 'mjs'}`);

interface Stage {
  from: string;
  name: string | undefined;
  lines: string[];
}

/** Dockerfile → stages with their instructions (continuation lines joined, comments dropped). */
function stages(text: string): Stage[] {
  const joined = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const out: Stage[] = [];
  for (const l of joined) {
    const m = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(l);
    if (m) out.push({ from: m[1]!, name: m[2], lines: [] });
    else out.at(-1)?.lines.push(l);
  }
  return out;
}

function ensureBuilt(): void {
  if (ENTRIES.every((e) => existsSync(bundleOf(e)))) return;
  execFileSync(process.execPath, [join(ROOT, 'scripts/build.mjs')], { cwd: ROOT, stdio: 'pipe' });
}

test('the Dockerfile is multi-stage: node:20 build, slim runtime with iproute2 and nftables, entrypoint tabby-node', () => {
  const [build, runtime, ...rest] = stages(dockerfile);
  assert.equal(rest.length, 0);
  assert.match(build!.from, /^node:20/);
  assert.equal(build!.name, 'build');
  const buildText = build!.lines.join('\n');
  for (const step of [/npm ci\b/, /npm run build\b/, /npm prune --omit=dev\b/]) assert.match(buildText, step);
  assert.match(runtime!.from, /^node:20[\w.-]*-slim$/);
  const runText = runtime!.lines.join('\n');
  assert.match(runText, /apt-get install[^\n]*\biproute2\b/);
  assert.match(runText, /apt-get install[^\n]*\bnftables\b/);
  // portmap for hosts without it (install-cni's TABBY_CNI_EXTRA_PLUGINS_DIR default /usr/lib/cni).
  assert.match(runText, /apt-get install[^\n]*\bcontainernetworking-plugins\b/);
  assert.match(runText, /^ENTRYPOINT \["tabby-node"\]$/m);
  assert.match(runText, /^USER root$/m);
  // install-cni looks for the bundles in TABBY_APP_DIR: the runtime's WORKDIR.
  const workdir = /^WORKDIR (\S+)$/m.exec(runText)?.[1];
  assert.ok(workdir);
  assert.match(runText, new RegExp(`TABBY_APP_DIR=${workdir}\\b`));
  assert.match(runText, new RegExp(`PATH=${workdir}/bin:`));
});

test('everything the runtime stage copies exists after npm run build', () => {
  ensureBuilt();
  const runtime = stages(dockerfile)[1]!;
  const copies = runtime.lines.filter((l) => l.startsWith('COPY'));
  assert.ok(copies.length >= 4);
  const copied: string[] = [];
  for (const c of copies) {
    const m = /^COPY --from=build \/src\/(\S+) (\S+)$/.exec(c);
    assert.ok(m, `unexpected COPY form: ${c}`);
    assert.ok(existsSync(join(ROOT, m[1]!)), `${m[1]} does not exist after the build`);
    copied.push(m[1]!);
  }
  assert.deepEqual(copied.sort(), ['bin', 'dist', 'node_modules', 'package.json']);
  for (const e of ENTRIES) {
    assert.ok(existsSync(bundleOf(e)), `${bundleOf(e)} missing`);
    accessSync(join(ROOT, 'bin', e), constants.X_OK);
  }
});

/** npm package names a bundle imports or requires (builtins left out). */
function bundleImports(text: string): string[] {
  const builtins = new Set(builtinModules);
  const names = new Set<string>();
  for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*)["']([^"'./][^"']*)["']/g)) {
    const spec = m[1]!;
    if (spec.startsWith('node:') || builtins.has(spec)) continue;
    names.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
  }
  return [...names].sort();
}

test('the bundles import only production dependencies (the image prunes dev ones)', () => {
  assert.deepEqual(bundleImports('import { a } from "yaml"; await import(\'@kubernetes/client-node/x\'); require("koffi"); from "node:fs"; from "./x.js"; require("fs")'), [
    '@kubernetes/client-node',
    'koffi',
    'yaml',
  ]);
  ensureBuilt();
  const bad: string[] = [];
  // Entry bundles (tabby-node's is CommonJS) and the chunks the code-splitting build puts in dist/bin/chunks.
  const files = (readdirSync(join(ROOT, 'dist/bin'), { recursive: true }) as string[]).filter((n) => /\.[cm]js$/.test(n));
  assert.ok(files.length >= ENTRIES.length);
  for (const f of files) {
    for (const name of bundleImports(readFileSync(join(ROOT, 'dist/bin', f), 'utf8'))) {
      if (!(name in pkg.dependencies)) bad.push(`${f}: ${name}`);
    }
  }
  assert.deepEqual(bad, [], 'move these packages to "dependencies" or bundle them');
});

test('every entrypoint starts from its bundle (no missing build, no unresolved module)', () => {
  ensureBuilt();
  const CNI_PLUGINS = new Set(['tabby', 'tabby-ipam']);
  for (const e of ENTRIES) {
    // CNI plugins answer CNI_COMMAND=VERSION; the other commands --help.
    const cni = CNI_PLUGINS.has(e);
    const r = spawnSync(join(ROOT, 'bin', e), cni ? [] : ['--help'], {
      cwd: ROOT,
      input: '',
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, CNI_COMMAND: cni ? 'VERSION' : '' },
    });
    assert.equal(r.error, undefined, `${e}: ${r.error?.message}`);
    assert.notEqual(r.status, null, `${e} did not exit (signal ${r.signal})`);
    const out = `${r.stdout}${r.stderr}`;
    assert.doesNotMatch(out, /not built yet|ERR_MODULE_NOT_FOUND|Cannot find (module|package)/, `${e}: ${out}`);
    // A working command exits 0 on --help; an executable whose issue has not landed says so (exit 3).
    assert.ok(r.status === 0 || (r.status === 3 && /not implemented yet/.test(out)), `${e} --help exited ${r.status}: ${out}`);
    if (cni && r.status === 0) assert.ok((JSON.parse(r.stdout) as { supportedVersions: string[] }).supportedVersions.includes('1.0.0'), `${e}: ${r.stdout}`);
  }
});

test('.dockerignore keeps node_modules, dist and .git out of the build context', () => {
  const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  for (const p of ['node_modules', 'dist', '.git']) assert.ok(ignored.includes(p), `.dockerignore lacks ${p}`);
  // The build stage needs the sources and the lockfile, so they must not be ignored.
  for (const p of ['package.json', 'package-lock.json', 'scripts', 'lib', 'node', 'cni']) assert.ok(!ignored.includes(p), `.dockerignore must not exclude ${p}`);
});
