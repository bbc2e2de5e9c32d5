import { test } from 'node:test';
import assert from 'node:assert/strict';
import { asPathLength, comparePaths, selectBest, sortPaths, compareIp } from '../../../bgp/rib/decision.js';
import { LOCAL_SOURCE } from '../../../bgp/rib/path.js';
import { path, seq, src } from './helpers.js';

const A = src('10.0.0.1');
const B = src('10.0.0.2');

test('AS_PATH length: AS_SET counts 1, confederation segments do not count', () => {
  assert.equal(asPathLength([{ type: 2, asns: [1, 2, 3] }, { type: 1, asns: [4, 5, 6] }, { type: 3, asns: [7, 8] }, { type: 4, asns: [9] }]), 4);
  assert.equal(asPathLength(undefined), 0);
});

test('each rule decides and is reported as the reason', () => {
  const cases: Array<[string, ReturnType<typeof path>, ReturnType<typeof path>]> = [
    ['local-pref', path(B, { localPref: 200 }), path(A, { localPref: 100 })],
    ['local-origin', path(LOCAL_SOURCE, {}), path(A, {})],
    ['as-path-length', path(B, { asPath: seq(1) }), path(A, { asPath: seq(1, 2) })],
    ['origin', path(B, { origin: 0 }), path(A, { origin: 2 })],
    ['med', path(B, { asPath: seq(65000), med: 5 }), path(A, { asPath: seq(65000), med: 10 })],
    ['ebgp-over-ibgp', path(src('10.0.0.9', 'ebgp'), {}), path(A, {})],
    ['cluster-list-length', path(B, { clusterList: ['1.1.1.1'] }), path(A, { clusterList: ['1.1.1.1', '2.2.2.2'] })],
    ['router-id', path(B, { originatorId: '1.0.0.0' }), path(A, {})],
    ['peer-address', path(src('10.0.0.5', 'ibgp', { routerId: '9.9.9.9' }), {}), path(src('10.0.0.6', 'ibgp', { routerId: '9.9.9.9' }), {})],
    ['path-id', path(A, {}, '10.0.0.0/24', 1), path(A, {}, '10.0.0.0/24', 2)],
  ];
  for (const [reason, better, worse] of cases) {
    const c = comparePaths(better, worse);
    assert.ok(c.result < 0, reason);
    assert.equal(c.reason, reason);
    assert.ok(comparePaths(worse, better).result > 0, reason);
    const sel = selectBest([worse, better]);
    assert.equal(sel.best, better, reason);
    assert.equal(sel.reason, reason);
  }
});

test('MED is only compared between paths from the same neighbour AS', () => {
  const a = path(A, { asPath: seq(65001), med: 50 });
  const b = path(B, { asPath: seq(65002), med: 10 });
  // MED skipped: falls through to router id (A = 10.0.0.1 is lower).
  assert.equal(comparePaths(a, b).reason, 'router-id');
  assert.ok(comparePaths(a, b).result < 0);
});

test('stale paths lose to fresh ones whatever their attributes', () => {
  const stale = path(A, { localPref: 500 });
  stale.stale = true;
  const fresh = path(B, { localPref: 50 });
  assert.equal(selectBest([stale, fresh]).best, fresh);
  assert.equal(selectBest([stale]).best, stale);
  assert.deepEqual(sortPaths([stale, fresh]), [fresh, stale]);
});

test('ECMP: equal-cost paths with distinct next hops up to maxPaths', () => {
  const p1 = path(A, {});
  const p2 = path(B, {});
  const p3 = path(src('10.0.0.3'), {});
  const p4 = path(src('10.0.0.4'), { nextHop: '10.0.0.1' }); // duplicate next hop of p1
  const worse = path(src('10.0.0.0'), { localPref: 10 });
  assert.deepEqual(selectBest([p3, worse, p2, p1, p4], 1).multipath, [p1]);
  const sel = selectBest([p3, worse, p2, p1, p4], 3);
  assert.equal(sel.best, p1);
  assert.deepEqual(sel.multipath, [p1, p2, p3]);
  assert.deepEqual(selectBest([p3, p2, p1], 2).multipath, [p1, p2]);
});

test('compareIp orders v4 numerically and v6 by expanded form', () => {
  assert.ok(compareIp('9.0.0.1', '10.0.0.1') < 0);
  assert.ok(compareIp('2001:db8::2', '2001:db8::10') < 0);
  assert.equal(compareIp('2001:db8::1', '2001:db8:0::1'), 0);
});
