import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findKind, kindInfo, KINDS } from '../../api/kinds.js';

test('kinds resolve by name, v1 name, plural and alias', () => {
  assert.equal(findKind('IPPool')?.plural, 'ippools');
  assert.equal(findKind('pools')?.kind, 'IPPool');
  assert.equal(findKind('IPAMConfig')?.kind, 'IPAMConfiguration');
  assert.equal(kindInfo('ipamconfiguration').v1Kind, 'IPAMConfig');
  assert.equal(findKind('nope'), undefined);
  assert.throws(() => kindInfo('nope'), /unknown resource kind/);
});

test('no alias names two kinds', () => {
  const seen = new Map<string, string>();
  for (const k of KINDS) {
    for (const a of [k.kind.toLowerCase(), k.plural, ...k.aliases]) {
      const prev = seen.get(a);
      assert.ok(prev === undefined || prev === k.kind, `${a} names both ${prev} and ${k.kind}`);
      seen.set(a, k.kind);
    }
  }
});
