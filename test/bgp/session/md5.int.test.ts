/**
 * TCP-MD5 (RFC 2385) between two of our Sessions on loopback (needs root for TCP_MD5SIG on some
 * kernels, and Linux). Ports 17920-17929.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import type { Socket } from 'node:net';
import { pino } from 'pino';
import { Session, type StateChange } from '../../../bgp/session/index.js';
import { BgpListener, connectPeer, normalize } from '../../../bgp/net/index.js';
import { needRoot } from '../../lib/skip.js';

const PASSWORD = 'n0t-in-logs-s3cret';

function captureLogger(): { logger: pino.Logger; text: () => string } {
  const chunks: string[] = [];
  const dest = new Writable({
    write(c: Buffer, _e, cb) {
      chunks.push(c.toString());
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, dest), text: () => chunks.join('') };
}

async function run(t: { after(fn: () => unknown): void }, portA: number, portB: number, passA: string, passB: string, log: pino.Logger): Promise<[Session, Session]> {
  const mk = async (addr: string, peer: string, myPort: number, peerPort: number, pass: string, rid: string, passive: boolean): Promise<Session> => {
    const ref: { s?: Session } = {};
    const l = new BgpListener((sock: Socket) => {
      if (ref.s && normalize(sock.remoteAddress ?? '') === peer) ref.s.acceptIncoming(sock);
      else sock.destroy();
    });
    await l.listen(addr, myPort);
    l.setPeerPassword(peer, pass);
    const s = new Session({
      config: { localAs: 64512, routerId: rid, peerAs: 64512, holdTime: 9 },
      peerAddress: peer,
      passive,
      connectRetryTime: 1,
      idleHoldTime: 1,
      logger: log,
      connect: () => connectPeer({ host: peer, port: peerPort, localAddress: addr, password: pass, timeoutMs: 700 }),
    });
    ref.s = s;
    t.after(async () => {
      s.stop();
      await l.close();
    });
    return s;
  };
  const a = await mk('127.0.0.1', '127.0.0.2', portA, portB, passA, '10.0.0.1', false);
  const b = await mk('127.0.0.2', '127.0.0.1', portB, portA, passB, '10.0.0.2', true);
  return [a, b];
}

test('MD5: same password → Established', { skip: needRoot() ?? false }, async (t) => {
  const { logger, text } = captureLogger();
  const [a, b] = await run(t, 17920, 17921, PASSWORD, PASSWORD, logger);
  a.start();
  b.start();
  await Promise.all([once(a, 'established'), once(b, 'established')]);
  assert.ok(text().includes('Established'));
  assert.ok(!text().includes(PASSWORD), 'the password must never be logged');
});

test('MD5: wrong password → status "no answer (MD5 key mismatch or filtered)", never Established', { skip: needRoot() ?? false }, async (t) => {
  const { logger, text } = captureLogger();
  const [a, b] = await run(t, 17922, 17923, PASSWORD, 'another-password', logger);
  let established = false;
  a.on('established', () => (established = true));
  b.on('established', () => (established = true));
  a.start();
  b.start();
  // wait for the connect attempt to time out and be reported
  let change: StateChange | undefined;
  while (!change || change.to !== 'Active') [change] = (await once(a, 'state')) as [StateChange];
  assert.equal(change.detail, 'no answer (MD5 key mismatch or filtered)');
  assert.equal(a.status().lastError, 'no answer (MD5 key mismatch or filtered)');
  assert.equal(established, false);
  assert.ok(!text().includes(PASSWORD) && !text().includes('another-password'), 'passwords must never be logged');
});

test('GTSM: both sides with ttl security → connects; against a plain listener → no answer', { skip: needRoot() ?? false }, async (t) => {
  const got: Socket[] = [];
  const l = new BgpListener((s: Socket) => got.push(s));
  await l.listen('127.0.0.1', 17924);
  t.after(async () => {
    for (const s of got) s.destroy();
    await l.close();
  });
  l.setPeerTtlSecurity('127.0.0.2', 1);
  const s = await connectPeer({ host: '127.0.0.1', port: 17924, localAddress: '127.0.0.2', ttlSecurityHops: 1, timeoutMs: 2000 });
  s.destroy();
  const plain = new BgpListener((x: Socket) => x.destroy());
  await plain.listen('127.0.0.1', 17925);
  t.after(() => plain.close());
  await assert.rejects(connectPeer({ host: '127.0.0.1', port: 17925, localAddress: '127.0.0.2', ttlSecurityHops: 1, timeoutMs: 700 }), /no answer/);
});

test('MD5 over IPv6 (::1): right key connects, wrong key gets no answer', { skip: needRoot() ?? false }, async (t) => {
  const l = new BgpListener((s: Socket) => {
    s.end('ok');
  });
  await l.listen('::1', 17926);
  t.after(() => l.close());
  l.setPeerPassword('::1', PASSWORD);
  const s = await connectPeer({ host: '::1', port: 17926, password: PASSWORD, timeoutMs: 2000 });
  const chunks: Buffer[] = [];
  s.on('data', (d: Buffer) => chunks.push(d));
  await once(s, 'close');
  assert.equal(Buffer.concat(chunks).toString(), 'ok');
  await assert.rejects(connectPeer({ host: '::1', port: 17926, password: 'wrong', timeoutMs: 700 }), /MD5 key mismatch/);
});

test('MD5: removing a key that was never set is a no-op; setting then removing works', { skip: needRoot() ?? false }, async (t) => {
  const l = new BgpListener((sock: Socket) => sock.destroy());
  t.after(() => l.close());
  await l.listen('127.0.0.1', 17948);
  assert.doesNotThrow(() => l.setPeerPassword('127.0.0.9', undefined));
  l.setPeerPassword('127.0.0.9', 's3cret');
  // With the key installed, an unsigned SYN from that address goes unanswered…
  await assert.rejects(connectPeer({ host: '127.0.0.1', port: 17948, localAddress: '127.0.0.9', timeoutMs: 500 }));
  assert.doesNotThrow(() => l.setPeerPassword('127.0.0.9', undefined));
  // …and once it is removed (the listener remembers it installed one) plain connections work again.
  const s = await connectPeer({ host: '127.0.0.1', port: 17948, localAddress: '127.0.0.9', timeoutMs: 2000 });
  s.destroy();
  assert.doesNotThrow(() => l.setPeerPassword('127.0.0.9', ''));
});
