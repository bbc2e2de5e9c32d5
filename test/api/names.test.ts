import { test } from 'node:test';
import assert from 'node:assert/strict';
import { affinityName, blockCidrFromName, blockName, handleObjectName, NameError, parseCidr, workloadEndpointName } from '../../api/index.js';

// [cidr as written, object name, canonical CIDR parsed back from the name]
const BLOCKS: [string, string, string][] = [
  ['10.244.1.0/26', '10-244-1-0-26', '10.244.1.0/26'],
  ['192.168.0.0/16', '192-168-0-0-16', '192.168.0.0/16'],
  ['10.0.0.255/32', '10-0-0-255-32', '10.0.0.255/32'],
  ['fd00:10:244:1::/122', 'fd00-10-244-1---122', 'fd00:10:244:1::/122'],
  ['fd00::/122', 'fd00---122', 'fd00::/122'],
  // RFC 5952 (as Go prints): the first of two equal zero runs is compressed
  ['2001:db8:0:0:1::40/122', '2001-db8--1-0-0-40-122', '2001:db8::1:0:0:40/122'],
  ['2001:db8:1:2:3:4:5:0/122', '2001-db8-1-2-3-4-5-0-122', '2001:db8:1:2:3:4:5:0/122'],
];

for (const [cidr, name, canonical] of BLOCKS) {
  test(`block ${cidr} ↔ ${name}`, () => {
    assert.equal(blockName(cidr), name);
    assert.equal(blockCidrFromName(name), canonical);
    assert.equal(blockName(blockCidrFromName(name)), name);
  });
}

test('block names parse back to canonical CIDRs', () => {
  assert.equal(blockCidrFromName('10-244-1-0-26'), '10.244.1.0/26');
  assert.equal(blockCidrFromName('fd00-10-244-1---122'), 'fd00:10:244:1::/122');
  assert.equal(blockName('FD00:10:244:1:0::/122'), 'fd00-10-244-1---122');
});

test('bad block names and CIDRs throw NameError', () => {
  for (const bad of ['', '10-244-1-0', 'node-1', '10-244-1-300-26', '10-244-1-0-33', 'x---122']) {
    assert.throws(() => blockCidrFromName(bad), NameError, bad);
  }
  assert.throws(() => blockName('10.244.1.0'), NameError);
  assert.throws(() => blockName('nope/26'), NameError);
});

test('affinity names are <node>-<blockName>', () => {
  assert.equal(affinityName('node-1', '10.244.1.0/26'), 'node-1-10-244-1-0-26');
  assert.equal(affinityName('node-15.company.com', '10.148.158.64/26'), 'node-15.company.com-10-148-158-64-26');
});

test('over-long affinity names are cut and made unique with a hash', () => {
  const long = 'n'.repeat(260);
  const a = affinityName(long, '10.244.1.0/26');
  const b = affinityName(`${long}x`, '10.244.1.0/26');
  assert.ok(a.length <= 253, `length ${a.length}`);
  assert.match(a, /-10-244-1-0-26-[0-9a-f]{11}$/);
  assert.notEqual(a, b);
  assert.equal(affinityName('n'.repeat(200), '10.244.1.0/26').length, 214);
});

test('handle object names are the lower-cased handle id', () => {
  assert.equal(handleObjectName('k8s-pod-network.ABCdef0123'), 'k8s-pod-network.abcdef0123');
  assert.equal(handleObjectName('ipip-tunnel-addr-node-1'), 'ipip-tunnel-addr-node-1');
});

test('workload endpoint names escape dashes as Calico does', () => {
  assert.equal(workloadEndpointName('node-1', 'nginx-7c5d-x2v9q', 'eth0'), 'node--1-k8s-nginx--7c5d--x2v9q-eth0');
  assert.equal(workloadEndpointName('n1', 'p', 'eth0'), 'n1-k8s-p-eth0');
});

test('CIDR parsing is strict', () => {
  for (const bad of ['10.0.0.0/026', '10.0.0.0/33', '010.0.0.0/8', '10.0.0/24', '10.0.0.0/', 'fd00::/129', 'fe80::1%eth0/64', ' 10.0.0.0/8']) {
    assert.equal(parseCidr(bad), undefined, bad);
  }
  assert.deepEqual(parseCidr('10.0.0.0/0')?.prefix, 0);
  assert.equal(parseCidr('FD00::/8')?.family, 6);
});
