import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  affinityName,
  applyDefaults,
  blockCidrFromName,
  blockName,
  handleObjectName,
  validateResource,
  type BlockAffinity,
  type IPAMBlock,
  type IPAMHandle,
} from '../../api/index.js';

// Objects as Calico writes them into Kubernetes (kubectl get -o json), built from the v1 field list.
function fixture<T>(name: string): T {
  return JSON.parse(readFileSync(new URL(`fixtures/${name}`, import.meta.url), 'utf8')) as T;
}

for (const file of ['ipamblock.json', 'ipamblock-v6-unaffine.json', 'blockaffinity.json', 'ipamhandle.json']) {
  test(`Calico-written ${file} round-trips through types, defaults and validation unchanged`, () => {
    const original = fixture<unknown>(file);
    const frozen = structuredClone(original);
    assert.deepEqual(applyDefaults(original as IPAMBlock), frozen);
    const validated = validateResource(original);
    assert.deepEqual(validated, frozen);
    assert.deepEqual(JSON.parse(JSON.stringify(validated)), frozen);
    assert.deepEqual(original, frozen, 'input was mutated');
  });
}

test('fixture object names follow Calico naming', () => {
  const block = fixture<IPAMBlock>('ipamblock.json');
  assert.equal(block.metadata.name, blockName(block.spec.cidr));
  assert.equal(blockCidrFromName(block.metadata.name), block.spec.cidr);
  const v6 = fixture<IPAMBlock>('ipamblock-v6-unaffine.json');
  assert.equal(v6.metadata.name, blockName(v6.spec.cidr));
  assert.equal(v6.spec.affinity, null);
  const aff = fixture<BlockAffinity>('blockaffinity.json');
  assert.equal(aff.metadata.name, affinityName(aff.spec.node, aff.spec.cidr));
  assert.equal(typeof aff.spec.deleted, 'string');
  const handle = fixture<IPAMHandle>('ipamhandle.json');
  assert.equal(handle.metadata.name, handleObjectName(handle.spec.handleID));
  assert.deepEqual(Object.keys(handle.spec.block), [block.spec.cidr]);
  // the handle's pod address is ordinal 1 of the block
  assert.equal(block.spec.attributes[block.spec.allocations[1]!]?.handle_id, handle.spec.handleID);
});
