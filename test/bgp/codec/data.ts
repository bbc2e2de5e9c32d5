/** Locates the shared BGP test data (never copied into the repo). */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export function sharedBgpData(sub: string): string | undefined {
  for (const base of [path.resolve(repoRoot, '../shared/testdata/bgp'), '/work/shared/testdata/bgp']) {
    const p = path.join(base, sub);
    if (existsSync(p)) return p;
  }
  return undefined;
}
