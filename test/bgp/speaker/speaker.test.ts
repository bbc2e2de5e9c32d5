import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BgpSpeaker, type BestPathEvent, type PeerStateEvent } from '../../../bgp/speaker.js';
import { MemoryFibSink } from '../../../bgp/fib/sink.js';
import type { SpeakerConfig } from '../../../bgp/speaker/config.js';
import { formatPeerTable, formatRoutes } from '../../../bgp/speaker/status.js';
import { FakeClock } from '../rib/fake-clock.js';
import { announced, eors, fakeFactory, withdrawn } from './fake-transport.js';

const base: SpeakerConfig = {
  routerId: '10.0.0.100',
  asNumber: 64512,
  peers: [
    { address: '10.0.0.1', asNumber: 64512 },
    { address: '10.0.0.2', asNumber: 64512 },
    { address: '192.0.2.1', asNumber: 65000 },
  ],
  originate: ['10.244.1.0/26'],
};

async function setup(cfg: SpeakerConfig = base, withFib = false) {
  const f = fakeFactory();
  const fib = new MemoryFibSink();
  const clock = new FakeClock();
  const sp = new BgpSpeaker(cfg, { transport: f.factory, clock, ...(withFib ? { fib } : {}) });
  const states: PeerStateEvent[] = [];
  const best: BestPathEvent[] = [];
  sp.on('peer-state', (e) => states.push(e));
  sp.on('best-path', (e) => best.push(e));
  await sp.start();
  const t = (a: string) => f.transports.get(a)!;
  return { sp, f, fib, clock, states, best, t };
}

test('established peers get the table then End-of-RIB; received routes reach other peers by the rules', async () => {
  const { sp, t, states } = await setup();
  t('10.0.0.1').establish();
  t('10.0.0.2').establish();
  t('192.0.2.1').establish();
  await sp.settle();
  const first = t('10.0.0.1').take();
  assert.deepEqual(announced(first), ['10.244.1.0/26']);
  assert.equal(first[0]!.attributes.localPref, 100);
  assert.equal(first[0]!.attributes.nextHop, '10.0.0.100');
  assert.equal(eors(first), 1);
  t('10.0.0.2').take();
  t('192.0.2.1').take();
  // eBGP route: to both iBGP peers (LOCAL_PREF 100, next hop kept).
  t('192.0.2.1').announce(['10.50.0.0/16'], { origin: 0, asPath: [{ type: 2, asns: [65000] }] }, '192.0.2.1');
  await sp.settle();
  const toIbgp = t('10.0.0.1').take();
  assert.deepEqual(announced(toIbgp), ['10.50.0.0/16']);
  assert.equal(toIbgp[0]!.attributes.nextHop, '192.0.2.1');
  assert.deepEqual(announced(t('10.0.0.2').take()), ['10.50.0.0/16']);
  assert.deepEqual(t('192.0.2.1').take(), [], 'not sent back to its source');
  // iBGP route: to the eBGP peer (prepended, next hop self), not to the other iBGP peer.
  t('10.0.0.1').announce(['10.60.0.0/16'], { origin: 0, asPath: [] }, '10.0.0.1');
  await sp.settle();
  assert.deepEqual(t('10.0.0.2').take(), []);
  const toEbgp = t('192.0.2.1').take();
  assert.deepEqual(announced(toEbgp), ['10.60.0.0/16']);
  assert.deepEqual(toEbgp[0]!.attributes.asPath, [{ type: 2, asns: [64512] }]);
  assert.equal(toEbgp[0]!.attributes.localPref, undefined);
  // Withdraw propagates.
  t('192.0.2.1').withdraw(['10.50.0.0/16']);
  await sp.settle();
  assert.deepEqual(withdrawn(t('10.0.0.1').take()), ['10.50.0.0/16']);
  assert.ok(states.some((s) => s.peer === '10.0.0.1' && s.to === 'Established'));
  const st = sp.status();
  const p1 = st.peers.find((p) => p.id === '10.0.0.1')!;
  assert.deepEqual(p1.prefixes, { received: 1, accepted: 1, advertised: 1 });
  assert.ok(p1.capabilities.includes('route-refresh'));
  assert.equal(st.routes['ipv4-unicast'], 2);
  assert.match(formatPeerTable(st), /\| 10\.0\.0\.1 +\| iBGP +\| up +\| [0-9:]+ +\| Established +\|/);
  assert.match(formatRoutes(sp.routes('10.0.0.0/8')), /10\.60\.0\.0\/16/);
});

