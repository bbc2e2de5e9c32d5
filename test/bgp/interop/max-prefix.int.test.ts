/**
 * Max-prefix restart against a real BIRD 2 (namespaces tbp-maxpfx-t / -p, veth 10.99.90.0/24,
 * BGP port 18240): BIRD sends 3 prefixes, tabby allows 2 → tabby closes with Cease 1 (BIRD sees
 * "Maximum number of prefixes reached"), shows the reason while Idle, and after its idle time
 * reconnects by itself (and, BIRD still sending 3, hits the limit again).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { firstReason, needCommand, needRoot } from '../../lib/skip.js';
import { queryStatus } from '../../../bgp/ctl.js';
import { makeLab, sh, until } from './lab.js';
import { birdConf, tabbyConf } from './bird-conf.js';

const PORT = 18240;

test('max prefixes: Cease 1 to BIRD, reason in status, automatic reconnect after the idle time', { skip: firstReason(needRoot(), needCommand('bird', 'bird2')) ?? false, timeout: 120_000 }, async (t) => {
  const lab = makeLab(t, 'maxpfx', 90, 'tbp');
  const sock = path.join(lab.dir, 'tabby.sock');
  const birdCtl = path.join(lab.dir, 'bird.ctl');
  writeFileSync(path.join(lab.dir, 'bird.conf'), birdConf(lab.peerIp, lab.tabbyIp, ['10.244.1.0/26', '10.244.2.0/26', '10.244.3.0/26'], PORT));
  const bird = lab.spawnIn(lab.peerNs, 'bird', ['-f', '-c', path.join(lab.dir, 'bird.conf'), '-s', birdCtl]);
  const conf = JSON.parse(tabbyConf(lab, [], PORT)) as { peers: Array<Record<string, unknown>>; fib: unknown };
  Object.assign(conf.peers[0]!, { maxPrefixes: 2, maxPrefixRestartTime: 2 });
  conf.fib = { install: false };
  const tabby = lab.startTabby(JSON.stringify(conf));
  const birdc = (...args: string[]) => sh('birdc', ['-s', birdCtl, ...args]);
  const debug = () => `--- tabby\n${tabby.output().slice(-3000)}\n--- bird\n${bird.output().slice(-2000)}`;

  const st = await until('tabby stops the session at the limit', async () => {
    const s = await queryStatus(sock);
    return s.peers[0]?.lastError === 'max prefixes reached (2)' && s.peers[0].state !== 'Established' ? s.peers[0] : undefined;
  }, 40_000, debug);
  assert.match(st.info, /^max prefixes reached \(2\); reconnecting in \d+s$/);
  await until('BIRD got the Cease', () => /Maximum number of prefixes reached/i.test(birdc('show', 'protocols', 'all', 'tabby')), 20_000, debug);
  // After the idle time the session comes back by itself; BIRD still sends 3, so the limit trips again.
  await until('restart after the idle time', () => /restarting after the max-prefix idle time/.test(tabby.output()), 20_000, debug);
  await until('limit hit a second time', () => (tabby.output().match(/max prefixes reached \(2\): session closed/g) ?? []).length >= 2, 30_000, debug);
});
