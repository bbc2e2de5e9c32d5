// Micro benchmark (issue 5): the receive path of BgpSpeaker without sockets or daemons. N /24
// prefixes are encoded as BIRD sends them (one attribute set, ~1000 NLRI per 4 KB UPDATE), then fed
// in 64 KB "socket reads" (one per event-loop turn, like a fast peer) through the framer, the
// decoder and a speaker with one iBGP peer, until the Loc-RIB holds all N. Prints time, peak RSS and
// the heap left after a full GC. Quick to run, so changes to the RIB can be compared in seconds;
// bench/bgp-receive.ts measures the real thing against BIRD.
//
//   node --expose-gc --import tsx bench/bgp-rib.ts [--n 1000000] [--fib]
//
// --fib: with kernel installation through a sink that accepts every batch at once (the cost of the
// FIB installer's bookkeeping without netlink).
import { BgpSpeaker } from '../bgp/speaker.js';
import { MessageFramer, decodeMessage } from '../bgp/codec/index.js';
import { packUpdates, buildEndOfRib } from '../bgp/codec/update.js';
import type { UpdateMessage } from '../bgp/codec/messages.js';
import { buildOpen, negotiate } from '../bgp/session/negotiate.js';
import type { PeerTransport, TransportHandlers } from '../bgp/speaker/transport.js';
import type { FibOp, FibSink } from '../bgp/fib/sink.js';

const argv = process.argv.slice(2);
const N = Number(argv[argv.indexOf('--n') + 1] ?? 0) || 1_000_000;
const PEER = '10.98.1.1';
const prefix = (i: number): string => `${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}.0/24`;

// The wire stream: UPDATEs of ≤ 4096 bytes, then End-of-RIB.
const msgs = packUpdates(
  {
    family: 'ipv4-unicast',
    attributes: { origin: 0, asPath: [], nextHop: PEER, localPref: 100 },
    nlri: Array.from({ length: N }, (_, i) => ({ prefix: prefix(i) })),
  },
  {},
);
msgs.push(buildEndOfRib('ipv4-unicast'));
const stream = Buffer.concat(msgs);

let handlers: TransportHandlers | undefined;
const transport: PeerTransport = { start: () => undefined, stop: () => undefined, send: () => undefined };
const sp = new BgpSpeaker(
  { routerId: '10.98.1.2', asNumber: 64512, peers: [{ address: PEER, asNumber: 64512 }] },
  {
    transport: (_peer, _local, h) => {
      handlers = h;
      return transport;
    },
  },
);
await sp.start();
if (argv.includes('--fib')) {
  const sink: FibSink = { replace: () => undefined, delete: () => undefined, applyBatch: (ops: readonly FibOp[]) => Promise.resolve(ops.map(() => undefined)) };
  await sp.setFib(sink);
}
const h = handlers!;
// What a session with BIRD negotiates (both sides run the same OPEN code here).
const local = { localAs: 64512, routerId: '10.98.1.2', peerAs: 64512, holdTime: 240 };
const neg = negotiate(local, { type: 'open', ...buildOpen({ ...local, routerId: PEER }) });
const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
const rss0 = process.memoryUsage().rss;
let peak = rss0;
const t0 = performance.now();
const cpu0 = process.cpuUsage();
h.state('OpenConfirm', 'Established', 'established');
h.established(neg, '10.98.1.2');
const framer = new MessageFramer();
const CHUNK = 65536;
let off = 0;
let ticks = 0;
await new Promise<void>((resolve) => {
  const turn = (): void => {
    ticks++;
    peak = Math.max(peak, process.memoryUsage.rss());
    if (off < stream.length) {
      for (const m of framer.push(stream.subarray(off, off + CHUNK))) {
        const d = decodeMessage(m, neg.decode);
        h.update(d.message as UpdateMessage, d.treatAsWithdraw ?? false);
      }
      off += CHUNK;
    }
    if ((sp.status().peers[0]?.prefixes.accepted ?? 0) >= N) {
      void sp.settle().then(() => resolve());
      return;
    }
    setImmediate(turn);
  };
  turn();
});
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
peak = Math.max(peak, process.memoryUsage.rss());
gc?.();
const mem = process.memoryUsage();
const heap = mem.heapUsed;
// Typed arrays (the columnar RIB) live outside the JS heap: count them too, less the input stream.
const buffers = mem.arrayBuffers - stream.length;
const mb = (b: number) => (b / 2 ** 20).toFixed(1);
console.log(
  `bgp-rib: N=${N} in ${msgs.length} UPDATEs: ${ms.toFixed(0)} ms (${((ms * 1000) / N).toFixed(2)} µs/route, ${ticks} turns, CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms); ` +
    `RSS ${mb(rss0)} → peak ${mb(peak)} MB; kept after GC: heap ${mb(heap)} MB + array buffers ${mb(buffers)} MB${gc ? '' : ' (run with --expose-gc)'}`,
);
if (process.env.BGP_RIB_SNAPSHOT) (await import("node:v8")).writeHeapSnapshot(process.env.BGP_RIB_SNAPSHOT);
await sp.stop();
