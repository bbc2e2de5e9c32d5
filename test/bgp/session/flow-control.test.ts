/**
 * Inbound flow control (TCP backpressure) at the session level, deterministic with fake sockets:
 * while input is paused the socket is not read, keepalives still go out, and a hold timer that
 * expires because WE are not reading is re-armed instead of closing the session.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Session, buildOpen, type BgpSocket, type Clock } from '../../../bgp/session/index.js';
import { decodeMessage, encodeKeepalive, encodeOpen } from '../../../bgp/codec/index.js';
import { FakeSocket } from './fakes.js';
import { FakeClock } from '../rib/fake-clock.js';

class PausableSocket extends FakeSocket {
  paused = false;
  pause(): this {
    this.paused = true;
    return this;
  }
  resume(): this {
    this.paused = false;
    return this;
  }
}

/** The RIB tests' manual clock (it can advance), seen through the session's Clock interface. */
function manualClock(): { clock: Clock; advance: (ms: number) => void } {
  const c = new FakeClock();
  return { clock: { setTimeout: (fn, ms) => c.setTimeout(fn, ms), clearTimeout: (h) => c.clearTimeout(h), now: () => c.now }, advance: (ms) => c.advance(ms) };
}

async function established(): Promise<{ session: Session; sock: PausableSocket; advance: (ms: number) => void; kinds: () => string[] }> {
  const sock = new PausableSocket();
  const { clock, advance } = manualClock();
  const cfg = { localAs: 64512, routerId: '10.0.0.1', peerAs: 64512, holdTime: 9 };
  const session = new Session({ config: cfg, peerAddress: '10.0.0.9', clock, connect: () => Promise.resolve(sock as unknown as BgpSocket) });
  session.start();
  await new Promise((r) => setImmediate(r));
  sock.emit('data', Buffer.from(encodeOpen(buildOpen({ ...cfg, routerId: '10.0.0.9' }))));
  sock.emit('data', Buffer.from(encodeKeepalive()));
  assert.equal(session.state, 'Established');
  const kinds = () =>
    sock.written.map((b) => {
      const m = decodeMessage(b).message;
      return m.type === 'notification' ? `notification ${m.code}/${m.subcode}` : m.type;
    });
  return { session, sock, advance, kinds };
}

test('paused input: socket paused, keepalives still sent, hold timer re-armed while we are not reading', async () => {
  const { session, sock, advance, kinds } = await established();
  session.pauseInput();
  assert.equal(sock.paused, true);
  assert.equal(session.inputIsPaused, true);
  const before = kinds().filter((k) => k === 'keepalive').length;
  advance(60_000); // many hold times (9 s) without a message from the peer
  assert.equal(session.state, 'Established', 'our own backpressure does not expire the hold timer');
  assert.ok(kinds().filter((k) => k === 'keepalive').length >= before + 15, 'keepalives every 3 s meanwhile');
  session.resumeInput();
  assert.equal(sock.paused, false);
  // Reading again: a silent peer is now detected as usual.
  assert.ok(!kinds().includes('notification 4/0'));
  advance(9_000);
  assert.notEqual(session.state, 'Established');
  assert.ok(kinds().includes('notification 4/0'), 'Hold Timer Expired');
  session.stop();
});

test('a connection attached while paused starts paused', async () => {
  const sock = new PausableSocket();
  const { clock } = manualClock();
  const session = new Session({ config: { localAs: 64512, routerId: '10.0.0.1', peerAs: 64512 }, peerAddress: '10.0.0.9', clock, connect: () => Promise.resolve(sock as unknown as BgpSocket) });
  session.pauseInput();
  session.start();
  await new Promise((r) => setImmediate(r));
  assert.equal(session.state, 'OpenSent');
  assert.equal(sock.paused, true);
  session.resumeInput();
  assert.equal(sock.paused, false);
  session.stop();
});
