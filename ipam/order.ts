/**
 * Block search order (Calico `randomBlockGenerator` + `determineSeed`): start at a pseudo-random
 * block chosen from a PRNG seeded by the hostname, then walk the pool sequentially, wrapping. The
 * same host always tries the same order (retries are stable), different hosts start at different
 * places (they rarely race for the same block).
 */
import { type Cidr, blockCount, nthBlock } from './cidr.js';

/** FNV-1a, 32 bit. */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(s, 'utf8')) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** mulberry32: a small, fast, seedable 32-bit PRNG. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** A uniform-enough bigint in [0, n) from a 32-bit PRNG. */
function randomBelow(next: () => number, n: bigint): bigint {
  let v = 0n;
  let range = 1n;
  while (range < n * 1024n) {
    v = (v << 32n) | BigInt(next());
    range <<= 32n;
  }
  return v % n;
}

/** Every block of the pool, in this host's order. Lazy: an IPv6 pool may hold 2^74 blocks. */
export function* blockOrder(pool: Cidr, blockSize: number, hostname: string): Generator<Cidr> {
  const n = blockCount(pool, blockSize);
  const start = randomBelow(prng(fnv1a32(hostname)), n);
  for (let i = 0n; i < n; i++) yield nthBlock(pool, blockSize, (start + i) % n);
}

/** Deterministic shuffle (Fisher–Yates) seeded by the hostname: borrowing order over existing blocks. */
export function seededShuffle<T>(items: readonly T[], hostname: string): T[] {
  const out = items.slice();
  const next = prng(fnv1a32(hostname) ^ 0x5bd1e995);
  for (let i = out.length - 1; i > 0; i--) {
    const j = next() % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
