/**
 * Session write coalescing: the messages a session writes in one event-loop turn leave in one
 * writev (net.Socket cork/uncork), so an UPDATE and its End-of-RIB are one TCP segment; a
 * NOTIFICATION written just before the connection closes is still sent (end() flushes).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Session, buildOpen, type BgpSocket } from '../../../bgp/session/index.js';
import { buildEndOfRib, decodeMessage, encodeKeepalive, encodeOpen } from '../../../bgp/codec/index.js';
import { FakeClock, FakeSocket } from './fakes.js';

/** A FakeSocket with net.Socket's cork semantics: `flushes` holds what each writev (or plain write) carried. */
class CorkingSocket extends FakeSocket {
  corks = 0;
  pending: Uint8Array[] = [];
  flushes: Uint8Array[][] = [];
  cork(): void {
    this.corks++;
  }
  uncork(): void {
    if (this.corks > 0 && --this.corks === 0) this.flush();
  }
  override write(b: Uint8Array): boolean {
    this.written.push(b);
    if (this.corks > 0) this.pending.push(b);
    else this.flushes.push([b]);
    return true;
  }
  override end(): void {
    this.corks = 0;
    this.flush();
    super.end();
  }
  private flush(): void {
    if (this.pending.length > 0) this.flushes.push(this.pending.splice(0));
  }
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
const kind = (b: Uint8Array): string => {
  const m = decodeMessage(b).message;
  return m.type === 'notification' ? `notification ${m.code}/${m.subcode}` : m.type;
};
const groups = (s: CorkingSocket): string[][] => s.flushes.map((g) => g.map(kind));

async function established(writeBatch?: number): Promise<{ session: Session; socket: CorkingSocket }> {
  const socket = new CorkingSocket();
  const session = new Session({
    config: { localAs: 64512, routerId: '10.0.0.1', peerAs: 64512 },
    peerAddress: '10.0.0.9',
    clock: new FakeClock(),
    connect: () => Promise.resolve(socket as unknown as BgpSocket),
    ...(writeBatch !== undefined ? { writeBatch } : {}),
  });
  session.start();
  await turn();
  socket.emit('data', Buffer.from(encodeOpen(buildOpen({ localAs: 64512, routerId: '10.0.0.9', peerAs: 64512 }))));
  socket.emit('data', Buffer.from(encodeKeepalive()));
  assert.equal(session.state, 'Established');
  await turn();
  return { session, socket };
}

test('an UPDATE batch and the End-of-RIB written in one turn leave in one writev', async () => {
  const { session, socket } = await established();
  const before = socket.flushes.length;
  const update = buildEndOfRib('ipv4-unicast'); // any UPDATE-framed message will do
  const sent = session.sendUpdates([update, update]);
  await sent; // one batch: no yield to the event loop, the caller goes on in this turn
  session.send(buildEndOfRib('ipv4-unicast'));
  assert.equal(socket.flushes.length, before, 'nothing left before the turn ended');
  await turn();
  assert.deepEqual(groups(socket).slice(before), [['update', 'update', 'update']]);
  session.stop();
});

test('batches larger than writeBatch still yield between batches, each its own writev', async () => {
  const { session, socket } = await established(2);
  const before = socket.flushes.length;
  await session.sendUpdates(Array.from({ length: 5 }, () => buildEndOfRib('ipv4-unicast')));
  await turn();
  assert.deepEqual(groups(socket).slice(before).map((g) => g.length), [2, 2, 1]);
  session.stop();
});

test('a NOTIFICATION written right before the connection closes is flushed, not dropped', async () => {
  const { session, socket } = await established();
  session.stop();
  assert.equal(socket.destroyed, true);
  assert.deepEqual(groups(socket).at(-1), ['notification 6/2']);
  assert.equal(socket.pending.length, 0);
});