test('best-path events and routes() reasons; FIB gets learned routes with ECMP', async () => {
  const { sp, t, best, fib } = await setup({ ...base, maxPaths: 2 }, true);
  t('10.0.0.1').establish();
  t('10.0.0.2').establish();
  t('10.0.0.1').announce(['10.70.0.0/24'], { origin: 0, asPath: [] }, '10.0.0.1');
  t('10.0.0.2').announce(['10.70.0.0/24'], { origin: 0, asPath: [] }, '10.0.0.2');
  await sp.settle();
  assert.ok(best.some((e) => e.prefix === '10.70.0.0/24' && e.best?.source.id === '10.0.0.1'));
  const r = sp.routes('10.70.0.1')[0]!;
  assert.equal(r.reason, 'router-id');
  assert.deepEqual(r.paths.map((p) => [p.from, p.best, p.multipath]), [['10.0.0.1', true, false], ['10.0.0.2', false, true]]);
  assert.deepEqual([...fib.routes.values()].map((x) => [x.prefix, x.nextHops.map((n) => n.gateway)]), [['10.70.0.0/24', ['10.0.0.1', '10.0.0.2']]]);
});

test('graceful restart helper: routes of a GR peer stay stale on drop until End-of-RIB', async () => {
  const { sp, t } = await setup();
  const gr = { restartTime: 120, restarting: false, notification: false, families: [{ family: 'ipv4-unicast' as const, forwarding: true }] };
  t('10.0.0.1').establish({ gracefulRestart: gr });
  t('10.0.0.1').announce(['10.80.0.0/24', '10.81.0.0/24'], { origin: 0 }, '10.0.0.1');
  await sp.settle();
  t('10.0.0.1').drop();
  await sp.settle();
  assert.equal(sp.routes('10.80.0.0/24')[0]?.paths[0]?.stale, true);
  assert.equal(sp.status().peers.find((p) => p.id === '10.0.0.1')?.gracefulRestartStale, true);
  t('10.0.0.1').establish({ gracefulRestart: gr });
  t('10.0.0.1').announce(['10.80.0.0/24'], { origin: 0 }, '10.0.0.1');
  t('10.0.0.1').endOfRib();
  await sp.settle();
  await sp.settle();
  assert.equal(sp.routes('10.80.0.0/24')[0]?.paths[0]?.stale, false);
  assert.deepEqual(sp.routes('10.81.0.0/24'), []);
  // A peer without GR loses its routes at once.
  t('10.0.0.2').establish();
  t('10.0.0.2').announce(['10.90.0.0/24'], { origin: 0 }, '10.0.0.2');
  await sp.settle();
  t('10.0.0.2').drop();
  await sp.settle();
  assert.deepEqual(sp.routes('10.90.0.0/24'), []);
});

test('restarting role: advertisements deferred until End-of-RIB from non-restarting GR peers', async () => {
  const { sp, t } = await setup({ ...base, gracefulRestart: { restarting: true, deferralTime: 60 } });
  assert.equal(t('10.0.0.1').local.gracefulRestart?.restarting, true);
  const gr = { restartTime: 120, restarting: false, notification: false, families: [{ family: 'ipv4-unicast' as const, forwarding: true }] };
  t('10.0.0.1').establish({ gracefulRestart: gr });
  t('10.0.0.2').establish({ gracefulRestart: { ...gr, restarting: true } });
  await sp.settle();
  assert.deepEqual(t('10.0.0.1').take(), []);
  assert.equal(sp.status().deferringAdvertisements, true);
  t('10.0.0.1').endOfRib();
  await sp.settle();
  await sp.settle();
  assert.equal(sp.status().deferringAdvertisements, false);
  const u = t('10.0.0.1').take();
  assert.deepEqual(announced(u), ['10.244.1.0/26']);
  assert.equal(eors(u), 1);
  assert.equal(eors(t('10.0.0.2').take()), 1, 'the restarting peer gets our table without us waiting for it');
  assert.deepEqual([t('10.0.0.1').restarting, t('10.0.0.2').restarting], [false, false], 'later OPENs go without the R bit');
});

