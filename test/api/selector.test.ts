import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSelector, SelectorError } from '../../api/index.js';

const labels = { app: 'web', tier: 'frontend', 'projectcalico.org/zone': 'us-east-1a', index: '3' };

// [selector, expected match against `labels`]
const MATCHES: [string, boolean][] = [
  ['', true],
  ['   ', true],
  ['all()', true],
  ['global()', true],
  ['has(app)', true],
  ['has(missing)', false],
  ['!has(missing)', true],
  ['!has(app)', false],
  ["app == 'web'", true],
  ['app == "web"', true],
  ["app == 'db'", false],
  ["app != 'db'", true],
  ["app != 'web'", false],
  ["missing != 'x'", true],
  ["app in {'web', 'db'}", true],
  ["app in {'db'}", false],
  ['app in {}', false],
  ["missing in {'x'}", false],
  ["app not in {'db'}", true],
  ["app not in {'web','db'}", false],
  ["missing not in {'x'}", true],
  ["app contains 'e'", true],
  ["app starts with 'we'", true],
  ["app ends with 'eb'", true],
  ["app ends with 'x'", false],
  ["projectcalico.org/zone == 'us-east-1a'", true],
  ["index == '3'", true],
  ["index in {'3'}", true],
  ["app == 'web' && tier == 'frontend'", true],
  ["app == 'web' && tier == 'backend'", false],
  ["app == 'db' || tier == 'frontend'", true],
  ["app == 'db' || tier == 'backend'", false],
  ["!(app == 'db')", true],
  ["!(app == 'web' && has(tier))", false],
  // && binds tighter than ||
  ["app == 'db' && has(x) || has(tier)", true],
  ["app == 'db' && (has(x) || has(tier))", false],
  ["has(tier) || has(x) && app == 'db'", true],
  ['!!has(app)', true],
  ["((app=='web'))&&(tier!='x')", true],
];

for (const [sel, want] of MATCHES) {
  test(`selector ${JSON.stringify(sel)} → ${want}`, () => {
    assert.equal(parseSelector(sel).matches(labels), want);
  });
}

test('selectors match nothing extra on an empty label set', () => {
  assert.equal(parseSelector("app != 'x'").matches({}), true);
  assert.equal(parseSelector('has(app)').matches({}), false);
  assert.equal(parseSelector("app in {'a'}").matches({}), false);
  assert.equal(parseSelector('all()').matches({}), true);
  // prototype keys are not labels
  assert.equal(parseSelector('has(toString)').matches({}), false);
});

// [selector, position of the error]
const ERRORS: [string, number][] = [
  ['app ==', 6],
  ["app = 'x'", 4],
  ["app == web", 7],
  ["app == 'web", 7],
  ["(app == 'x'", 11],
  ["app == 'x')", 10],
  ["app == 'x' &&", 13],
  ['has(', 4],
  ['has(app', 7],
  ['foo()', 0],
  ["app in {'a',}", 12],
  ["app in 'a'", 7],
  ["app not {'a'}", 8],
  ['&& has(a)', 0],
  ['app', 3],
];

for (const [sel, pos] of ERRORS) {
  test(`invalid selector ${JSON.stringify(sel)} fails at ${pos}`, () => {
    assert.throws(
      () => parseSelector(sel),
      (err: unknown) => {
        assert.ok(err instanceof SelectorError);
        assert.equal(err.code, 'InvalidSelector');
        assert.equal(err.position, pos, err.message);
        assert.match(err.message, new RegExp(`at position ${pos}`));
        return true;
      },
    );
  });
}

test('toString renders a canonical form that parses to the same meaning', () => {
  const s = parseSelector("a == 'x' && (has(b) || c not in {'1','2'}) && !has(d)");
  assert.equal(s.toString(), '(a == "x" && (has(b) || c not in {"1", "2"}) && !has(d))');
  const again = parseSelector(s.toString());
  const cases: Record<string, string>[] = [{ a: 'x', b: '' }, { a: 'x', c: '1' }, { a: 'x', c: '3', d: '' }, { a: 'y', b: '' }];
  for (const l of cases) {
    assert.equal(again.matches(l), s.matches(l), JSON.stringify(l));
  }
});

test('usesGlobal flags global()', () => {
  assert.equal(parseSelector('global()').usesGlobal, true);
  assert.equal(parseSelector("!(global() && has(a))").usesGlobal, true);
  assert.equal(parseSelector('all()').usesGlobal, false);
});
