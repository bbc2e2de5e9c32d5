#!/usr/bin/env node
// Bundles every executable entry point with esbuild into dist/bin/<name>.mjs.
// bin/<name> are tiny committed launchers that import these bundles.
// Bundles keep npm packages external (they resolve from node_modules at run time), so an
// executable only pays for the modules it actually imports.
import { build } from 'esbuild';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const entries = {
  tabbyctl: 'ctl/main.ts',
  'tabby-node': 'node/main.ts',
  tabby: 'cni/plugin-main.ts',
  'tabby-ipam': 'cni/ipam-main.ts',
  'tabby-bgp': 'bgp/daemon-main.ts',
};

mkdirSync(join(root, 'dist/bin'), { recursive: true });
const started = Date.now();
await Promise.all(
  Object.entries(entries).map(async ([name, entry]) => {
    await build({
      entryPoints: [join(root, entry)],
      outfile: join(root, 'dist/bin', `${name}.mjs`),
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'esm',
      packages: 'external',
      sourcemap: 'linked',
      logLevel: 'warning',
      banner: { js: "import { createRequire as __tabbyCreateRequire } from 'node:module'; const require = __tabbyCreateRequire(import.meta.url);" },
    });
    const launcher = join(root, 'bin', name);
    if (!existsSync(launcher)) throw new Error(`missing launcher ${launcher}`);
    chmodSync(launcher, 0o755);
  }),
);
console.log(`built ${Object.keys(entries).length} executables into dist/bin in ${Date.now() - started} ms`);
