#!/usr/bin/env node
// Finds test files and runs them with node's built-in test runner (through tsx for TypeScript).
// Usage: node scripts/run-tests.mjs [--unit] [path-filter ...]
//   --unit       only tests that need neither root nor external daemons (files not named *.int.test.ts)
//   path-filter  only files whose path contains one of these strings
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const unitOnly = args.includes('--unit');
const filters = args.filter((a) => !a.startsWith('--'));

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out;
}

let files = walk(join(root, 'test'), []).sort();
if (unitOnly) files = files.filter((f) => !f.endsWith('.int.test.ts'));
if (filters.length) files = files.filter((f) => filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('run-tests: no test files matched');
  process.exit(1);
}

const concurrency = process.env.TABBY_TEST_CONCURRENCY ?? '3';
const env = { ...process.env };
delete env.NODE_EXTRA_CA_CERTS; // adds ~115 ms to every child node process (platform.md)
const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files],
  { cwd: root, stdio: 'inherit', env },
);
process.exit(r.status ?? 1);