test('restarting role: all peers up and none to wait for (both restarting, Calico #7144) → released without the bound', async () => {
  const peers = base.peers.slice(0, 2);
  const { sp, t, clock } = await setup({ ...base, peers, gracefulRestart: { restarting: true, deferralTime: 60 } });
  const gr = { restartTime: 120, restarting: true, notification: false, families: [{ family: 'ipv4-unicast' as const, forwarding: true }] };
  t('10.0.0.1').establish({ gracefulRestart: gr });
  await sp.settle();
  assert.equal(sp.status().deferringAdvertisements, true, 'a configured peer is not up yet: keep waiting (bounded)');
  assert.deepEqual(t('10.0.0.1').take(), []);
  t('10.0.0.2').establish({ gracefulRestart: gr });
  await sp.settle();
  await sp.settle();
  assert.equal(sp.status().deferringAdvertisements, false);
  assert.equal(clock.pending, 0, 'the bound is cancelled');
  for (const a of ['10.0.0.1', '10.0.0.2']) {
    const u = t(a).take();
    assert.deepEqual(announced(u), ['10.244.1.0/26']);
    assert.equal(eors(u), 1);
  }
});

test('max-prefix: Cease subcode 1, Idle with the reason in status, reconnect after the idle time', async () => {
  const { sp, t, clock, fib } = await setup({ ...base, peers: [{ address: '10.0.0.1', asNumber: 64512, maxPrefixes: 1, maxPrefixRestartTime: 30 }] }, true);
  const tr = t('10.0.0.1');
  tr.establish({ gracefulRestart: { restartTime: 120, restarting: false, notification: false, families: [{ family: 'ipv4-unicast', forwarding: true }] } });
  tr.announce(['10.1.0.0/24', '10.2.0.0/24'], { origin: 0 }, '10.0.0.1');
  await sp.settle();
  assert.deepEqual(tr.stopped, [{ subcode: 1, message: 'max prefixes reached (1)', data: new Uint8Array([0, 1, 1, 0, 0, 0, 1]) }]);
  // The session goes down as a real one would after the NOTIFICATION.
  tr.drop('manual-stop', 'administratively stopped');
  await sp.settle();
  const st = sp.status().peers[0]!;
  assert.equal(st.state, 'Idle');
  assert.equal(st.lastError, 'max prefixes reached (1)');
  assert.match(st.info, /^max prefixes reached \(1\); reconnecting in \d+s$/);
  assert.equal(fib.routes.size, 0, 'our NOTIFICATION ends the session: no graceful-restart stale routes');
  assert.equal(tr.started, 1);
  clock.advance(29_000);
  assert.equal(tr.started, 1, 'still idle');
  clock.advance(1_000);
  assert.equal(tr.started, 2, 'reconnects by itself');
  assert.doesNotMatch(sp.status().peers[0]!.info, /max prefixes/);
  tr.establish();
  assert.equal(sp.status().peers[0]?.lastError, undefined);
});

test('max-prefix: restart time 0 stays down until the configuration changes', async () => {
  const peer = { address: '10.0.0.1', asNumber: 64512, maxPrefixes: 1, maxPrefixRestartTime: 0 };
  const { sp, t, clock } = await setup({ ...base, peers: [peer] });
  const tr = t('10.0.0.1');
  tr.establish();
  tr.announce(['10.1.0.0/24', '10.2.0.0/24'], { origin: 0 }, '10.0.0.1');
  await sp.settle();
  tr.drop('manual-stop');
  assert.match(sp.status().peers[0]!.info, /stays down until the configuration changes/);
  clock.advance(3_600_000);
  assert.equal(tr.started, 1);
  await sp.setConfig({ ...base, peers: [{ ...peer, maxPrefixes: 10 }] });
  assert.equal(tr.started, 2, 'a raised limit restarts the same session object at once');
  assert.deepEqual(tr.stopped.length, 1);
});

