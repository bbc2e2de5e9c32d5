import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { randomBytesSync } from '../../cni/plugin/names.js';
import { sha1Hex } from '../../cni/plugin/sha1.js';

const ref = (s: string) => createHash('sha1').update(s).digest('hex');

test('sha1Hex: FIPS vectors, every length around the 55/56/64-byte padding edges, random strings', () => {
  assert.equal(sha1Hex(''), 'da39a3ee5e6b4b0d3255bfef95601890afd80709');
  assert.equal(sha1Hex('abc'), 'a9993e364706816aba3e25717850c26c9cd0d89d');
  assert.equal(sha1Hex('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'), '84983e441c3bd26ebaae4aa1f95129e5e54670f1');
  for (let n = 0; n < 200; n++) {
    const s = randomBytes(n).toString('latin1').slice(0, n);
    assert.equal(sha1Hex(s), ref(s), `length ${n}`);
  }
  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (s) => sha1Hex(s) === ref(s)));
});

test('randomBytesSync: the asked length, not constant', () => {
  assert.equal(randomBytesSync(6).length, 6);
  assert.notDeepEqual(randomBytesSync(16), randomBytesSync(16));
});
