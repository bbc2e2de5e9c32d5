import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { blockCidrFromName, blockName, canonicalCidr, isMasked, parseCidr, parseSelector } from '../../api/index.js';

const v4Cidr = fc.tuple(fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 }), fc.integer({ min: 0, max: 32 })).map(([o, p]) => `${o.join('.')}/${p}`);
const v6Cidr = fc
  .tuple(fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }), fc.integer({ min: 0, max: 128 }))
  .map(([g, p]) => `${g.map((x) => x.toString(16)).join(':')}/${p}`);

test('blockName and blockCidrFromName are inverse for any IPv4/IPv6 CIDR', () => {
  fc.assert(
    fc.property(fc.oneof(v4Cidr, v6Cidr), (cidr) => {
      const c = parseCidr(cidr);
      assert.ok(c, cidr);
      const canonical = canonicalCidr(c);
      assert.ok(isMasked(parseCidr(canonical)!));
      const name = blockName(cidr);
      assert.match(name, /^[0-9a-f-]+$/);
      assert.equal(blockCidrFromName(name), canonical);
    }),
    { numRuns: 500 },
  );
});

type Labels = Record<string, string>;
const key = fc.constantFrom('a', 'b', 'c');
const val: fc.Arbitrary<string> = fc.constantFrom('x', 'y');
const labels: fc.Arbitrary<Labels> = fc.dictionary(key, val, { maxKeys: 3 });

// A random selector text together with a reference evaluator.
type Gen = { text: string; eval: (l: Labels) => boolean };
const { expr } = fc.letrec<{ expr: Gen; leaf: Gen }>((tie) => ({
  leaf: fc.oneof(
    fc.constant<Gen>({ text: 'all()', eval: () => true }),
    key.map<Gen>((k) => ({ text: `has(${k})`, eval: (l) => k in l })),
    fc.tuple(key, val).map<Gen>(([k, v]) => ({ text: `${k} == '${v}'`, eval: (l) => l[k] === v })),
    fc.tuple(key, val).map<Gen>(([k, v]) => ({ text: `${k} != "${v}"`, eval: (l) => l[k] !== v })),
    fc.tuple(key, fc.array(val, { maxLength: 2 })).map<Gen>(([k, vs]) => ({ text: `${k} in {${vs.map((v) => `'${v}'`).join(',')}}`, eval: (l) => l[k] !== undefined && vs.includes(l[k]) })),
    fc.tuple(key, fc.array(val, { maxLength: 2 })).map<Gen>(([k, vs]) => ({ text: `${k} not in {${vs.map((v) => `'${v}'`).join(', ')}}`, eval: (l) => l[k] === undefined || !vs.includes(l[k]) })),
  ),
  expr: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    tie('leaf') as fc.Arbitrary<Gen>,
    fc.tuple(tie('expr') as fc.Arbitrary<Gen>, tie('expr') as fc.Arbitrary<Gen>).map<Gen>(([a, b]) => ({ text: `(${a.text}) && (${b.text})`, eval: (l) => a.eval(l) && b.eval(l) })),
    fc.tuple(tie('expr') as fc.Arbitrary<Gen>, tie('expr') as fc.Arbitrary<Gen>).map<Gen>(([a, b]) => ({ text: `(${a.text})||(${b.text})`, eval: (l) => a.eval(l) || b.eval(l) })),
    (tie('expr') as fc.Arbitrary<Gen>).map<Gen>((a) => ({ text: `!(${a.text})`, eval: (l) => !a.eval(l) })),
  ),
}));

test('selectors evaluate like a reference evaluator, and their canonical text means the same', () => {
  fc.assert(
    fc.property(expr, labels, (g, l) => {
      const s = parseSelector(g.text);
      assert.equal(s.matches(l), g.eval(l), g.text);
      assert.equal(parseSelector(s.toString()).matches(l), g.eval(l), s.toString());
    }),
    { numRuns: 500 },
  );
});
