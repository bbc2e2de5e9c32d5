import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exportAttributes, importCheck, mayExport, type ExportTarget } from '../../../bgp/rib/rules.js';
import { LOCAL_SOURCE } from '../../../bgp/rib/path.js';
import { path, seq, src } from './helpers.js';

const local = { asn: 64512, routerId: '10.0.0.100', clusterId: '1.1.1.1' };
const ibgp: ExportTarget = { type: 'ibgp', rrClient: false, nextHopMode: 'auto', localAddress: { 'ipv4-unicast': '10.0.0.100' }, localAs: 64512 };
const client: ExportTarget = { ...ibgp, rrClient: true };
const ebgp: ExportTarget = { ...ibgp, type: 'ebgp' };

test('import: AS loop detection honours allowLocalAs', () => {
  const e = src('192.0.2.1', 'ebgp');
  assert.equal(importCheck(e, { asPath: seq(65000, 64512) }, local), 'as-path-loop');
  assert.equal(importCheck(e, { asPath: seq(65000, 64512) }, local, { allowLocalAs: 1 }), undefined);
  assert.equal(importCheck(e, { asPath: seq(64512, 65000, 64512) }, local, { allowLocalAs: 1 }), 'as-path-loop');
});

test('import: RFC 4456 loop drops (own originator id, own cluster id)', () => {
  const i = src('10.0.0.2');
  assert.equal(importCheck(i, { originatorId: '10.0.0.100' }, local), 'originator-is-self');
  assert.equal(importCheck(i, { clusterList: ['2.2.2.2', '1.1.1.1'] }, local), 'cluster-loop');
  assert.equal(importCheck(i, { clusterList: ['2.2.2.2'] }, local), undefined);
  // Without a cluster id the router id is the cluster id.
  assert.equal(importCheck(i, { clusterList: ['10.0.0.100'] }, { asn: 64512, routerId: '10.0.0.100' }), 'cluster-loop');
});

test('export eligibility: iBGP → iBGP only when reflecting, client/non-client rules', () => {
  const fromNonClient = path(src('10.0.0.2'), {});
  const fromClient = path(src('10.0.0.3', 'ibgp', { rrClient: true }), {});
  const fromEbgp = path(src('192.0.2.1', 'ebgp'), {});
  assert.equal(mayExport(fromNonClient, ibgp, false), false);
  assert.equal(mayExport(fromEbgp, ibgp, false), true);
  assert.equal(mayExport(path(LOCAL_SOURCE, {}), ibgp, false), true);
  assert.equal(mayExport(fromNonClient, ebgp, false), true);
  // As a reflector:
  assert.equal(mayExport(fromNonClient, ibgp, true), false);
  assert.equal(mayExport(fromNonClient, client, true), true);
  assert.equal(mayExport(fromClient, ibgp, true), true);
  assert.equal(mayExport(fromClient, client, true), true);
});

test('export to eBGP: prepend, next hop self, no LOCAL_PREF/MED/RR attributes', () => {
  const p = path(src('10.0.0.2'), { asPath: seq(65000), localPref: 200, med: 7, originatorId: '9.9.9.9', clusterList: ['1.1.1.1'], nextHop: '10.0.0.2' });
  const a = exportAttributes(p, ebgp, local)!;
  assert.deepEqual(a.asPath, [{ type: 2, asns: [64512, 65000] }]);
  assert.equal(a.nextHop, '10.0.0.100');
  assert.equal(a.localPref, undefined);
  assert.equal(a.med, undefined);
  assert.equal(a.originatorId, undefined);
  assert.equal(a.clusterList, undefined);
  assert.equal(exportAttributes(p, { ...ebgp, nextHopMode: 'keep' }, local)!.nextHop, '10.0.0.2');
  // Source path untouched.
  assert.deepEqual(p.attrs.asPath, seq(65000));
});

test('export to iBGP: LOCAL_PREF set, next hop kept unless self, reflection adds ORIGINATOR_ID/CLUSTER_LIST', () => {
  const fromEbgp = path(src('192.0.2.1', 'ebgp'), { asPath: seq(65000) });
  const a = exportAttributes(fromEbgp, ibgp, local)!;
  assert.equal(a.localPref, 100);
  assert.equal(a.nextHop, '192.0.2.1');
  assert.deepEqual(a.asPath, seq(65000));
  assert.equal(a.originatorId, undefined);
  assert.equal(exportAttributes(fromEbgp, { ...ibgp, nextHopMode: 'self' }, local)!.nextHop, '10.0.0.100');
  const reflected = exportAttributes(path(src('10.0.0.3', 'ibgp', { rrClient: true, routerId: '3.3.3.3' }), { localPref: 300 }), client, local)!;
  assert.equal(reflected.originatorId, '3.3.3.3');
  assert.deepEqual(reflected.clusterList, ['1.1.1.1']);
  assert.equal(reflected.localPref, 300);
  const again = exportAttributes(path(src('10.0.0.3'), { originatorId: '7.7.7.7', clusterList: ['2.2.2.2'] }), client, local)!;
  assert.equal(again.originatorId, '7.7.7.7');
  assert.deepEqual(again.clusterList, ['1.1.1.1', '2.2.2.2']);
  // Local routes: next hop self, empty AS_PATH on iBGP.
  const loc = exportAttributes(path(LOCAL_SOURCE, { nextHop: undefined }), ibgp, local)!;
  assert.equal(loc.nextHop, '10.0.0.100');
  assert.deepEqual(loc.asPath, []);
});

test('unknown attributes: transitive passed with Partial, non-transitive dropped', () => {
  const p = path(src('192.0.2.1', 'ebgp'), {
    unknown: [
      { type: 240, flags: 0xc0, value: new Uint8Array([1, 2]) },
      { type: 241, flags: 0x80, value: new Uint8Array([3]) },
    ],
  });
  const a = exportAttributes(p, ibgp, local)!;
  assert.equal(a.unknown?.length, 1);
  assert.equal(a.unknown?.[0]?.type, 240);
  assert.equal(a.unknown?.[0]?.flags, 0xe0);
});

test('no next hop available → not exported', () => {
  assert.equal(exportAttributes(path(LOCAL_SOURCE, { nextHop: undefined }, '2001:db8::/64', 0, 'ipv6-unicast'), ibgp, local), undefined);
});
