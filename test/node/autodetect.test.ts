import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AutodetectError, chooseAddress, summarize, type HostInterface } from '../../node/autodetect.js';
import { parseAutodetectMethod } from '../../node/config.js';

const ifaces: HostInterface[] = [
  { name: 'lo', up: true, addresses: ['127.0.0.1/8'] },
  { name: 'docker0', up: true, addresses: ['172.17.0.1/16'] },
  { name: 'cali123', up: true, addresses: [] },
  { name: 'eth1', up: true, addresses: ['10.1.0.7/24'] },
  { name: 'eth0', up: true, addresses: ['169.254.1.1/16', '192.168.5.10/24'] },
  { name: 'ens3', up: false, addresses: ['10.9.0.1/24'] },
];
const m = (s: string) => parseAutodetectMethod(s);

test('first-found: name order, default excludes, down and link-local explained', () => {
  const d = chooseAddress(m('first-found'), ifaces);
  assert.equal(d.interface, 'eth0');
  assert.equal(d.cidr, '192.168.5.10/24');
  assert.equal(d.address, '192.168.5.10');
  assert.deepEqual(d.explanation, [
    'cali123: skipped (excluded by default: ^cali.*)',
    'docker0: skipped (excluded by default: ^docker.*)',
    'ens3: skipped (down)',
    'eth0: chosen 192.168.5.10/24 (first up interface, in name order, not excluded by default)',
  ]);
  assert.equal(summarize(d), '192.168.5.10/24 on eth0 (method first-found)');
});

test('interface= regex', () => {
  const d = chooseAddress(m('interface=eth1'), ifaces);
  assert.equal(d.cidr, '10.1.0.7/24');
  assert.ok(d.explanation.includes('eth0: skipped (does not match eth1)'));
});

test('skip-interface= skips matches and lo', () => {
  const d = chooseAddress(m('skip-interface=eth0,ens.*'), ifaces);
  assert.equal(d.interface, 'docker0'); // not a default exclude under skip-interface
  assert.ok(d.explanation.includes('cali123: skipped (no usable IPv4 address)'));
});

test('cidr= picks the address inside the CIDR', () => {
  const d = chooseAddress(m('cidr=10.1.0.0/16'), ifaces);
  assert.equal(d.interface, 'eth1');
  assert.ok(d.explanation.some((l) => l.startsWith('docker0: skipped (no IPv4 address in 10.1.0.0/16; has 172.17.0.1/16')));
});

test('can-reach= uses the route source address', () => {
  const d = chooseAddress(m('can-reach=10.1.0.1'), ifaces, '10.1.0.7');
  assert.equal(d.interface, 'eth1');
  assert.match(d.explanation.at(-1)!, /source address of the route to 10.1.0.1/);
  assert.throws(() => chooseAddress(m('can-reach=10.1.0.1'), ifaces), AutodetectError);
});

test('nothing usable: typed error carrying the explanation', () => {
  assert.throws(() => chooseAddress(m('cidr=10.200.0.0/16'), ifaces), (err: unknown) => {
    assert.ok(err instanceof AutodetectError);
    assert.equal(err.code, 'AutodetectFailed');
    assert.equal(err.explanation.length, 6);
    return true;
  });
});
