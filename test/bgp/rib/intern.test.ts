import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttrInterner, attrKey } from '../../../bgp/rib/intern.js';

test('same attributes in any property order share one frozen object', () => {
  const i = new AttrInterner();
  const a = i.intern({ origin: 0, nextHop: '10.0.0.1', localPref: 100, asPath: [{ type: 2, asns: [1] }] });
  const b = i.intern({ asPath: [{ type: 2, asns: [1] }], localPref: 100, nextHop: '10.0.0.1', origin: 0, med: undefined });
  assert.equal(a, b);
  assert.ok(Object.isFrozen(a));
  assert.ok(Object.isFrozen(a.asPath));
  assert.throws(() => (a.asPath as Array<unknown>).push(1));
  assert.equal(i.size, 1);
  assert.notEqual(i.intern({ origin: 1 }), a);
  assert.equal(i.size, 2);
});

test('reference counting forgets unused sets; re-interning a released object reuses it', () => {
  const i = new AttrInterner();
  const a = i.intern({ origin: 0 });
  i.intern({ origin: 0 });
  i.release(a);
  assert.equal(i.size, 1);
  i.release(a);
  assert.equal(i.size, 0);
  assert.equal(i.intern(a), a);
  assert.equal(i.size, 1);
});

test('keys distinguish community order, unknown attribute bytes and flags', () => {
  assert.notEqual(attrKey({ communities: [1, 2] }), attrKey({ communities: [2, 1] }));
  assert.notEqual(
    attrKey({ unknown: [{ type: 240, flags: 0xc0, value: new Uint8Array([1]) }] }),
    attrKey({ unknown: [{ type: 240, flags: 0xe0, value: new Uint8Array([1]) }] }),
  );
});

test('100k routes over 4 attribute sets keep 4 objects', () => {
  const i = new AttrInterner();
  const objs = new Set();
  for (let n = 0; n < 100_000; n++) objs.add(i.intern({ origin: 0, nextHop: `10.0.0.${n % 4}`, asPath: [{ type: 2, asns: [64512] }] }));
  assert.equal(objs.size, 4);
  assert.equal(i.size, 4);
});
