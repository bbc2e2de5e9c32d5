import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { parse, parseAllDocuments } from 'yaml';
import { KINDS, renderCrds, schemaFor, type Schema } from '../../api/index.js';

const dir = new URL('../../crds/', import.meta.url).pathname;

test('crds/ is up to date with api/schemas.ts (run: node --import tsx scripts/gen-crds.ts)', () => {
  const want = renderCrds();
  const have = readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();
  assert.deepEqual(have, [...want.keys()].sort(), 'crds/ holds other files than the generator writes');
  for (const [name, text] of want) assert.equal(readFileSync(dir + name, 'utf8'), text, `crds/${name} is stale`);
});

test('CRD YAML is plain: no anchors or aliases for shared sub-schemas', () => {
  for (const [name, text] of renderCrds()) assert.doesNotMatch(text, /: [&*]a\d+$/m, name);
});

test('one CRD per kind, group crd.projectcalico.org v1, Calico file names and scopes', () => {
  for (const k of KINDS) {
    const crd = parse(readFileSync(`${dir}crd.projectcalico.org_${k.plural}.yaml`, 'utf8'));
    assert.equal(crd.kind, 'CustomResourceDefinition');
    assert.equal(crd.metadata.name, `${k.plural}.crd.projectcalico.org`);
    assert.equal(crd.spec.group, 'crd.projectcalico.org');
    assert.equal(crd.spec.names.kind, k.v1Kind);
    assert.equal(crd.spec.names.plural, k.plural);
    assert.equal(crd.spec.scope, k.kind === 'WorkloadEndpoint' ? 'Namespaced' : 'Cluster');
    assert.equal(crd.spec.versions.length, 1);
    assert.equal(crd.spec.versions[0].name, 'v1');
    assert.deepEqual(crd.spec.versions[0].schema.openAPIV3Schema.properties.spec, JSON.parse(JSON.stringify(schemaFor(k.kind).spec)));
  }
  assert.equal(parse(readFileSync(`${dir}crd.projectcalico.org_ipamconfigs.yaml`, 'utf8')).spec.names.kind, 'IPAMConfig');
  const all = parseAllDocuments(readFileSync(`${dir}crds.yaml`, 'utf8'));
  assert.equal(all.length, KINDS.length);
});

/** Kubernetes structural schema: every node has a type (or is int-or-string), maps and lists say what they hold. */
function structuralProblems(s: Schema, path: string, out: string[]): string[] {
  if (!s.type && !s['x-kubernetes-int-or-string']) out.push(`${path}: no type`);
  if (s.type === 'array' && !s.items) out.push(`${path}: array without items`);
  if (s.properties && s.additionalProperties !== undefined) out.push(`${path}: both properties and additionalProperties`);
  if (s.required) for (const r of s.required) if (!s.properties?.[r]) out.push(`${path}: requires unknown ${r}`);
  for (const [k, v] of Object.entries(s.properties ?? {})) structuralProblems(v, `${path}.${k}`, out);
  if (typeof s.additionalProperties === 'object') structuralProblems(s.additionalProperties, `${path}{}`, out);
  if (s.items) structuralProblems(s.items, `${path}[]`, out);
  return out;
}

test('schemas are structural (Kubernetes accepts them)', () => {
  for (const k of KINDS) {
    const s = schemaFor(k.kind);
    assert.deepEqual(structuralProblems(s.spec, `${k.kind}.spec`, []), []);
    if (s.status) assert.deepEqual(structuralProblems(s.status, `${k.kind}.status`, []), []);
  }
});

test('IPAM storage CRDs carry Calico v1 field names and types', () => {
  const block = schemaFor('IPAMBlock').spec;
  assert.deepEqual(Object.keys(block.properties ?? {}).sort(), [
    'affinity', 'affinityClaimTime', 'allocations', 'attributes', 'cidr', 'deleted', 'sequenceNumber',
    'sequenceNumberForAllocation', 'strictAffinity', 'unallocated',
  ]);
  assert.deepEqual(block.required?.slice().sort(), ['allocations', 'attributes', 'cidr', 'strictAffinity', 'unallocated']);
  assert.deepEqual(block.properties?.allocations?.items, { type: 'integer', nullable: true });
  assert.deepEqual(Object.keys(block.properties?.attributes?.items?.properties ?? {}).slice(0, 2), ['handle_id', 'secondary']);
  assert.equal(block.properties?.sequenceNumberForAllocation?.type, 'object');
  const aff = schemaFor('BlockAffinity').spec;
  assert.deepEqual(Object.keys(aff.properties ?? {}).sort(), ['cidr', 'deleted', 'node', 'state', 'type']);
  assert.equal(aff.properties?.deleted?.type, 'string');
  const handle = schemaFor('IPAMHandle').spec;
  assert.deepEqual(Object.keys(handle.properties ?? {}).sort(), ['block', 'deleted', 'handleID']);
  assert.equal((handle.properties?.block?.additionalProperties as Schema).type, 'integer');
  assert.equal(schemaFor('IPAMConfig'), schemaFor('IPAMConfiguration'));
  assert.throws(() => schemaFor('Nope'), /no schema for kind "Nope"/);
});
