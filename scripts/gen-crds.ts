// Writes crds/*.yaml from api/schemas.ts (run: node --import tsx scripts/gen-crds.ts).
import { mkdirSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderCrds } from '../api/crd.js';

const dir = new URL('../crds/', import.meta.url).pathname;
mkdirSync(dir, { recursive: true });
const files = renderCrds();
for (const name of readdirSync(dir)) {
  if (name.endsWith('.yaml') && !files.has(name)) unlinkSync(join(dir, name));
}
for (const [name, text] of files) writeFileSync(join(dir, name), text);
console.log(`gen-crds: wrote ${files.size} files to crds/`);