test('setConfig: unchanged peers keep their session, changed ones reset, removed ones get Cease 3', async () => {
  const { sp, t, f } = await setup();
  t('10.0.0.1').establish();
  t('10.0.0.2').establish();
  await sp.settle();
  const t1 = t('10.0.0.1');
  const t2 = t('10.0.0.2');
  const te = t('192.0.2.1');
  await sp.setConfig({
    ...base,
    peers: [
      { address: '10.0.0.1', asNumber: 64512 },
      { address: '10.0.0.2', asNumber: 64512, password: 'changed' },
      { address: '10.0.0.3', asNumber: 64512 },
    ],
    originate: ['10.244.1.0/26', '10.244.2.0/26'],
  });
  assert.deepEqual(t1.stopped, []);
  assert.equal(t1.started, 1);
  assert.deepEqual(t2.stopped, [{ subcode: 6 }]);
  assert.deepEqual(te.stopped, [{ subcode: 3 }]);
  assert.equal(f.all.length, 5, 'new transports for the reset and the added peer');
  assert.deepEqual(announced(t1.take()).slice(-1), ['10.244.2.0/26'], 'new originated prefix advertised');
  assert.deepEqual(sp.status().peers.map((p) => p.id), ['10.0.0.1', '10.0.0.2', '10.0.0.3']);
});

test('setConfig: a new export filter applies without a reset', async () => {
  const { sp, t } = await setup();
  t('10.0.0.1').establish();
  await sp.settle();
  t('10.0.0.1').take();
  await sp.setConfig({
    ...base,
    filters: [{ name: 'no-pods', spec: { exportV4: [{ action: 'Reject', cidr: '10.244.0.0/16', matchOperator: 'In' }] } }],
    peers: [{ address: '10.0.0.1', asNumber: 64512, filters: ['no-pods'] }, ...base.peers.slice(1)],
  });
  assert.deepEqual(t('10.0.0.1').stopped, []);
  assert.deepEqual(withdrawn(t('10.0.0.1').take()), ['10.244.1.0/26']);
});

test('route reflector: client routes reflected with ORIGINATOR_ID and CLUSTER_LIST', async () => {
  const { sp, t } = await setup({
    ...base,
    clusterId: '1.1.1.1',
    peers: [
      { address: '10.0.0.1', asNumber: 64512, routeReflectorClient: true },
      { address: '10.0.0.2', asNumber: 64512, routeReflectorClient: true },
    ],
    originate: [],
  });
  t('10.0.0.1').establish();
  t('10.0.0.2').establish();
  t('10.0.0.1').announce(['10.11.0.0/24'], { origin: 0, asPath: [] }, '10.0.0.1');
  await sp.settle();
  const u = t('10.0.0.2').take().filter((x) => !x.endOfRib);
  assert.equal(u[0]!.attributes.originatorId, '10.0.0.1');
  assert.deepEqual(u[0]!.attributes.clusterList, ['1.1.1.1']);
  assert.equal(u[0]!.attributes.nextHop, '10.0.0.1');
});

test('ADD-PATH: received path ids kept apart, sent with local path ids when negotiated', async () => {
  const { sp, t } = await setup({ ...base, peers: [{ address: '10.0.0.1', asNumber: 64512, addPaths: 'both' }, { address: '192.0.2.1', asNumber: 65000, addPaths: 'both' }], originate: [] });
  t('10.0.0.1').establish({ addPath: { receive: ['ipv4-unicast'], send: ['ipv4-unicast'] } });
  t('192.0.2.1').establish({ addPath: { receive: ['ipv4-unicast'], send: ['ipv4-unicast'] } });
  t('192.0.2.1').announce(['10.12.0.0/24', '10.12.0.0/24'], { origin: 0, asPath: [{ type: 2, asns: [65000] }] }, '192.0.2.1', 'ipv4-unicast', [7, 9]);
  await sp.settle();
  assert.equal(sp.routes('10.12.0.0/24')[0]?.paths.length, 2);
  const u = t('10.0.0.1').take(['ipv4-unicast']).filter((x) => !x.endOfRib);
  assert.deepEqual(u.flatMap((x) => x.announce.flatMap((g) => g.nlri.map((n) => n.pathId))), [1, 2]);
});

