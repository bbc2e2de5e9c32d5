/** JsonObjectSplitter: the framing of etcd's gateway watch stream, fed in arbitrary chunk sizes. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { JsonObjectSplitter } from '../../datastore/json-stream.js';

const messages = [
  { result: { header: { revision: '7' }, created: true } },
  { result: { events: [{ kv: { key: 'L2Evd', value: 'eyJ4Ijoie30ifQ==', mod_revision: '8' } }, { type: 'DELETE', kv: { key: 'L2Iv' } }] } },
  { result: { note: 'braces } { and "quotes" and \\ in strings', unicode: 'é😀', list: [[1], { a: [] }] } },
  { result: { canceled: true, compact_revision: '5' } },
];

function feed(bytes: Buffer, sizes: (i: number) => number): unknown[] {
  const s = new JsonObjectSplitter();
  const out: unknown[] = [];
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = Math.max(1, sizes(i));
    out.push(...s.push(bytes.subarray(at, at + n)));
    at += n;
  }
  assert.equal(s.pending, false);
  return out;
}

test('newline-delimited and concatenated objects come out whole, whatever the chunking', () => {
  for (const sep of ['\n', '', '\r\n', ' \n\n']) {
    const bytes = Buffer.from(messages.map((m) => JSON.stringify(m)).join(sep) + sep, 'utf8');
    assert.deepEqual(feed(bytes, () => bytes.length), messages, `one chunk, separator ${JSON.stringify(sep)}`);
    assert.deepEqual(feed(bytes, () => 1), messages, `byte by byte, separator ${JSON.stringify(sep)}`);
    let seed = 7;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648) % 13;
    assert.deepEqual(feed(bytes, rnd), messages, `random chunks, separator ${JSON.stringify(sep)}`);
  }
});

test('an unfinished object stays pending until the rest arrives', () => {
  const s = new JsonObjectSplitter();
  assert.deepEqual(s.push(Buffer.from('{"result":{"a":"}')), []);
  assert.equal(s.pending, true);
  assert.deepEqual(s.push(Buffer.from('"}}\n{"b":1')), [{ result: { a: '}' } }]);
  assert.equal(s.pending, true);
  assert.deepEqual(s.push(Buffer.from('}')), [{ b: 1 }]);
  assert.equal(s.pending, false);
});

test('garbage between objects is a SyntaxError', () => {
  assert.throws(() => new JsonObjectSplitter().push(Buffer.from('{"a":1} x')), SyntaxError);
  assert.throws(() => new JsonObjectSplitter().push(Buffer.from('{"a":}')), SyntaxError);
});

test('property: any objects (strings with quotes, backslashes, braces, unicode), any chunking', () => {
  const text = fc.string({ unit: fc.constantFrom('a', '"', '\\', '{', '}', '[', ']', 'é', '😀', ' ', '\n', '/') });
  const value = fc.letrec((tie) => ({
    v: fc.oneof({ depthSize: 'small' }, text, fc.integer(), fc.boolean(), fc.constant(null), fc.array(tie('v'), { maxLength: 3 }), fc.dictionary(text, tie('v'), { maxKeys: 3 })),
  })).v;
  const objects = fc.array(fc.dictionary(text, value, { maxKeys: 4 }), { minLength: 1, maxLength: 4 });
  fc.assert(
    fc.property(objects, fc.constantFrom('', '\n'), fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 8 }), (objs, sep, sizes) => {
      const bytes = Buffer.from(objs.map((o) => JSON.stringify(o)).join(sep), 'utf8');
      // Compared as JSON text: fast-check's dictionaries may have a null prototype, parsed ones do not.
      assert.deepEqual(feed(bytes, (i) => sizes[i % sizes.length]!).map((o) => JSON.stringify(o)), objs.map((o) => JSON.stringify(o)));
    }),
    { numRuns: 300 },
  );
});
