#!/usr/bin/env -S node --max-semi-space-size=1 --single-threaded-gc --v8-pool-size=1
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname } from 'node:path';
import { createHash } from 'node:crypto';
import vm from 'node:vm';
const file = fileURLToPath(new URL('../dist/bin/tabby-node.cjs', import.meta.url));
const mode = process.env.X_MODE ?? 'require';
if (mode === 'require') createRequire(import.meta.url)(file);
else {
  const src = readFileSync(file, 'utf8');
  const cacheDir = process.env.X_CACHE_DIR;
  const key = cacheDir ? createHash('sha1').update(src).digest('hex').slice(0, 16) : '';
  const cacheFile = `${cacheDir}/cache-${key}`;
  let cachedData;
  if (cacheDir) { try { cachedData = readFileSync(cacheFile); } catch {} }
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${src}\n})`, { filename: file, cachedData, importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER });
  if (process.env.X_DEBUG) process.stderr.write(`cache ${cachedData ? cachedData.length : 'none'} rejected=${script.cachedDataRejected}\n`);
  const fn = script.runInThisContext();
  const module = { exports: {} };
  fn.call(module.exports, module.exports, createRequire(file), module, file, dirname(file));
  if (cacheDir && (!cachedData || script.cachedDataRejected)) {
    const write = () => { const tmp = `${cacheFile}.${process.pid}`; writeFileSync(tmp, script.createCachedData()); renameSync(tmp, cacheFile); };
    if (process.env.X_WRITE === 'late') setTimeout(write, Number(process.env.X_WRITE_MS ?? 1500)).unref();
    else write();
  }
}
