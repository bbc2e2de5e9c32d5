#!/usr/bin/env node
// Bundles every executable entry point with esbuild into dist/bin/<name>.mjs, except tabby-node,
// which is one CommonJS file dist/bin/tabby-node.cjs (see CJS below).
// bin/<name> are tiny committed launchers that import (tabby-node: require) these bundles.
// Bundles keep npm packages external (they resolve from node_modules at run time), so an
// executable only pays for the modules it actually imports.
import { build } from 'esbuild';
import { chmodSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const entries = {
  tabbyctl: 'ctl/main.ts',
  'tabby-node': 'node/main.ts',
  tabby: 'cni/plugin-main.ts',
  'tabby-ipam': 'cni/ipam-main.ts',
  'tabby-bgp': 'bgp/daemon-main.ts',
};

// Build into a private temp dir, then move each file into dist/bin with rename (atomic per file).
// Tests that run concurrently may build at the same moment while others exec the binaries: no
// file ever disappears or is half-written. Chunk names carry content hashes, so stale chunks (from
// other source versions) are removed after the move.
const outdir = join(root, 'dist', `.bin-${process.pid}`);
const finaldir = join(root, 'dist/bin');
rmSync(outdir, { recursive: true, force: true });
mkdirSync(join(finaldir, 'chunks'), { recursive: true });
const started = Date.now();
// Code splitting: a dynamic `import()` (e.g. the datastore backend chosen at run time) becomes its own
// chunk, so its npm packages load only when that import runs. Without splitting esbuild hoists every
// external package of every lazy module to the top of the bundle.
// The CNI plugin `tabby` is exec'd per pod, so it is built on its own: its startup path is one file
// (no chunks shared with the other executables), and only its lazy imports are chunks.
const SOLO = new Set(['tabby']);
// tabby-node starts once per node, and a 100-node mesh on a small machine is CPU-bound on those starts
// (issue 6, bench/results/cjsboot.md): Node's ESM loader costs a fixed amount per file, and the split
// ESM build gave the agent's start path ≈ 40 files. So the agent is one CommonJS file, no chunks:
// - its lazily imported modules are inlined, and esbuild wraps each in an init function that runs on
//   the first `import()`, so their top-level code and their npm packages (`require` calls inside the
//   init function) still load only when used. V8 only pre-parses the functions not called.
// - a dynamic `import()` of an npm package stays a real `import()` (target node20): the ESM-only
//   @kubernetes/client-node loads through Node's ESM loader, as CommonJS `import()` allows.
// - `import.meta.url` is the bundle's own file URL, computed from __filename in the banner.
const CJS = new Set(['tabby-node']);
const options = {
  outdir,
  entryNames: '[name]',
  outExtension: { '.js': '.mjs' },
  splitting: true,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  packages: 'external',
  sourcemap: 'linked',
  logLevel: 'warning',
  banner: { js: "import { createRequire as __tabbyCreateRequire } from 'node:module'; const require = __tabbyCreateRequire(import.meta.url);" },
};

/**
 * tabby-bgp's config validator as ajv standalone code (bgp/daemon/config-validate.ts explains):
 * the schema and ajv options are taken from the source module itself, compiled here once, and the
 * generated function replaces that module in the bundle, so the daemon does not load ajv at start.
 */
async function bgpConfigValidatorCode() {
  const tmp = join(root, 'dist', `.bgp-config-schema-${process.pid}.mjs`);
  const stdin = { contents: "export { CONFIG_SCHEMA } from './config-schema.ts'; export { CONFIG_AJV_OPTIONS } from './config-validate.ts';", resolveDir: join(root, 'bgp/daemon'), loader: 'ts' };
  await build({ stdin, bundle: true, format: 'esm', platform: 'node', packages: 'external', outfile: tmp, logLevel: 'warning' });
  try {
    const { CONFIG_SCHEMA, CONFIG_AJV_OPTIONS } = await import(pathToFileURL(tmp).href);
    const { Ajv } = await import('ajv');
    const addFormats = (await import('ajv-formats')).default;
    const standalone = (await import('ajv/dist/standalone/index.js')).default;
    const ajv = new Ajv({ ...CONFIG_AJV_OPTIONS, code: { source: true, esm: true } });
    (addFormats.default ?? addFormats)(ajv);
    const code = (standalone.default ?? standalone)(ajv, ajv.compile(CONFIG_SCHEMA));
    return `${code}\nexport function configValidator() { return Promise.resolve(validate); }\n`;
  } finally {
    rmSync(tmp, { force: true });
  }
}
const bgpConfigValidator = {
  name: 'bgp-config-validator',
  setup(b) {
    let code;
    b.onLoad({ filter: /[\\/]bgp[\\/]daemon[\\/]config-validate\.ts$/ }, async () => ({ contents: (code ??= await bgpConfigValidatorCode()), loader: 'js', resolveDir: join(root, 'bgp/daemon') }));
  },
};
options.plugins = [bgpConfigValidator];

/**
 * One CommonJS file; a warning (e.g. an `import.meta` property other than url, left empty) fails the build.
 * bin/tabby-node compiles it with a V8 code cache, and in Node 20 an import() in a script compiled from a
 * code cache fails ("A dynamic import callback was not specified": the cached script loses its host-defined
 * options). So every `import("<package or builtin>")` becomes `__tabbyImport("…")`: the launcher passes its
 * own import() in as `__tabbyLauncherImport`; loaded by plain require(), the bundle uses its own import().
 */
async function buildCjs(name) {
  const res = await build({
    ...options,
    entryPoints: { [name]: join(root, entries[name]) },
    outExtension: { '.js': '.cjs' },
    splitting: false,
    format: 'cjs',
    define: { 'import.meta.url': '__tabbyImportMetaUrl' },
    banner: {
      js: [
        "'use strict';",
        "var __tabbyImportMetaUrl = require('node:url').pathToFileURL(__filename).href;",
        "var __tabbyImport = typeof __tabbyLauncherImport === 'function' ? __tabbyLauncherImport : (specifier) => import(specifier);",
      ].join('\n'),
    },
    write: false,
    metafile: true,
  });
  if (res.warnings.length) throw new Error(`${name}: ${res.warnings.length} esbuild warning(s) in the CommonJS build (printed above)`);
  const [out, more] = Object.entries(res.metafile.outputs).filter(([file]) => file.endsWith('.cjs'));
  if (!out || more) throw new Error(`${name}: expected one .cjs output`);
  const dynamic = out[1].imports.filter((i) => i.kind === 'dynamic-import');
  if (dynamic.some((i) => !i.external)) throw new Error(`${name}: a dynamic import was bundled as a chunk`);
  for (const f of res.outputFiles) {
    let text = f.text;
    if (f.path.endsWith('.cjs')) {
      let n = 0;
      text = text.replace(/(?<![\w$.])import\("/g, () => (n++, '__tabbyImport("'));
      // The banner's fallback is the one import() left; anything else (a computed specifier, the text
      // `import("` inside a string) needs a look before this build can ship.
      const left = (text.match(/(?<![\w$.])import\(/g) ?? []).length;
      if (n !== dynamic.length || left !== 1) throw new Error(`${name}: rewrote ${n} import("…") for ${dynamic.length} dynamic imports, ${left} import( left (expected 1)`);
      // esbuild escapes non-ASCII characters in code (charset ascii) but not in the comments it keeps; one
      // such character makes V8 hold the whole source (kept for lazy compilation) as UTF-16: 2 bytes a
      // character instead of 1, ≈ 0.8 MB per agent. So they are escaped in the comments too.
      text = text.replace(/[^\0-\x7f]/gu, (c) => `\\u{${c.codePointAt(0).toString(16)}}`);
    }
    mkdirSync(dirname(f.path), { recursive: true });
    writeFileSync(f.path, text);
  }
}

const pick = (solo) => Object.fromEntries(Object.entries(entries).filter(([name]) => SOLO.has(name) === solo && !CJS.has(name)).map(([name, entry]) => [name, join(root, entry)]));
await Promise.all([
  build({ ...options, entryPoints: pick(false), chunkNames: 'chunks/[name]-[hash]' }),
  ...[...SOLO].map((name) => build({ ...options, entryPoints: { [name]: join(root, entries[name]) }, chunkNames: `chunks/${name}-[name]-[hash]` })),
  ...[...CJS].map(buildCjs),
]);
const fresh = new Set();
for (const sub of ['', 'chunks']) {
  for (const f of readdirSync(join(outdir, sub), { withFileTypes: true })) {
    if (!f.isFile()) continue;
    renameSync(join(outdir, sub, f.name), join(finaldir, sub, f.name));
    if (sub) fresh.add(f.name);
  }
}
rmSync(outdir, { recursive: true, force: true });
// The ESM bundle of an executable that is now built as CommonJS (from an older build) would only mislead.
for (const name of CJS) for (const ext of ['.mjs', '.mjs.map']) rmSync(join(finaldir, `${name}${ext}`), { force: true });
// V8 code caches of earlier bundles (bin/tabby-node writes them; keyed by content, so only disk space).
rmSync(join(finaldir, 'v8-cache'), { recursive: true, force: true });
for (const f of readdirSync(join(finaldir, 'chunks'))) {
  if (!fresh.has(f)) rmSync(join(finaldir, 'chunks', f), { force: true });
}
for (const name of Object.keys(entries)) {
  const launcher = join(root, 'bin', name);
  if (!existsSync(launcher)) throw new Error(`missing launcher ${launcher}`);
  chmodSync(launcher, 0o755);
}
console.log(`built ${Object.keys(entries).length} executables into dist/bin in ${Date.now() - started} ms`);
