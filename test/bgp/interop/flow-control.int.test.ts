/**
 * Inbound flow control against a real BIRD 2 (namespaces tbp-flow-t / -p, veth 10.99.91.0/24, BGP
 * port 18241): BIRD sends 100k prefixes as fast as it can to a tabby-bgp that lets only 2000
 * route operations wait for its RIB; tabby must pause reading (TCP backpressure), still receive
 * all of them, and neither side may drop the session (hold time 3 s).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { firstReason, needCommand, needRoot } from '../../lib/skip.js';
import { queryStatus } from '../../../bgp/ctl.js';
import { makeLab, sh, until } from './lab.js';
import { birdConf, tabbyConf } from './bird-conf.js';

const PORT = 18241;
const N = 100_000;

test('BIRD floods 100k prefixes: tabby pauses reading, gets them all, session stays up', { skip: firstReason(needRoot(), needCommand('bird', 'bird2')) ?? false, timeout: 180_000 }, async (t) => {
  const lab = makeLab(t, 'flow', 91, 'tbp');
  const sock = path.join(lab.dir, 'tabby.sock');
  const birdCtl = path.join(lab.dir, 'bird.ctl');
  const statics = Array.from({ length: N }, (_, i) => `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${(i & 255)}/32`);
  writeFileSync(path.join(lab.dir, 'bird.conf'), birdConf(lab.peerIp, lab.tabbyIp, statics, PORT).replace('hold time 9;', 'hold time 3;'));
  const bird = lab.spawnIn(lab.peerNs, 'bird', ['-f', '-c', path.join(lab.dir, 'bird.conf'), '-s', birdCtl]);
  const conf = JSON.parse(tabbyConf(lab, [], PORT)) as Record<string, unknown> & { peers: Array<Record<string, unknown>> };
  Object.assign(conf.peers[0]!, { holdTime: 3 });
  Object.assign(conf, { fib: { install: false }, maxPendingRoutes: 2000 });
  const tabby = lab.startTabby(JSON.stringify(conf));
  const birdc = (...args: string[]) => sh('birdc', ['-s', birdCtl, ...args]);
  const debug = () => `--- tabby\n${tabby.output().slice(-3000)}\n--- bird\n${bird.output().slice(-2000)}`;

  const est = await until('Established', async () => {
    const s = await queryStatus(sock);
    return s.peers[0]?.state === 'Established' ? s.peers[0] : undefined;
  }, 60_000, debug);
  const done = await until(`${N} prefixes`, async () => {
    const p = (await queryStatus(sock)).peers[0];
    return p && p.prefixes.accepted === N && !p.pendingRoutes ? p : undefined;
  }, 120_000, debug);
  assert.equal(done.state, 'Established');
  assert.equal(done.since, est.since, 'the session never dropped');
  assert.ok((done.inputPauses ?? 0) >= 1, `tabby paused reading (inputPauses ${String(done.inputPauses)})`);
  assert.equal(done.inputPaused, undefined, 'reading again');
  assert.match(birdc('show', 'protocols', 'tabby'), /Established/);
});
