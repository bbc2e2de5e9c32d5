/**
 * Inbound flow control over real TCP on loopback (no root; 127.0.0.1:18210 ⇐ 127.0.0.2): a raw
 * peer floods UPDATEs as fast as its socket accepts them; the speaker must stop reading while
 * its RIB is behind (so the queue of decoded routes stays bounded and the flood backs up into
 * the peer's socket), keep the session up, and end with every update applied in order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { BgpListener } from '../../../bgp/net/index.js';
import { BgpSpeaker, type PeerStateEvent } from '../../../bgp/speaker.js';
import { SessionTransports } from '../../../bgp/speaker/session-transport.js';
import { MessageFramer, decodeMessage, encodeKeepalive, encodeOpen, packUpdates } from '../../../bgp/codec/index.js';
import { buildOpen } from '../../../bgp/session/index.js';
import { libcFunc } from '../../../lib/libc.js';

/** Small kernel socket buffers, so the flood outgrows them quickly (SOL_SOCKET 1, SO_SNDBUF 7, SO_RCVBUF 8). */
function setBuf(fd: number, opt: 7 | 8, bytes: number): void {
  const setsockopt = libcFunc<(fd: number, level: number, name: number, val: Buffer, len: number) => number>('int setsockopt(int, int, int, void *, uint32_t)');
  const b = Buffer.alloc(4);
  b.writeInt32LE(bytes);
  assert.equal(setsockopt(fd, 1, opt, b, 4), 0, 'setsockopt');
}
const fdOf = (o: unknown): number => (o as { _handle: { fd: number } })._handle.fd;

const PORT = 18210;
const PREFIXES = 20_000;
const ROUNDS = 20;
const MAX_PENDING = 5000;
/** One 64 KiB socket read holds at most ~16k /24 NLRI: the queue may exceed the bound by that. */
const BOUND = MAX_PENDING + 20_000;

function prefix(i: number): string {
  return `10.${(i >> 8) & 255}.${i & 255}.0/24`;
}

test('a peer flooding UPDATEs is paused by TCP backpressure: bounded queue, session stays up, all applied', { timeout: 120_000 }, async (t) => {
  const listener = new BgpListener((s: net.Socket) => transports.incoming(s));
  await listener.listen('127.0.0.1', PORT);
  // Accepted sockets inherit it: no receive-window autotuning up to megabytes.
  setBuf(fdOf((listener as unknown as { server: unknown }).server), 8, 32 * 1024);
  const transports = new SessionTransports({ listener });
  const sp = new BgpSpeaker(
    { routerId: '10.255.0.1', asNumber: 64512, peers: [{ address: '127.0.0.2', asNumber: 64513, passive: true, holdTime: 3 }], maxPendingRoutes: MAX_PENDING },
    { transport: transports.factory },
  );
  const states: PeerStateEvent[] = [];
  sp.on('peer-state', (e) => states.push(e));
  await sp.start();
  let maxPending = 0;
  let sawPaused = false;
  const heapBefore = process.memoryUsage().heapUsed;
  let heapPeak = heapBefore;
  const sampler = setInterval(() => {
    const p = sp.status().peers[0];
    maxPending = Math.max(maxPending, p?.pendingRoutes ?? 0);
    sawPaused ||= p?.inputPaused === true;
    heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
  }, 20);
  const sock = net.connect({ host: '127.0.0.1', port: PORT, localAddress: '127.0.0.2' });
  t.after(async () => {
    clearInterval(sampler);
    sock.destroy();
    await sp.stop();
    await listener.close();
  });
  const framer = new MessageFramer();
  let keepalives = 0;
  let established!: () => void;
  const up = new Promise<void>((r) => (established = r));
  sock.on('data', (c: Buffer) => {
    for (const m of framer.push(c)) {
      const d = decodeMessage(m).message;
      if (d.type === 'keepalive' && ++keepalives === 1) established();
    }
  });
  await new Promise<void>((r) => sock.once('connect', () => r()));
  setBuf(fdOf(sock), 7, 32 * 1024);
  sock.write(encodeOpen(buildOpen({ localAs: 64513, routerId: '10.255.0.9', peerAs: 64512, holdTime: 3 })));
  sock.write(encodeKeepalive());
  await up;

  // The flood: every prefix again and again with a new MED, written as fast as TCP takes it.
  let blocked = 0;
  const nlri = Array.from({ length: PREFIXES }, (_, i) => ({ prefix: prefix(i) }));
  for (let round = 1; round <= ROUNDS; round++) {
    const msgs = packUpdates({ family: 'ipv4-unicast', attributes: { origin: 0, asPath: [{ type: 2, asns: [64513] }], nextHop: '127.0.0.2', med: round }, nlri });
    for (const m of msgs) {
      if (!sock.write(m)) {
        blocked++;
        await new Promise<void>((r) => sock.once('drain', () => r()));
      }
    }
  }
  const last = (): number | undefined => sp.routes(prefix(PREFIXES - 1))[0]?.paths[0]?.med;
  for (let i = 0; last() !== ROUNDS || (sp.status().peers[0]?.pendingRoutes ?? 0) > 0; i++) {
    if (i > 2000) assert.fail(`flood not applied: last MED ${String(last())}, ${JSON.stringify(sp.status().peers[0])}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const st = sp.status().peers[0]!;
  assert.equal(st.state, 'Established');
  assert.deepEqual(states.filter((s) => s.from === 'Established'), [], 'the session never dropped');
  assert.equal(st.prefixes.accepted, PREFIXES);
  assert.equal(sp.routes(prefix(0))[0]?.paths[0]?.med, ROUNDS, 'every update applied, in order');
  assert.ok(sawPaused, 'the speaker stopped reading at least once');
  assert.ok((st.inputPauses ?? 0) >= 1);
  assert.ok(blocked > 0, 'the flood backed up into the peer (TCP backpressure)');
  assert.ok(maxPending <= BOUND, `routes waiting for the RIB stayed bounded: max ${maxPending} > ${BOUND}`);
  assert.equal(st.inputPaused, undefined, 'reading again once drained');
  assert.ok(keepalives >= 1);
  t.diagnostic(`max routes waiting ${maxPending}; heap growth peak ${Math.round((heapPeak - heapBefore) / 2 ** 20)} MiB`);
});
