// Loads golden/*.hex fixtures: '#' lines are comments (the command that produced the bytes).
import { readFileSync } from 'node:fs';

const dir = new URL('./golden/', import.meta.url);

export function loadHex(name: string): Buffer {
  const text = readFileSync(new URL(`${name}.hex`, dir), 'utf8');
  const hex = text
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .join('')
    .replace(/\s+/g, '');
  return Buffer.from(hex, 'hex');
}
