/**
 * BGPFilter on the wire against a real BIRD 2 (namespaces tbp-filt-t / -p, veth 10.99.92.0/24, BGP
 * port 18242): export rules reject one prefix and, for another, prepend to the AS_PATH and add a
 * community and a large community — BIRD shows exactly that; an import rule with setPriority puts
 * BIRD's route into our kernel with that metric, and one rejected on import stays out.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { firstReason, needCommand, needRoot } from '../../lib/skip.js';
import { makeLab, sh, until } from './lab.js';
import { birdConf, tabbyConf } from './bird-conf.js';

const PORT = 18242;

test('BGPFilter operations and rejects as BIRD and our kernel see them', { skip: firstReason(needRoot(), needCommand('bird', 'bird2')) ?? false, timeout: 120_000 }, async (t) => {
  const lab = makeLab(t, 'filt', 92, 'tbp');
  const birdCtl = path.join(lab.dir, 'bird.ctl');
  writeFileSync(path.join(lab.dir, 'bird.conf'), birdConf(lab.peerIp, lab.tabbyIp, ['10.244.1.0/26', '10.244.9.0/26'], PORT));
  const bird = lab.spawnIn(lab.peerNs, 'bird', ['-f', '-c', path.join(lab.dir, 'bird.conf'), '-s', birdCtl]);
  const conf = JSON.parse(tabbyConf(lab, ['10.244.2.0/26', '10.244.3.0/26', '10.244.4.0/26'], PORT)) as Record<string, unknown> & { peers: Array<Record<string, unknown>> };
  conf.peers[0]!.filters = ['f'];
  conf.filters = [
    {
      name: 'f',
      exportV4: [
        { action: 'Reject', cidr: '10.244.3.0/26', matchOperator: 'Equal' },
        { action: 'Accept', cidr: '10.244.2.0/24', matchOperator: 'In', prefixLength: { min: 26 }, operations: [{ prependASPath: { prefix: [65010, 65011] } }, { addCommunity: { value: '65000:100' } }, { addCommunity: { value: '65000:1:2' } }] },
      ],
      importV4: [
        { action: 'Reject', cidr: '10.244.9.0/26', matchOperator: 'Equal' },
        { action: 'Accept', cidr: '10.244.0.0/16', matchOperator: 'In', operations: [{ setPriority: { value: 333 } }] },
      ],
    },
  ];
  const tabby = lab.startTabby(JSON.stringify(conf));
  const birdc = (...args: string[]) => sh('birdc', ['-s', birdCtl, ...args]);
  const debug = () => `--- tabby\n${tabby.output().slice(-3000)}\n--- bird\n${bird.output().slice(-2000)}`;

  const two = await until('BIRD has our routes', () => {
    const out = birdc('show', 'route', 'all', 'protocol', 'tabby');
    return /10\.244\.2\.0\/26/.test(out) && /10\.244\.4\.0\/26/.test(out) ? out : undefined;
  }, 40_000, debug);
  assert.doesNotMatch(two, /10\.244\.3\.0\/26/, 'rejected on export');
  const r2 = birdc('show', 'route', 'all', '10.244.2.0/26');
  assert.match(r2, /BGP\.as_path: 65010 65011\s*$/m, r2);
  assert.match(r2, /BGP\.community: \(65000,100\)/);
  assert.match(r2, /BGP\.large_community: \(65000, 1, 2\)/);
  const r4 = birdc('show', 'route', 'all', '10.244.4.0/26');
  assert.doesNotMatch(r4, /BGP\.community/, 'outside the rule: unchanged');
  assert.match(r4, /BGP\.as_path:\s*$/m);

  const kernel = await until('BIRD route in our kernel', () => {
    const out = sh('ip', ['-n', lab.tabbyNs, 'route', 'show', 'proto', '80']);
    return out.includes('10.244.1.0/26') ? out : undefined;
  }, 20_000, debug);
  assert.match(kernel, new RegExp(`10\\.244\\.1\\.0/26 via ${lab.peerIp.replace(/\./g, '\\.')} dev e0 metric 333`));
  assert.doesNotMatch(kernel, /10\.244\.9\.0/, 'rejected on import');
});
