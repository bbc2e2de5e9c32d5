import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { connectPeer } from '../../../bgp/net/index.js';

// A blocked event loop (a starved CPU) must not turn a connect that completed meanwhile into
// "no answer": libuv runs the expired timeout before it polls the finished connect.
test('connectPeer: a connect that completed during an event-loop stall longer than the timeout succeeds', async (t) => {
  const server = net.createServer((s) => s.destroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const { port } = server.address() as AddressInfo;
  const pending = connectPeer({ host: '127.0.0.1', port, timeoutMs: 20 });
  const until = Date.now() + 150;
  while (Date.now() < until) {
    // busy: the kernel completes the handshake, the loop does not run
  }
  const s = await pending;
  assert.equal(s.remotePort, port);
  s.destroy();
});

test('connectPeer: a refused connect is still reported as refused (the deferred timeout does not mask errors)', async () => {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((r) => probe.close(() => r()));
  await assert.rejects(connectPeer({ host: '127.0.0.1', port, timeoutMs: 1000 }), /connection refused/);
});
