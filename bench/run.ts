/**
 * `npm run bench [-- filter]`: runs every benchmark in bench/ (each prints its own numbers and
 * ratios against the reference tool measured in the same run). Benchmarks needing root or
 * daemons print why they are skipped.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const filters = process.argv.slice(2);
const benches = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.startsWith('_'))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();

const env = { ...process.env };
delete env.NODE_EXTRA_CA_CERTS; // ~115 ms per Node start on this machine; it would skew exec'd tools
let failed = 0;
for (const f of benches) {
  console.log(`\n=== bench/${f}`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(here, f)], { stdio: 'inherit', env });
  if (r.status !== 0) {
    failed++;
    console.log(`=== bench/${f} exited with ${r.status ?? r.signal}`);
  }
}
console.log(`\n${benches.length - failed} benchmarks ran, ${failed} failed; record numbers in bench/RESULTS.md`);
process.exit(failed ? 1 : 0);
