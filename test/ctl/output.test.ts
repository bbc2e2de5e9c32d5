import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { applyDefaults } from '../../api/defaults.js';
import type { Resource } from '../../api/meta.js';
import {
  columnsFor,
  customColumns,
  formatJson,
  formatResourceTable,
  formatTable,
  formatYaml,
  listOf,
  partialLine,
  successLine,
} from '../../ctl/output.js';

const pool = (name: string, spec: Record<string, unknown>): Resource => ({
  apiVersion: 'projectcalico.org/v3',
  kind: 'IPPool',
  metadata: { name, resourceVersion: '7' },
  spec,
});

test('tables are calicoctl tabwriter-shaped: width = max(5, longest + 3), last column unpadded', () => {
  const wide = columnsFor('IPPool').wide.slice(0, 6);
  const out = formatResourceTable(
    [pool('default-ipv4-ippool', { cidr: '192.168.0.0/16', natOutgoing: true, ipipMode: 'Always', vxlanMode: 'Never', disabled: false })],
    wide,
  );
  // The calicoctl docs sample, byte for byte.
  assert.equal(
    out,
    'NAME                  CIDR             NAT    IPIPMODE   VXLANMODE   DISABLED\n' +
      'default-ipv4-ippool   192.168.0.0/16   true   Always     Never       false\n',
  );
  assert.equal(formatTable(['a', 'b'], [['x', 'y']]), 'A    B\nx    y\n');
  assert.equal(formatTable(['name'], []), 'NAME\n');
});

test('ippool default and wide column sets as calicoctl', () => {
  const set = columnsFor('IPPool');
  assert.deepEqual(
    set.default.map((c) => c.header),
    ['NAME', 'CIDR', 'SELECTOR'],
  );
  assert.deepEqual(
    set.wide.map((c) => c.header),
    ['NAME', 'CIDR', 'NAT', 'IPIPMODE', 'VXLANMODE', 'DISABLED', 'DISABLEBGPEXPORT', 'SELECTOR'],
  );
  const row = formatResourceTable([applyDefaults(pool('p', { cidr: '10.0.0.0/16' }))], set.wide).split('\n')[1] ?? '';
  assert.deepEqual(row.split(/\s+/), ['p', '10.0.0.0/16', 'false', 'Never', 'Never', 'false', 'false', 'all()']);
});

test('bgppeer NODE shows node, nodeSelector or (global); node ASN shows inherited in parentheses', () => {
  const peers: Resource[] = [
    { apiVersion: 'projectcalico.org/v3', kind: 'BGPPeer', metadata: { name: 'g' }, spec: { peerIP: '192.0.2.1', asNumber: 64600 } },
    { apiVersion: 'projectcalico.org/v3', kind: 'BGPPeer', metadata: { name: 'n' }, spec: { peerIP: '192.0.2.2', asNumber: 64601, node: 'node-1' } },
    { apiVersion: 'projectcalico.org/v3', kind: 'BGPPeer', metadata: { name: 's' }, spec: { peerSelector: 'rr == "true"', nodeSelector: 'all()' } },
  ];
  const lines = formatResourceTable(peers, columnsFor('BGPPeer').default).trimEnd().split('\n');
  assert.deepEqual(lines[0]?.split(/\s+/), ['NAME', 'PEERIP', 'NODE', 'ASN']);
  assert.match(lines[1] ?? '', /^g\s+192\.0\.2\.1\s+\(global\)\s+64600$/);
  assert.match(lines[2] ?? '', /^n\s+192\.0\.2\.2\s+node-1\s+64601$/);
  assert.match(lines[3] ?? '', /^s\s+all\(\)$/);

  const nodes: Resource[] = [
    { apiVersion: 'projectcalico.org/v3', kind: 'Node', metadata: { name: 'a' }, spec: { bgp: { ipv4Address: '10.0.0.1/24' } } },
    { apiVersion: 'projectcalico.org/v3', kind: 'Node', metadata: { name: 'b' }, spec: { bgp: { ipv4Address: '10.0.0.2/24', asNumber: 65001 } } },
  ];
  const nl = formatResourceTable(nodes, columnsFor('Node').wide, { defaultASNumber: 64512 }).trimEnd().split('\n');
  assert.deepEqual(nl[0]?.split(/\s+/), ['NAME', 'ASN', 'IPV4', 'IPV6']);
  assert.match(nl[1] ?? '', /^a\s+\(64512\)\s+10\.0\.0\.1\/24$/);
  assert.match(nl[2] ?? '', /^b\s+65001\s+10\.0\.0\.2\/24$/);
  assert.deepEqual(
    columnsFor('BGPConfiguration').default.map((c) => c.header),
    ['NAME', 'LOGSEVERITY', 'MESHENABLED', 'ASNUMBER'],
  );
  assert.deepEqual(
    columnsFor('FelixConfiguration').default.map((c) => c.header),
    ['NAME'],
  );
});

test('custom-columns pick known headers and reject unknown ones', () => {
  assert.deepEqual(
    customColumns('IPPool', ['name', 'NAT']).map((c) => c.header),
    ['NAME', 'NAT'],
  );
  assert.throws(() => customColumns('IPPool', ['BOGUS']), /unknown column "BOGUS" for IPPool/);
});

test('yaml sorts keys; lists are <Kind>List envelopes; json keeps kind/apiVersion/metadata/spec order', () => {
  const p = pool('a', { vxlanMode: 'Never', cidr: '10.0.0.0/16', blockSize: 26 });
  const y = formatYaml(p);
  assert.equal(y.split('\n')[0], 'apiVersion: projectcalico.org/v3');
  assert.ok(y.indexOf('blockSize') < y.indexOf('cidr') && y.indexOf('cidr') < y.indexOf('vxlanMode'));
  assert.deepEqual(parse(y), p);
  const l = listOf([p, pool('b', { cidr: '10.1.0.0/16' })], 'IPPool', '42');
  const parsed = parse(formatYaml(l)) as { kind: string; items: Resource[]; metadata: { resourceVersion: string } };
  assert.equal(parsed.kind, 'IPPoolList');
  assert.equal(parsed.items.length, 2);
  assert.equal(parsed.metadata.resourceVersion, '42');
  assert.equal(listOf([]).kind, 'List');
  const j = formatJson(p);
  assert.deepEqual(Object.keys(JSON.parse(j) as object), ['kind', 'apiVersion', 'metadata', 'spec']);
  assert.deepEqual(JSON.parse(j), p);
});

test('summary lines as calicoctl', () => {
  assert.equal(successLine('applied', 1, 'IPPool'), "Successfully applied 1 'IPPool' resource(s)");
  assert.equal(successLine('created', 3, undefined), 'Successfully created 3 resource(s)');
  assert.equal(partialLine('applied', 2, 3, 'IPPool', true), "Partial success: applied the first 2 out of 3 'IPPool' resources:");
  assert.equal(partialLine('applied', 2, 3, undefined, false), 'Partial success: applied 2 out of 3 resources:');
});
