/** diffPeers: which peers a reconfiguration adds, removes, resets (session fields) or only updates. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diffPeers, type PeerConfig } from '../../../bgp/speaker/config.js';

const peer = (address: string, extra: Partial<PeerConfig> = {}): PeerConfig => ({ address, asNumber: 64512, ...extra });

test('diffPeers: added, removed, reset on a session field, updated on a policy field, unchanged otherwise', () => {
  const prev = [peer('10.0.0.1'), peer('10.0.0.2', { holdTime: 90 }), peer('10.0.0.3', { filters: ['a'] }), peer('10.0.0.4')];
  const next = [
    peer('10.0.0.1'),
    peer('10.0.0.2', { holdTime: 30 }),
    peer('10.0.0.3', { filters: ['a', 'b'] }),
    peer('10.0.0.5'),
  ];
  const d = diffPeers(prev, next);
  assert.deepEqual(d.added.map((p) => p.address), ['10.0.0.5']);
  assert.deepEqual(d.removed, ['10.0.0.4']);
  assert.deepEqual(d.reset.map((p) => p.address), ['10.0.0.2']);
  assert.deepEqual(d.updated.map((p) => p.address), ['10.0.0.3']);
});

test('diffPeers: key order and undefined-versus-absent fields are no change; nested values are compared by value', () => {
  const a: PeerConfig = { address: '10.0.0.1', asNumber: 64512, filters: ['x'], description: 'node-to-node mesh' };
  const b = { description: 'node-to-node mesh', filters: ['x'], asNumber: 64512, address: '10.0.0.1', password: undefined } as PeerConfig;
  assert.deepEqual(diffPeers([a], [b]), { added: [], removed: [], reset: [], updated: [] });
  const c: PeerConfig = { ...a, filters: ['y'] };
  assert.deepEqual(diffPeers([a], [c]).updated.map((p) => p.address), ['10.0.0.1']);
  const d: PeerConfig = { ...a, description: undefined };
  assert.deepEqual(diffPeers([a], [d]).updated.length, 1, 'a field that goes away is a change');
});
