/** Session-level collision handling (RFC 4271 §6.8) with fake sockets: deterministic. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Session, buildOpen, type BgpSocket } from '../../../bgp/session/index.js';
import { decodeMessage, encodeKeepalive, encodeOpen } from '../../../bgp/codec/index.js';
import { FakeClock, FakeSocket } from './fakes.js';

function setup(localId: string): { session: Session; outbound: FakeSocket; resolveConnect: () => void } {
  const outbound = new FakeSocket();
  let resolveConnect: () => void = () => undefined;
  const session = new Session({
    config: { localAs: 64512, routerId: localId, peerAs: 64512 },
    peerAddress: '10.0.0.9',
    clock: new FakeClock(),
    connect: () => new Promise<BgpSocket>((r) => (resolveConnect = () => r(outbound as unknown as BgpSocket))),
  });
  session.start();
  return { session, outbound, resolveConnect: () => resolveConnect() };
}

const peerOpen = Buffer.from(encodeOpen(buildOpen({ localAs: 64512, routerId: '10.0.0.9', peerAs: 64512 })));
const kinds = (s: FakeSocket): string[] =>
  s.written.map((b) => {
    const m = decodeMessage(b).message;
    return m.type === 'notification' ? `notification ${m.code}/${m.subcode}` : m.type;
  });

test('collision: the peer has the higher BGP id → its connection wins, ours gets Cease 6/7', async () => {
  const { session, outbound, resolveConnect } = setup('10.0.0.1');
  const incoming = new FakeSocket();
  session.acceptIncoming(incoming as unknown as BgpSocket);
  assert.equal(session.state, 'Connect', 'our connect is still pending: the incoming one waits as a second connection');
  resolveConnect();
  await new Promise((r) => setImmediate(r));
  assert.equal(session.state, 'OpenSent');
  incoming.emit('data', peerOpen);
  assert.deepEqual(kinds(outbound), ['open', 'notification 6/7']);
  assert.deepEqual(kinds(incoming), ['open', 'keepalive']);
  incoming.emit('data', Buffer.from(encodeKeepalive()));
  assert.equal(session.state, 'Established');
  session.stop();
});

test('collision: we have the higher BGP id → our connection wins, the incoming one gets Cease 6/7', async () => {
  const { session, outbound, resolveConnect } = setup('10.0.0.200');
  resolveConnect();
  await new Promise((r) => setImmediate(r));
  const incoming = new FakeSocket();
  session.acceptIncoming(incoming as unknown as BgpSocket);
  incoming.emit('data', peerOpen);
  assert.deepEqual(kinds(incoming), ['open', 'keepalive', 'notification 6/7']);
  outbound.emit('data', peerOpen);
  outbound.emit('data', Buffer.from(encodeKeepalive()));
  assert.equal(session.state, 'Established');
  // an Established session refuses further connections
  const third = new FakeSocket();
  session.acceptIncoming(third as unknown as BgpSocket);
  assert.equal(third.destroyed, true);
  session.stop();
});

test('our connect fails while an incoming connection waits → the incoming one takes over', async () => {
  const outbound = new FakeSocket();
  void outbound;
  let reject: (e: Error) => void = () => undefined;
  const session = new Session({
    config: { localAs: 64512, routerId: '10.0.0.1', peerAs: 64512 },
    peerAddress: '10.0.0.9',
    clock: new FakeClock(),
    connect: () => new Promise<BgpSocket>((_r, j) => (reject = j)),
  });
  session.start();
  const incoming = new FakeSocket();
  session.acceptIncoming(incoming as unknown as BgpSocket);
  reject(new Error('refused'));
  await new Promise((r) => setImmediate(r));
  assert.equal(session.state, 'OpenSent');
  incoming.emit('data', peerOpen);
  incoming.emit('data', Buffer.from(encodeKeepalive()));
  assert.equal(session.state, 'Established');
  session.stop();
});

test('sendUpdates does not hang when the session drops while waiting for drain', async () => {
  const { session, outbound, resolveConnect } = setup('10.0.0.1');
  resolveConnect();
  await new Promise((r) => setImmediate(r));
  outbound.emit('data', peerOpen);
  outbound.emit('data', Buffer.from(encodeKeepalive()));
  assert.equal(session.state, 'Established');
  outbound.write = (b: Uint8Array): boolean => {
    outbound.written.push(b);
    return false; // socket buffer always full
  };
  const p = session.sendUpdates([encodeKeepalive(), encodeKeepalive()]);
  await new Promise((r) => setImmediate(r));
  outbound.emit('close');
  await assert.rejects(p, /not Established/);
  session.stop();
});

test("the peer's OPEN arrives on its connection while our connect is pending → continue on it, drop our late connection", async () => {
  const { session, outbound, resolveConnect } = setup('10.0.0.200');
  const incoming = new FakeSocket();
  session.acceptIncoming(incoming as unknown as BgpSocket);
  incoming.emit('data', peerOpen);
  assert.equal(session.state, 'OpenConfirm');
  resolveConnect();
  await new Promise((r) => setImmediate(r));
  assert.equal(outbound.destroyed, true, 'the late outgoing connection is dropped');
  assert.deepEqual(kinds(outbound), []);
  incoming.emit('data', Buffer.from(encodeKeepalive()));
  assert.equal(session.state, 'Established');
  session.stop();
});

test('setConfig changes the next OPEN (GR restarting bit cleared after a restart)', async () => {
  const { session, outbound, resolveConnect } = setup('10.0.0.1');
  session.setConfig({ localAs: 64512, routerId: '10.0.0.1', peerAs: 64512, gracefulRestart: { restartTime: 90, restarting: false } });
  resolveConnect();
  await new Promise((r) => setImmediate(r));
  const open = decodeMessage(outbound.written[0]!).message;
  assert.ok(open.type === 'open' && open.capabilities.some((c) => c.kind === 'graceful-restart' && c.restartTime === 90 && !c.restarting));
  session.stop();
});

test('RFC 9687: a peer that stops reading gets NOTIFICATION 8 after the send hold time', async () => {
  const outbound = new FakeSocket() as FakeSocket & { writableLength: number; bytesWritten: number };
  outbound.writableLength = 0;
  outbound.bytesWritten = 0;
  const clock = new FakeClock();
  const session = new Session({
    config: { localAs: 64512, routerId: '10.0.0.1', peerAs: 64512, holdTime: 90 },
    peerAddress: '10.0.0.9',
    clock,
    connect: () => Promise.resolve(outbound as unknown as BgpSocket),
  });
  session.start();
  await new Promise((r) => setImmediate(r));
  outbound.emit('data', peerOpen);
  outbound.emit('data', Buffer.from(encodeKeepalive()));
  assert.equal(session.state, 'Established');
  // the peer's window closes: bytes stay queued, nothing moves
  outbound.writableLength = 5000;
  // time passes in 20 s steps; the peer keeps sending KEEPALIVEs, so only the send side is stuck
  for (let i = 0; i < 60 && session.state === 'Established'; i++) {
    clock.t += 20_000;
    for (const [id, tm] of [...clock.timers.entries()].sort((x, y) => x[1].at - y[1].at)) {
      if (tm.at <= clock.t && clock.timers.has(id)) {
        clock.timers.delete(id);
        tm.fn();
      }
    }
    if (session.state === 'Established') outbound.emit('data', Buffer.from(encodeKeepalive()));
  }
  assert.equal(session.state, 'Idle');
  const last = decodeMessage(outbound.written.at(-1)!).message;
  assert.ok(last.type === 'notification' && last.code === 8);
  assert.match(session.status().lastError ?? '', /send hold timer/);
});
