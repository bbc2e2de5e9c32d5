/**
 * tabby-bgp reload without restart (in-process, loopback, no root): listen address/port and the
 * status socket change live while an established session (127.0.0.2 → 127.0.0.1, ports
 * 18220-18223) keeps running; kernel installation switches on/off via the speaker's setFib.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../../lib/log.js';
import { runDaemon } from '../../../bgp/daemon.js';
import { queryStatus } from '../../../bgp/ctl.js';
import { BgpSpeaker } from '../../../bgp/speaker.js';
import { loopbackPeer } from './loopback-peer.js';
import { MemoryFibSink } from '../../../bgp/fib/sink.js';
import { fakeFactory } from './fake-transport.js';

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 15000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Resolves true when a TCP connection to the port is accepted, false when refused. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

test('reload: listen port and status socket change live; the established session is not touched', { timeout: 60_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tbp-live-'));
  const file = join(dir, 'bgp.json');
  const conf = (port: number, sock: string) =>
    JSON.stringify({
      routerId: '10.255.1.1',
      asNumber: 64512,
      listen: { address: '127.0.0.1', port },
      peers: [{ address: '127.0.0.2', asNumber: 64513, passive: true, holdTime: 9 }],
      originate: ['10.244.7.0/26'],
      statusSocket: join(dir, sock),
    });
  await writeFile(file, conf(18220, 'a.sock'));
  const d = await runDaemon({ configFile: file, logger: silentLogger(), signals: false });
  // The other side: a speaker that connects to 127.0.0.1:18220 from 127.0.0.2.
  const peer = await loopbackPeer(
    { routerId: '10.255.1.2', asNumber: 64513, peers: [{ address: '127.0.0.1', port: 18220, asNumber: 64512, sourceAddress: '127.0.0.2', holdTime: 9 }] },
    18221,
  );
  const b = peer.speaker;
  const bStates = peer.states;
  t.after(async () => {
    await peer.close();
    await d.shutdown();
    await rm(dir, { recursive: true, force: true });
  });
  await until('Established', async () => (await queryStatus(join(dir, 'a.sock'))).peers[0]?.state === 'Established');
  await until('route at B', () => b.routes('10.244.7.0/26').length === 1);
  const since = d.speaker.status().peers[0]!.since;

  await writeFile(file, conf(18222, 'b.sock'));
  await d.reload();
  assert.deepEqual(d.listening, { address: '127.0.0.1', port: 18222 });
  assert.equal(await accepts('127.0.0.1', 18222), true, 'new port accepts');
  assert.equal(await accepts('127.0.0.1', 18220), false, 'old port no longer listens');
  const st = await queryStatus(join(dir, 'b.sock'));
  assert.equal(st.peers[0]?.state, 'Established');
  assert.equal(st.peers[0]?.since, since, 'same session');
  assert.deepEqual(st.listen, { address: '127.0.0.1', port: 18222 });
  await assert.rejects(queryStatus(join(dir, 'a.sock'), 1000), 'the old status socket is gone');
  assert.deepEqual(bStates.filter((s) => s.from === 'Established'), [], 'B never saw the session drop');

  // Listening off (port 0), then a port that cannot be bound: the old listener stays.
  await writeFile(file, conf(0, 'b.sock'));
  await d.reload();
  assert.equal(d.listening, undefined);
  assert.equal(await accepts('127.0.0.1', 18222), false);
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen({ host: '127.0.0.1', port: 18223, exclusive: true }, () => r()));
  t.after(() => new Promise<void>((r) => blocker.close(() => r())));
  await writeFile(file, conf(18222, 'b.sock'));
  await d.reload();
  await writeFile(file, conf(18223, 'b.sock'));
  await d.reload();
  assert.deepEqual(d.listening, { address: '127.0.0.1', port: 18222 }, 'a failed listen keeps the previous one');
  assert.equal(d.config.speaker.listen?.port, 18222);
  assert.equal((await queryStatus(join(dir, 'b.sock'))).peers[0]?.since, since);
});

test('setFib: switching kernel installation on and off keeps sessions; routes appear and go', async () => {
  const f = fakeFactory();
  const sp = new BgpSpeaker({ routerId: '10.0.0.100', asNumber: 64512, peers: [{ address: '10.0.0.1', asNumber: 64512 }] }, { transport: f.factory });
  await sp.start();
  const tr = f.transports.get('10.0.0.1')!;
  tr.establish();
  tr.announce(['10.1.0.0/24', '10.2.0.0/24'], { origin: 0, asPath: [] }, '10.0.0.1');
  await sp.settle();
  const a = new MemoryFibSink();
  await sp.setFib(a);
  assert.deepEqual([...a.routes.keys()].sort(), ['10.1.0.0/24', '10.2.0.0/24'], 'the whole Loc-RIB goes in');
  tr.announce(['10.3.0.0/24'], { origin: 0, asPath: [] }, '10.0.0.1');
  await sp.settle();
  assert.equal(a.routes.size, 3, 'later routes too');
  const b = new MemoryFibSink();
  await sp.setFib(b, 'install-first');
  assert.equal(b.routes.size, 3);
  assert.equal(a.routes.size, 0, 'the old sink is emptied');
  assert.deepEqual(a.log.slice(-3).map((l) => l.split(' ')[0]), ['delete', 'delete', 'delete']);
  await sp.setFib(undefined);
  assert.equal(b.routes.size, 0, 'off: our routes are removed');
  tr.announce(['10.4.0.0/24'], { origin: 0, asPath: [] }, '10.0.0.1');
  await sp.settle();
  assert.equal(b.routes.size, 0);
  assert.deepEqual(tr.stopped, [], 'the session was never touched');
  await sp.stop();
});
