/**
 * The session's connect timeout stays below its connect-retry time (so an attempt fails and is
 * reported before the retry timer would replace it), a socket arriving after that deadline is
 * closed, and a configured keepalive time is used (capped by the negotiated hold time).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Session, buildOpen, negotiate, type BgpSocket } from '../../../bgp/session/index.js';
import { FakeClock, FakeSocket } from './fakes.js';

/** Advance the fake clock to `to`, firing due timers in time order. */
function advance(clock: FakeClock, to: number): void {
  for (;;) {
    const due = [...clock.timers.entries()].filter(([, t]) => t.at <= to).sort((a, b) => a[1].at - b[1].at)[0];
    if (!due) break;
    clock.timers.delete(due[0]);
    clock.t = due[1].at;
    due[1].fn();
  }
  clock.t = to;
}
const settle = () => new Promise((r) => setImmediate(r));

function hangingSession(o: { connectRetryTime?: number; connectTimeoutMs?: number }) {
  const clock = new FakeClock();
  const attempts: Array<{ timeoutMs: number; resolve: (s: BgpSocket) => void }> = [];
  const session = new Session({
    config: { localAs: 64512, routerId: '10.0.0.1', peerAs: 64512 },
    peerAddress: '10.0.0.9',
    clock,
    ...o,
    connect: ({ timeoutMs }) => new Promise<BgpSocket>((resolve) => attempts.push({ timeoutMs, resolve })),
  });
  return { clock, attempts, session };
}

test('connect timeout is capped below a short connect-retry time; the attempt fails with a reason first', async () => {
  const { clock, attempts, session } = hangingSession({ connectRetryTime: 1 });
  assert.equal(session.connectTimeoutMs, 800);
  const reasons: string[] = [];
  session.on('state', (c) => reasons.push(`${c.to}:${c.detail ?? c.reason}`));
  session.start();
  assert.equal(attempts.length, 1);
  assert.equal(attempts[0]!.timeoutMs, 800, 'the connector is told the capped timeout');
  advance(clock, 799);
  await settle();
  assert.equal(session.status().lastError, undefined, 'the connector has its own timeout first');
  advance(clock, 900);
  await settle();
  assert.equal(session.status().lastError, 'no answer (connect timed out)');
  assert.ok(reasons.some((r) => r.includes('no answer (connect timed out)')), reasons.join(', '));
  // The socket of the timed-out attempt arrives late: it is closed, not used.
  const late = new FakeSocket();
  attempts[0]!.resolve(late as unknown as BgpSocket);
  await settle();
  assert.equal(late.destroyed, true);
  assert.notEqual(session.state, 'OpenSent');
  session.stop();
});

test('connect timeout: configured value wins when below the cap; default retry (120 s) leaves 5 s', () => {
  assert.equal(hangingSession({ connectRetryTime: 1, connectTimeoutMs: 300 }).session.connectTimeoutMs, 300);
  assert.equal(hangingSession({ connectRetryTime: 10, connectTimeoutMs: 20_000 }).session.connectTimeoutMs, 8000);
  assert.equal(hangingSession({}).session.connectTimeoutMs, 5000);
});

test('connect that answers in time is used (the deadline timer is cleared)', async () => {
  const { clock, attempts, session } = hangingSession({ connectRetryTime: 2 });
  session.start();
  const sock = new FakeSocket();
  attempts[0]!.resolve(sock as unknown as BgpSocket);
  await settle();
  assert.equal(session.state, 'OpenSent');
  advance(clock, 1600);
  await settle();
  assert.equal(sock.destroyed, false);
  assert.equal(session.status().lastError, undefined);
  session.stop();
});

test('keepaliveTime from the config is used when below the negotiated hold time, else hold/3', () => {
  const peer = (holdTime: number) => ({ type: 'open' as const, ...buildOpen({ localAs: 64512, routerId: '10.0.0.9', peerAs: 64512, holdTime }) });
  const cfg = { localAs: 64512, routerId: '10.0.0.1', peerAs: 64512, holdTime: 90 };
  assert.equal(negotiate(cfg, peer(90)).keepaliveTime, 30);
  assert.equal(negotiate({ ...cfg, keepaliveTime: 10 }, peer(90)).keepaliveTime, 10);
  assert.equal(negotiate({ ...cfg, keepaliveTime: 60 }, peer(9)).keepaliveTime, 3, 'a smaller hold offered by the peer wins over a long keepalive');
  assert.equal(negotiate({ ...cfg, keepaliveTime: 10 }, peer(0)).keepaliveTime, 0);
});

test("the connector's own failure reason (e.g. MD5 mismatch) is what status shows", async () => {
  const clock = new FakeClock();
  const session = new Session({
    config: { localAs: 64512, routerId: '10.0.0.1', peerAs: 64512 },
    peerAddress: '10.0.0.9',
    clock,
    connectRetryTime: 1,
    connect: ({ timeoutMs }) => new Promise<BgpSocket>((_r, reject) => clock.setTimeout(() => reject(Object.assign(new Error('x'), { reason: 'MD5 key mismatch / no answer' })), timeoutMs)),
  });
  session.start();
  advance(clock, 800);
  await settle();
  assert.equal(session.status().lastError, 'MD5 key mismatch / no answer');
  advance(clock, 950);
  await settle();
  assert.equal(session.status().lastError, 'MD5 key mismatch / no answer', 'the session deadline of a finished attempt does not fire');
  session.stop();
});
