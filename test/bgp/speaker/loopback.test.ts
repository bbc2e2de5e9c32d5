/**
 * Two tabby speakers over real TCP on loopback (127.0.0.1 ⇄ 127.0.0.2, ports 17950/17951):
 * the full stack (session, codec, RIB, update groups, outbound encoding) without root.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type net from 'node:net';
import { BgpListener } from '../../../bgp/net/index.js';
import { BgpSpeaker, type PeerStateEvent } from '../../../bgp/speaker.js';
import { SessionTransports } from '../../../bgp/speaker/session-transport.js';
import type { SpeakerConfig } from '../../../bgp/speaker/config.js';

async function node(cfg: SpeakerConfig, address: string, port: number) {
  const route: { to?: SessionTransports } = {};
  const listener = new BgpListener((s: net.Socket) => (route.to ? route.to.incoming(s) : s.destroy()));
  await listener.listen(address, port);
  const transports = new SessionTransports({ listener, connectRetryTime: 1, idleHoldTime: 1 });
  route.to = transports;
  const sp = new BgpSpeaker(cfg, { transport: transports.factory });
  const states: PeerStateEvent[] = [];
  sp.on('peer-state', (e) => states.push(e));
  await sp.start();
  return { sp, listener, states };
}

async function until(what: string, cond: () => boolean, ms = 15000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('two speakers exchange routes both ways, withdraw, and shut down with Cease', async (t) => {
  const a = await node(
    {
      routerId: '10.255.0.1',
      asNumber: 64512,
      peers: [{ address: '127.0.0.2', port: 17951, asNumber: 64513, passive: true, holdTime: 9 }],
      originate: ['10.244.1.0/26', { prefix: '10.244.9.0/26', communities: ['64512:100', '64512:1:2'] }],
    },
    '127.0.0.1',
    17950,
  );
  const b = await node(
    {
      routerId: '10.255.0.2',
      asNumber: 64513,
      peers: [{ address: '127.0.0.1', port: 17950, asNumber: 64512, sourceAddress: '127.0.0.2', holdTime: 9 }],
      originate: ['10.244.2.0/26', '2001:db8:2::/64'],
    },
    '127.0.0.2',
    17951,
  );
  t.after(async () => {
    await a.sp.stop();
    await b.sp.stop();
    await a.listener.close();
    await b.listener.close();
  });
  await until('Established', () => a.sp.status().peers[0]?.state === 'Established' && b.sp.status().peers[0]?.state === 'Established');
  await until('routes', () => a.sp.routes('10.244.2.0/26').length === 1 && b.sp.routes('10.244.1.0/26').length === 1 && b.sp.routes('10.244.9.0/26').length === 1);
  const atB = b.sp.routes('10.244.9.0/26')[0]!.paths[0]!;
  assert.equal(atB.asPath, '64512');
  assert.equal(atB.nextHop, '127.0.0.1');
  assert.deepEqual(atB.communities, ['64512:100', '64512:1:2']);
  const atA = a.sp.routes('10.244.2.0/26')[0]!.paths[0]!;
  assert.equal(atA.from, '127.0.0.2:17951');
  assert.equal(atA.asPath, '64513');
  assert.deepEqual(a.sp.routes('2001:db8:2::/64'), [], 'IPv6 was not negotiated on an IPv4-only session');
  const pa = a.sp.status().peers[0]!;
  assert.deepEqual(pa.prefixes, { received: 1, accepted: 1, advertised: 2 });
  assert.ok(pa.capabilities.includes('as4'));
  // Withdraw by reconfiguration on B (its session to A is untouched).
  await b.sp.setConfig({ ...(b.sp as unknown as { config: SpeakerConfig }).config, originate: [] });
  await until('withdraw', () => a.sp.routes('10.244.2.0/26').length === 0);
  assert.equal(a.states.filter((s) => s.to === 'Established').length, 1, 'no session reset');
  // B shuts down: A sees a Cease and its routes from B go.
  await b.sp.stop('maintenance');
  await until('A notices', () => a.sp.status().peers[0]?.state !== 'Established');
  assert.match(a.sp.status().peers[0]!.info, /Cease|notification/i);
});
