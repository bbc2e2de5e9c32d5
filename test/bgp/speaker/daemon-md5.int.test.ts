/**
 * A listen change keeps TCP-MD5 working (root for TCP_MD5SIG; loopback 127.0.0.1:18250 → 18252,
 * peer on 127.0.0.2:18251): the peers' keys move to the new listening socket, so a peer that
 * reconnects to the new port with its password is accepted, and the old session is untouched
 * until then.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../../lib/log.js';
import { needRoot } from '../../lib/skip.js';
import { runDaemon } from '../../../bgp/daemon.js';
import type { SpeakerConfig } from '../../../bgp/speaker/config.js';
import { loopbackPeer } from './loopback-peer.js';

async function until(what: string, cond: () => boolean, ms = 20000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('listen change with MD5: keys move to the new socket; the peer reconnects there', { skip: needRoot() ?? false, timeout: 60_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tbp-md5-'));
  const file = join(dir, 'bgp.json');
  const conf = (port: number) =>
    JSON.stringify({
      routerId: '10.255.3.1',
      asNumber: 64512,
      listen: { address: '127.0.0.1', port },
      peers: [{ address: '127.0.0.2', asNumber: 64513, passive: true, holdTime: 9, password: 'k3y-s3cret' }],
      originate: ['10.244.8.0/26'],
    });
  await writeFile(file, conf(18250));
  const d = await runDaemon({ configFile: file, logger: silentLogger(), signals: false });
  const bCfg = (port: number): SpeakerConfig => ({
    routerId: '10.255.3.2',
    asNumber: 64513,
    peers: [{ address: '127.0.0.1', port, asNumber: 64512, sourceAddress: '127.0.0.2', holdTime: 9, password: 'k3y-s3cret', connectRetryTime: 1 }],
  });
  const peer = await loopbackPeer(bCfg(18250), 18251);
  t.after(async () => {
    await peer.close();
    await d.shutdown();
    await rm(dir, { recursive: true, force: true });
  });
  const est = () => d.speaker.status().peers[0]?.state === 'Established';
  await until('Established on 18250', est);
  const since = d.speaker.status().peers[0]!.since;

  await writeFile(file, conf(18252));
  await d.reload();
  assert.equal(d.speaker.status().peers[0]?.since, since, 'the session over the old port goes on');
  // The peer now dials the new port (its own config change resets its side).
  await peer.speaker.setConfig(bCfg(18252));
  await until('Established again', () => est() && d.speaker.status().peers[0]!.since !== since);
  assert.equal(peer.speaker.status().peers[0]?.state, 'Established');
  assert.equal(peer.speaker.routes('10.244.8.0/26').length, 1);
});
