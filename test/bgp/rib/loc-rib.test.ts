import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocRib, familyOfPrefix } from '../../../bgp/rib/loc-rib.js';
import { path, src } from './helpers.js';

test('Loc-RIB keys: every prefix text is its own destination (numeric keys for canonical IPv4 up to /24)', () => {
  const loc = new LocRib();
  const a = src('10.0.0.1');
  // Canonical and not: leading zeros, host bits set, longer than /24, IPv6, the default route.
  const prefixes = ['10.0.0.0/24', '10.0.0.0/8', '10.0.0.0/16', '0.0.0.0/0', '10.1.2.0/23', '10.1.3.0/23', '10.0.0.128/25', '10.0.0.0/32', '010.0.0.0/24', '10.0.0.0/024', '255.255.255.0/24', '10.0.0.7/24', 'fd00::/64', '::/0'];
  for (const p of prefixes) loc.upsert(path(a, {}, p, 0, familyOfPrefix(p)));
  assert.equal(loc.size, prefixes.length);
  for (const p of prefixes) assert.equal(loc.get(familyOfPrefix(p), p)?.prefix, p, p);
  assert.equal(loc.get('ipv4-unicast', '10.2.0.0/24'), undefined);
  assert.deepEqual([...loc.destinations()].map((d) => d.prefix), prefixes);
  for (const p of prefixes) assert.ok(loc.remove(familyOfPrefix(p), p, a.id, 0), p);
  assert.equal(loc.size, 0);
  assert.deepEqual(loc.bestCounts(), { 'ipv4-unicast': 0, 'ipv6-unicast': 0 });
});
