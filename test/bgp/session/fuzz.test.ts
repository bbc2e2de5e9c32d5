/**
 * Every corpi fuzz stream fed to a Session in Established state (fake socket, fake clock):
 * nothing escapes as an exception, and a malformed stream ends in a NOTIFICATION with a
 * defined code (never a silent drop).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { Session, buildOpen, type BgpSocket } from '../../../bgp/session/index.js';
import { FakeClock, FakeSocket } from './fakes.js';
import { decodeMessage, encodeKeepalive, encodeOpen } from '../../../bgp/codec/index.js';
import { sharedBgpData } from '../codec/data.js';

const dir = sharedBgpData('fuzz');

async function establishedSession(): Promise<{ session: Session; sock: FakeSocket; clock: FakeClock }> {
  const sock = new FakeSocket();
  const clock = new FakeClock();
  const session = new Session({
    config: { localAs: 10, routerId: '10.0.1.2', peerAs: 10, families: ['ipv4-unicast', 'ipv6-unicast'], addPath: { 'ipv4-unicast': 'both' } },
    peerAddress: '10.0.1.1',
    clock,
    connect: () => Promise.resolve(sock as unknown as BgpSocket),
  });
  session.start();
  await new Promise((r) => setImmediate(r));
  const peer = buildOpen({ localAs: 10, routerId: '10.0.1.1', peerAs: 10, families: ['ipv4-unicast', 'ipv6-unicast'], addPath: { 'ipv4-unicast': 'both' } });
  sock.emit('data', Buffer.from(encodeOpen(peer)));
  sock.emit('data', Buffer.from(encodeKeepalive()));
  assert.equal(session.state, 'Established');
  return { session, sock, clock };
}

test('fake clock: keepalive every hold/3 and hold expiry in Established', async () => {
  const { session, sock, clock } = await establishedSession();
  const before = sock.written.length;
  // fire the earliest timer (keepalive = 30 s)
  const next = [...clock.timers.entries()].sort((x, y) => x[1].at - y[1].at)[0]!;
  clock.t = next[1].at;
  clock.timers.delete(next[0]);
  next[1].fn();
  assert.equal(sock.written.length, before + 1);
  assert.deepEqual(decodeMessage(sock.written.at(-1)!).message, { type: 'keepalive' });
  // now the hold timer (90 s): NOTIFICATION 4/0 and Idle
  const hold = [...clock.timers.entries()].sort((x, y) => y[1].at - x[1].at)[0]!;
  clock.timers.delete(hold[0]);
  hold[1].fn();
  const m = decodeMessage(sock.written.at(-1)!).message;
  assert.ok(m.type === 'notification' && m.code === 4);
  assert.equal(session.state, 'Idle');
  session.stop();
});

test('corpi corpus into an Established session: no exception, errors end in a NOTIFICATION', { skip: dir ? false : 'shared test data not found' }, async () => {
  const files = readdirSync(dir!);
  let notified = 0;
  let updates = 0;
  for (const f of files) {
    const { session, sock } = await establishedSession();
    session.on('update', () => updates++);
    const n0 = sock.written.length;
    sock.emit('data', readFileSync(`${dir}/${f}`));
    if (session.state === 'Idle') {
      const last = sock.written.slice(n0).map((b) => decodeMessage(b).message).filter((m) => m.type === 'notification');
      // either we sent a NOTIFICATION, or the peer's stream carried one
      if (last.length) notified++;
    }
    session.stop();
  }
  assert.ok(notified > 100, `NOTIFICATIONs sent: ${notified}`);
  assert.ok(updates > 100, `UPDATEs delivered: ${updates}`);
});
