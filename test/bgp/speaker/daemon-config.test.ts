import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, EXAMPLE_CONFIG, loadConfig, parseConfig } from '../../../bgp/daemon/config.js';

test('the example of issue 5 loads', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tabby-bgp-cfg-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const f = join(dir, 'bgp.yaml');
  await writeFile(f, EXAMPLE_CONFIG);
  const c = await loadConfig(f);
  assert.equal(c.speaker.routerId, '10.0.0.1');
  assert.equal(c.speaker.peers[0]?.password, 's3cret');
  assert.deepEqual(c.speaker.peers[0]?.gracefulRestart, { restartTime: 120 });
  assert.deepEqual(c.fib, { install: true, protocol: 80 });
  assert.equal(c.statusSocket, '/run/tabby-bgp.sock');
  assert.equal((c.speaker as unknown as Record<string, unknown>).fib, undefined);
  // JSON is YAML too.
  await writeFile(f, JSON.stringify({ routerId: '10.0.0.1', asNumber: 4200000000, peers: [] }));
  assert.equal((await loadConfig(f)).speaker.asNumber, 4200000000);
});

test('filters become BGPFilter objects and unknown references are rejected', async () => {
  const c = await parseConfig({
    routerId: '10.0.0.1',
    asNumber: 64512,
    filters: [{ name: 'f', exportV4: [{ action: 'Reject', cidr: '10.0.0.0/8', matchOperator: 'In' }] }],
    peers: [{ address: '10.0.0.2', asNumber: 64512, filters: ['f'] }],
  });
  assert.deepEqual(c.speaker.filters, [{ name: 'f', spec: { exportV4: [{ action: 'Reject', cidr: '10.0.0.0/8', matchOperator: 'In' }] } }]);
  await assert.rejects(parseConfig({ routerId: '10.0.0.1', asNumber: 1, peers: [{ address: '10.0.0.2', asNumber: 1, filters: ['nope'] }] }), /unknown filter "nope"/);
});

test('filter rules are checked exactly as a Calico v3 BGPFilter (fields, CEL rules, families)', async () => {
  const doc = (rule: unknown) => ({ routerId: '10.0.0.1', asNumber: 64512, routePriority: 100, filters: [{ name: 'f', importV4: [rule] }] });
  const ok = { action: 'Accept', cidr: '10.0.0.0/8', matchOperator: 'In', priority: 100, operations: [{ setPriority: { value: 20 } }, { prependASPath: { prefix: [65000] } }] };
  assert.deepEqual((await parseConfig(doc(ok))).speaker.filters?.[0]?.spec.importV4, [ok]);
  assert.equal((await parseConfig(doc(ok))).speaker.routePriority, 100);
  const bad: Array<[unknown, RegExp]> = [
    [{ action: 'Accept', cidr: '10.0.0.0/8' }, /filter "f": spec\.importV4\[0\]: cidr and matchOperator must both be set/],
    [{ action: 'Accept', communities: ['1:1'] }, /spec\.importV4\[0\]\.communities: must be an object/],
    [{ action: 'Reject', operations: [{ setPriority: { value: 1 } }] }, /operations may only be used with action Accept/],
    [{ action: 'Accept', cidr: 'fd00::/8', matchOperator: 'In' }, /is not an IPv4 CIDR/],
  ];
  for (const [rule, re] of bad) await assert.rejects(parseConfig(doc(rule)), (e: unknown) => e instanceof ConfigError && re.test(e.message));
});

test('invalid documents are rejected with the path of the problem', async () => {
  const bad: Array<[unknown, RegExp]> = [
    [{ asNumber: 1 }, /must have required property 'routerId'/],
    [{ routerId: 'x', asNumber: 1 }, /\/routerId must match format "ipv4"/],
    [{ routerId: '10.0.0.1', asNumber: 0 }, /\/asNumber must be >= 1/],
    [{ routerId: '10.0.0.1', asNumber: 1, peers: [{ address: '10.0.0.2', asNumber: 1, holdTime: 2 }] }, /\/peers\/0\/holdTime/],
    [{ routerId: '10.0.0.1', asNumber: 1, peers: [{ address: '10.0.0.2', asNumber: 1, addPaths: 'yes' }] }, /\/peers\/0\/addPaths/],
    [{ routerId: '10.0.0.1', asNumber: 1, originate: ['10.0.0.0'] }, /\/originate\/0/],
    [{ routerId: '10.0.0.1', asNumber: 1, bogus: 1 }, /must NOT have additional properties/],
    [{ routerId: '10.0.0.1', asNumber: 1, peers: [{ address: '10.0.0.2', asNumber: 1 }, { address: '10.0.0.2', asNumber: 2 }] }, /listed twice/],
  ];
  for (const [doc, re] of bad) await assert.rejects(parseConfig(doc), (e: unknown) => e instanceof ConfigError && re.test(e.message));
});
