import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ValidationError, validateResource } from '../../api/index.js';

const V3 = 'projectcalico.org/v3';
const filter = (spec: unknown) => ({ apiVersion: V3, kind: 'BGPFilter', metadata: { name: 'f' }, spec });

function problems(obj: unknown): string[] {
  try {
    validateResource(obj);
    return [];
  } catch (err) {
    assert.ok(err instanceof ValidationError, String(err));
    return err.problems;
  }
}

test('BGPFilter: every field of Calico v3 BGPFilterRuleV4/V6 is accepted', () => {
  const v4 = {
    action: 'Accept',
    cidr: '10.0.0.0/8',
    matchOperator: 'In',
    prefixLength: { min: 16, max: 32 },
    source: 'RemotePeers',
    interface: 'eth*',
    peerType: 'eBGP',
    communities: { values: ['65000:100'] },
    asPathPrefix: [65001, 65002],
    priority: 1024,
    operations: [{ addCommunity: { value: '65000:1:2' } }, { prependASPath: { prefix: [65000, 65000] } }, { setPriority: { value: 512 } }],
  };
  const v6 = { ...v4, cidr: 'fd00::/8', prefixLength: { min: 48, max: 128 }, peerType: 'iBGP', communities: { values: ['4294967295:0:1'] } };
  assert.deepEqual(problems(filter({ exportV4: [v4], importV4: [v4, { action: 'Reject' }], exportV6: [v6], importV6: [v6] })), []);
});

const REJECTS: Array<[string, unknown, string | RegExp]> = [
  ['unknown rule field', { importV4: [{ action: 'Accept', nexthop: 'self' }] }, 'spec.importV4[0].nexthop: unknown field'],
  ['communities as a bare list', { importV4: [{ action: 'Accept', communities: ['65000:1'] }] }, /^spec\.importV4\[0\]\.communities: must be an object/],
  ['two community values', { importV4: [{ action: 'Accept', communities: { values: ['1:1', '1:2'] } }] }, /^spec\.importV4\[0\]\.communities\.values: must NOT have more than 1 items/],
  ['community out of range', { importV4: [{ action: 'Accept', communities: { values: ['65536:1'] } }] }, /^spec\.importV4\[0\]\.communities\.values\[0\]: "65536:1" is not matching/],
  ['cidr without matchOperator', { exportV4: [{ action: 'Reject', cidr: '10.0.0.0/8' }] }, 'spec.exportV4[0]: cidr and matchOperator must both be set or both be empty'],
  ['matchOperator without cidr', { exportV4: [{ action: 'Reject', matchOperator: 'In' }] }, 'spec.exportV4[0]: cidr and matchOperator must both be set or both be empty'],
  ['prefixLength without cidr', { exportV4: [{ action: 'Reject', prefixLength: { min: 24 } }] }, 'spec.exportV4[0].prefixLength: cidr is required when prefixLength is set'],
  ['v4 prefixLength above 32', { exportV4: [{ action: 'Reject', cidr: '10.0.0.0/8', matchOperator: 'In', prefixLength: { max: 33 } }] }, 'spec.exportV4[0].prefixLength.max: 33 is above the maximum 32'],
  ['v6 cidr in a V4 list', { importV4: [{ action: 'Reject', cidr: 'fd00::/8', matchOperator: 'In' }] }, 'spec.importV4[0].cidr: fd00::/8 is not an IPv4 CIDR (importV4 takes IPv4)'],
  ['v4 cidr in a V6 list', { exportV6: [{ action: 'Reject', cidr: '10.0.0.0/8', matchOperator: 'In' }] }, 'spec.exportV6[0].cidr: 10.0.0.0/8 is not an IPv6 CIDR (exportV6 takes IPv6)'],
  ['operations with Reject', { importV4: [{ action: 'Reject', operations: [{ setPriority: { value: 5 } }] }] }, 'spec.importV4[0].operations: operations may only be used with action Accept'],
  ['two fields in one operation', { importV4: [{ action: 'Accept', operations: [{ setPriority: { value: 5 }, addCommunity: { value: '1:1' } }] }] }, /^spec\.importV4\[0\]\.operations\[0\]: exactly one operation/],
  ['empty operation', { importV4: [{ action: 'Accept', operations: [{}] }] }, /^spec\.importV4\[0\]\.operations\[0\]: exactly one operation/],
  ['empty operations list', { importV4: [{ action: 'Accept', operations: [] }] }, /^spec\.importV4\[0\]\.operations: must NOT have fewer than 1 items/],
  ['priority 0', { importV4: [{ action: 'Accept', priority: 0 }] }, 'spec.importV4[0].priority: 0 is below the minimum 1'],
  ['setPriority without value', { importV4: [{ action: 'Accept', operations: [{ setPriority: {} }] }] }, 'spec.importV4[0].operations[0].setPriority.value: is required'],
  ['prepend of 11 ASNs', { importV4: [{ action: 'Accept', operations: [{ prependASPath: { prefix: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11] } }] }] }, /prependASPath\.prefix: must NOT have more than 10 items/],
  ['interface with a space', { exportV4: [{ action: 'Accept', interface: 'eth 0' }] }, /^spec\.exportV4\[0\]\.interface: "eth 0" is not an interface name/],
];

for (const [what, spec, expected] of REJECTS) {
  test(`BGPFilter rejects: ${what}`, () => {
    const p = problems(filter(spec));
    assert.ok(
      p.some((x) => (typeof expected === 'string' ? x === expected : expected.test(x))),
      `expected ${String(expected)} in:\n${p.join('\n')}`,
    );
  });
}
