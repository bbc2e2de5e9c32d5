import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LabelSelectorError, matchesLabelSelector, parseLabelSelector } from '../../datastore/labels.js';

const L = { app: 'web', tier: 'front', 'example.com/zone': 'a', n: '7' };

test('label selectors: equality, inequality, sets, existence, comma = AND', () => {
  const cases: Array<[string, boolean]> = [
    ['', true],
    ['app=web', true],
    ['app==web', true],
    ['app = web', true],
    ['app=db', false],
    ['app!=db', true],
    ['app!=web', false],
    ['missing!=x', true],
    ['app in (db, web)', true],
    ['app in (db)', false],
    ['app notin (db)', true],
    ['app notin (web,db)', false],
    ['missing notin (x)', true],
    ['missing in (x)', false],
    ['app', true],
    ['missing', false],
    ['!missing', true],
    ['!app', false],
    ['app=web,tier=front', true],
    ['app=web,tier=back', false],
    ['example.com/zone=a', true],
    ['n>5', true],
    ['n<5', false],
    ['app=web, !missing, tier in (front)', true],
  ];
  for (const [sel, want] of cases) assert.equal(matchesLabelSelector(sel, L), want, sel);
  assert.equal(matchesLabelSelector('app', undefined), false);
  assert.equal(matchesLabelSelector('!app', undefined), true);
  assert.equal(matchesLabelSelector('a=', { a: '' }), true);
});

test('label selectors: syntax errors are typed and name the selector', () => {
  for (const bad of ['app in (a', 'app in a', '=x', 'a,', 'a=b,,c', 'a b', 'a=@', 'n>x', 'in (', 'a=b)']) {
    assert.throws(() => parseLabelSelector(bad), (e: unknown) => e instanceof LabelSelectorError && e.message.includes(JSON.stringify(bad)), bad);
  }
  assert.deepEqual(parseLabelSelector('a in (x,y)').requirements, [{ op: 'in', key: 'a', values: ['x', 'y'] }]);
});
