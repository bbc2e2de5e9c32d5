// Benchmark: drift repair latency. A Dataplane programs R routes in a fresh tfx-* netns; then a route is
// deleted behind its back (a separate netlink handle, like `ip route del`), and we time until the
// RTM_NEWROUTE that restores it is seen. p50/p99 over N deletions, for each table size.
// Needs root. Usage: node --import tsx bench/felix-repair.ts [N=50] [sizes=100,2000]
// Target (issue 6): repair ≤ 1 s. Numbers go into bench/RESULTS.md.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Dataplane } from '../felix/dataplane.js';
import type { DesiredInputs } from '../felix/model.js';
import { Netlink, type NetlinkEvent } from '../netlink/index.js';

const N = Number(process.argv[2] ?? 50);
const SIZES = (process.argv[3] ?? '100,2000').split(',').map(Number);
const NS = `tfx-bench-${process.pid}`;
const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8' });

function setup(): void {
  if (existsSync(`/var/run/netns/${NS}`)) ip('netns', 'del', NS);
  ip('netns', 'add', NS);
  ip('-n', NS, 'link', 'add', 'tfxeth0', 'type', 'veth', 'peer', 'name', 'tfxeth0p');
  ip('-n', NS, 'addr', 'add', '10.0.0.1/16', 'dev', 'tfxeth0');
  ip('-n', NS, 'link', 'set', 'tfxeth0', 'up');
  ip('-n', NS, 'link', 'set', 'tfxeth0p', 'up');
}

function inputs(routes: number): DesiredInputs {
  const remoteBlocks = Array.from({ length: routes }, (_, i) => ({ cidr: `10.${100 + (i >> 8)}.${i & 255}.0/26`, node: `n${i % 50}` }));
  const nodes = Array.from({ length: 50 }, (_, i) => ({ name: `n${i}`, ipv4Address: `10.0.${1 + i}.1/16` }));
  return {
    self: { name: 'self', ipv4Address: '10.0.0.1/16' },
    parentIface: 'tfxeth0',
    workloads: [],
    localBlocks: ['10.99.0.0/26'],
    remoteBlocks,
    pools: [{ cidr: '10.96.0.0/12' }],
    nodes,
  };
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
};

async function run(size: number): Promise<void> {
  const dp = Dataplane.open({ netns: NS, names: { interfacePrefix: 'tfxw' }, natEnabled: false, mtuIfacePattern: /^tfxeth/ });
  const nl = Netlink.open({ netns: NS });
  let waiting: { dst: string; resolve: (t: bigint) => void } | undefined;
  const sub = nl.subscribe(['ipv4-route'], (ev: NetlinkEvent) => {
    if (ev.kind === 'route' && ev.action === 'new' && waiting && ev.route.dst === waiting.dst && ev.route.protocol === 80) waiting.resolve(process.hrtime.bigint());
  });
  try {
    await dp.start();
    const t0 = process.hrtime.bigint();
    await dp.update(inputs(size));
    const initialMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const lat: number[] = [];
    for (let i = 0; i < N; i++) {
      const dst = `10.${100 + ((i * 37) % size >> 8)}.${((i * 37) % size) & 255}.0/26`;
      const restored = new Promise<bigint>((resolve) => (waiting = { dst, resolve }));
      const start = process.hrtime.bigint();
      await nl.routeDel({ dst, table: 254 });
      const end = await Promise.race([restored, new Promise<bigint>((_, rej) => setTimeout(() => rej(new Error(`${dst} not restored in 5 s`)), 5000))]);
      lat.push(Number(end - start) / 1e6);
      waiting = undefined;
      await new Promise((r) => setTimeout(r, 30));
    }
    const f = (x: number): string => x.toFixed(1);
    console.log(`routes=${size} initial apply=${f(initialMs)} ms  repair over ${N} deletions: p50=${f(pct(lat, 50))} ms p99=${f(pct(lat, 99))} ms max=${f(Math.max(...lat))} ms  resyncs=${dp.status().routes.resyncs}`);
  } finally {
    sub.close();
    nl.close();
    await dp.stop();
  }
}

setup();
try {
  for (const s of SIZES) await run(s);
} finally {
  ip('netns', 'del', NS);
}