test('GR F bit: set for our families with a FIB sink or when another component keeps the forwarding state, not otherwise', async () => {
  const plain = await setup();
  assert.deepEqual(plain.t('10.0.0.1').local.gracefulRestart?.forwarding, []);
  const withFib = await setup(base, true);
  assert.deepEqual(withFib.t('10.0.0.1').local.gracefulRestart?.forwarding, ['ipv4-unicast']);
  const kept = await setup({ ...base, gracefulRestart: { forwardingPreserved: true } });
  assert.deepEqual(kept.t('10.0.0.1').local.gracefulRestart?.forwarding, ['ipv4-unicast']);
  assert.equal(kept.t('10.0.0.1').local.gracefulRestart?.restarting, false);
  for (const s of [plain, withFib, kept]) await s.sp.stop();
});

test('BGPFilter operations: import setPriority reaches the FIB, export adds communities and prepends; priority matches', async () => {
  const cfg: SpeakerConfig = {
    ...base,
    routePriority: 700,
    filters: [
      {
        name: 'in',
        spec: {
          importV4: [
            { action: 'Accept', cidr: '10.50.0.0/16', matchOperator: 'Equal', operations: [{ setPriority: { value: 300 } }, { addCommunity: { value: '65000:50' } }] },
            { action: 'Reject', cidr: '10.99.0.0/16', matchOperator: 'In' },
          ],
        },
      },
      {
        name: 'out',
        spec: {
          exportV4: [
            // Only routes still at the default priority get the prepend.
            { action: 'Accept', priority: 700, operations: [{ prependASPath: { prefix: [64999, 64998] } }] },
            { action: 'Accept', communities: { values: ['65000:50'] }, operations: [{ addCommunity: { value: '65000:1:1' } }] },
          ],
        },
      },
    ],
    peers: [
      { address: '10.0.0.1', asNumber: 64512, filters: ['in'] },
      { address: '192.0.2.1', asNumber: 65000, filters: ['out'] },
    ],
  };
  const { sp, t, fib } = await setup(cfg, true);
  t('10.0.0.1').establish();
  t('192.0.2.1').establish();
  await sp.settle();
  t('192.0.2.1').take();
  t('10.0.0.1').announce(['10.50.0.0/16', '10.60.0.0/16', '10.99.1.0/24'], { origin: 0, asPath: [] }, '10.0.0.1');
  await sp.settle();
  assert.equal(fib.routes.get('10.50.0.0/16')?.priority, 300);
  assert.equal(fib.routes.get('10.60.0.0/16')?.priority, undefined, 'no operation: the sink default');
  assert.equal(fib.routes.has('10.99.1.0/24'), false, 'rejected on import');
  const ups = t('192.0.2.1').take();
  const by = new Map(ups.flatMap((u) => u.announce.flatMap((g) => g.nlri.map((n) => [n.prefix, u.attributes] as const))));
  assert.deepEqual(by.get('10.60.0.0/16')?.asPath, [{ type: 2, asns: [64999, 64998, 64512] }]);
  const a50 = by.get('10.50.0.0/16');
  assert.deepEqual(a50?.asPath, [{ type: 2, asns: [64512] }], 'priority 300: the prepend rule does not match');
  assert.deepEqual(a50?.communities, [65000 * 65536 + 50]);
  assert.deepEqual(a50?.largeCommunities, [[65000, 1, 1]]);
  assert.equal((a50 as { priority?: number } | undefined)?.priority, undefined, 'priority never goes on the wire');
});
