/**
 * Misconfigurations against BIRD 2 show up in status with a cause instead of a silent loop
 * (tbr-err-*, 10.99.55.0/24): a wrong peer AS (BIRD refuses our OPEN: Bad Peer AS), and a
 * wrong TCP-MD5 password (no answer: "MD5 key mismatch or filtered").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { firstReason, needCommand, needRoot } from '../../lib/skip.js';
import { queryStatus } from '../../../bgp/ctl.js';
import { formatPeerTable } from '../../../bgp/speaker/status.js';
import { makeLab, until } from './lab.js';
import { PORT, birdConf } from './bird-conf.js';

test('wrong peer AS and wrong MD5 password are reported with their cause', { skip: firstReason(needRoot(), needCommand('bird', 'bird2')) ?? false, timeout: 120_000 }, async (t) => {
  const lab = makeLab(t, 'err', 55);
  const sock = path.join(lab.dir, 'tabby.sock');
  writeFileSync(path.join(lab.dir, 'bird.conf'), birdConf(lab.peerIp, lab.tabbyIp));
  const bird = lab.spawnIn(lab.peerNs, 'bird', ['-f', '-c', path.join(lab.dir, 'bird.conf'), '-s', path.join(lab.dir, 'bird.ctl')]);
  const conf = (asNumber: number, password: string) =>
    JSON.stringify({
      routerId: lab.tabbyIp,
      asNumber: 64512,
      listen: { address: lab.tabbyIp, port: PORT },
      peers: [{ address: lab.peerIp, port: PORT, asNumber, password, holdTime: 9, connectRetryTime: 1 }],
      statusSocket: sock,
    });
  const tabby = lab.startTabby(conf(64999, 's3cret'));
  const debug = () => `--- tabby\n${tabby.output().slice(-3000)}\n--- bird\n${bird.output().slice(-1500)}`;
  // BIRD says 64512 in its OPEN; we expect 64999 → we send OPEN error Bad Peer AS.
  const badAs = await until('bad peer AS in status', async () => {
    const s = await queryStatus(sock);
    return /bad peer AS/i.test(`${s.peers[0]?.info} ${s.peers[0]?.lastError}`) ? s : undefined;
  }, 30_000, debug);
  assert.notEqual(badAs.peers[0]!.state, 'Established');
  assert.match(formatPeerTable(badAs), /bad peer AS/i);
  // Fix the AS but use the wrong password (SIGHUP): the peer no longer answers.
  writeFileSync(path.join(lab.dir, 'tabby-bgp.yaml'), conf(64512, 'wrong'));
  tabby.kill('SIGHUP');
  let last = '';
  const md5 = await until('MD5 mismatch in status', async () => {
    const s = await queryStatus(sock);
    last = JSON.stringify(s.peers);
    return /MD5/.test(`${s.peers[0]?.info} ${s.peers[0]?.lastError}`) ? s : undefined;
  }, 30_000, () => `${debug()}\n--- status\n${last}`);
  assert.notEqual(md5.peers[0]!.state, 'Established');
  assert.doesNotMatch(tabby.output(), /wrong|s3cret/, 'passwords never logged');
  // And the right one brings it up.
  writeFileSync(path.join(lab.dir, 'tabby-bgp.yaml'), conf(64512, 's3cret'));
  tabby.kill('SIGHUP');
  await until('Established', async () => (await queryStatus(sock)).peers[0]?.state === 'Established', 60_000, debug);
});
