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
