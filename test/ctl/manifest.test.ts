import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeDocument, mergePatch, parseManifest } from '../../ctl/manifest.js';

const pool = (name: string, cidr: string) => `apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: ${name}
spec:
  cidr: ${cidr}
`;

test('multi-document YAML keeps order and 1-based indexes; empty documents are skipped', () => {
  const docs = parseManifest(`---\n${pool('a', '10.1.0.0/16')}---\n# only a comment\n---\n${pool('b', '10.2.0.0/16')}---\n`);
  assert.deepEqual(
    docs.map((d) => [d.index, d.kind, d.name, d.error]),
    [
      [1, 'IPPool', 'a', undefined],
      [2, 'IPPool', 'b', undefined],
    ],
  );
  assert.equal((docs[1]?.resource?.spec as { cidr: string }).cidr, '10.2.0.0/16');
});

test('JSON input and List envelopes are expanded item by item', () => {
  const list = JSON.stringify({
    apiVersion: 'projectcalico.org/v3',
    kind: 'List',
    items: [
      { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'a' }, spec: { cidr: '10.1.0.0/16' } },
      { apiVersion: 'projectcalico.org/v3', kind: 'BGPPeer', metadata: { name: 'p' }, spec: { peerIP: '192.0.2.1', asNumber: 64513 } },
    ],
  });
  const docs = parseManifest(`${list}\n---\n${pool('c', '10.3.0.0/16')}`);
  assert.deepEqual(
    docs.map((d) => [d.index, d.kind, d.name]),
    [
      [1, 'IPPool', 'a'],
      [2, 'BGPPeer', 'p'],
      [3, 'IPPool', 'c'],
    ],
  );
  // `get -o yaml` prints <Kind>List; it must be accepted back.
  const typed = parseManifest(`apiVersion: projectcalico.org/v3\nkind: IPPoolList\nmetadata: {}\nitems:\n- ${pool('x', '10.9.0.0/16').replace(/\n/g, '\n  ')}`);
  assert.equal(typed.length, 1);
  assert.equal(typed[0]?.name, 'x');
  assert.equal(typed[0]?.error, undefined);
});

test('bad documents get an error naming the field, and do not hide good ones', () => {
  const docs = parseManifest(
    [
      'apiVersion: projectcalico.org/v3\nkind: Ippool\nmetadata: {name: a}',
      'apiVersion: crd.projectcalico.org/v1\nkind: IPPool\nmetadata: {name: b}',
      'apiVersion: projectcalico.org/v3\nkind: IPPool\nspec: {cidr: 10.0.0.0/8}',
      'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: [unclosed',
      '- just\n- a list',
      pool('ok', '10.4.0.0/16'),
      'apiVersion: projectcalico.org/v3\nkind: IPAMBlock\nmetadata: {name: 10-0-0-0-26}',
    ].join('\n---\n'),
  );
  assert.equal(docs.length, 7);
  assert.match(docs[0]?.error ?? '', /^kind: unknown resource kind "Ippool" \(did you mean IPPool\?\)/);
  assert.match(docs[1]?.error ?? '', /^apiVersion: "crd.projectcalico.org\/v1" is not supported/);
  assert.equal(docs[2]?.error, 'metadata.name: required');
  assert.match(docs[3]?.error ?? '', /^invalid YAML\/JSON: /);
  assert.match(docs[4]?.error ?? '', /expected a resource object, got a list/);
  assert.equal(docs[5]?.error, undefined);
  assert.equal(docs[5]?.resource?.metadata.name, 'ok');
  assert.match(docs[6]?.error ?? '', /IPAMBlock is not managed through manifests/);
  assert.equal(describeDocument(docs[1]!), 'document 2 (IPPool "b")');
  assert.equal(describeDocument(docs[3]!), 'document 4');
});

test('mergePatch follows RFC 7386', () => {
  const target = { spec: { cidr: '10.0.0.0/16', disabled: false, nodeSelector: 'all()' }, metadata: { name: 'a', labels: { x: '1' } } };
  const out = mergePatch(target, { spec: { disabled: true, nodeSelector: null }, metadata: { labels: { y: '2' } } });
  assert.deepEqual(out, { spec: { cidr: '10.0.0.0/16', disabled: true }, metadata: { name: 'a', labels: { x: '1', y: '2' } } });
  assert.deepEqual(mergePatch({ a: [1, 2] }, { a: [3] }), { a: [3] });
  assert.deepEqual(target.spec.disabled, false, 'target is not mutated');
});
