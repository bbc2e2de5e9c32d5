/**
 * tabby-node's BGP listeners over real TCP on loopback (no root): the IPv4 listener on 0.0.0.0 and the
 * v6-only one on :: share port 18000 (traffic only to 127.0.0.1 / ::1); an IPv4 and an IPv6 session arrive on them at the same time,
 * and the IPv6 session carries an IPv6 block (ipv6 unicast) with the peer's IPv6 address as next hop.
 * Ports 18000-18002.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type net from 'node:net';
import { BgpSpeaker } from '../../bgp/speaker.js';
import { SessionTransports } from '../../bgp/speaker/session-transport.js';
import type { SpeakerConfig } from '../../bgp/speaker/config.js';
import { silentLogger } from '../../lib/log.js';
import { openBgpListeners } from '../../node/bgp-listen.js';

async function until(what: string, cond: () => boolean, ms = 15000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function speaker(cfg: SpeakerConfig, port: number, ipv6: boolean) {
  const route: { to?: SessionTransports } = {};
  const l = openBgpListeners((s: net.Socket) => (route.to ? route.to.incoming(s) : s.destroy()), port, ipv6, silentLogger());
  await l.ready;
  const transports = new SessionTransports({ listener: l.options, connectRetryTime: 1, idleHoldTime: 1 });
  route.to = transports;
  const sp = new BgpSpeaker(cfg, { transport: transports.factory });
  await sp.start();
  return { sp, l };
}

test('IPv4 and v6-only listeners share a port; an IPv6 session carries ipv6 unicast with an IPv6 next hop', async (t) => {
  const a = await speaker(
    {
      routerId: '10.255.0.1',
      asNumber: 64512,
      peers: [
        { address: '127.0.0.1', port: 18001, asNumber: 64512, passive: true, holdTime: 9 },
        { address: '::1', port: 18002, asNumber: 64512, passive: true, holdTime: 9 },
      ],
      originate: ['10.244.1.0/26', 'fd00:10:244::40/122'],
    },
    18000,
    true,
  );
  t.after(async () => {
    await a.sp.stop();
    await a.l.close();
  });
  // Two clients from the same host: one IPv4 session, one IPv6 session (ports tell them apart).
  const v4 = await speaker({ routerId: '10.255.0.2', asNumber: 64512, peers: [{ address: '127.0.0.1', port: 18000, asNumber: 64512, holdTime: 9 }] }, 18001, false);
  const v6 = await speaker({ routerId: '10.255.0.3', asNumber: 64512, peers: [{ address: '::1', port: 18000, asNumber: 64512, holdTime: 9 }] }, 18002, true);
  t.after(async () => {
    for (const x of [v4, v6]) {
      await x.sp.stop();
      await x.l.close();
    }
  });
  await until('both sessions Established', () => [v4, v6].every((x) => x.sp.status().peers[0]?.state === 'Established'));
  await until('routes received', () => v4.sp.routes().length > 0 && v6.sp.routes().length > 0);
  const best = (x: typeof v4) => x.sp.routes().map((r) => [r.family, r.prefix, r.paths.find((p) => p.best)?.nextHop]);
  assert.deepEqual(best(v4), [['ipv4-unicast', '10.244.1.0/26', '127.0.0.1']]);
  assert.deepEqual(best(v6), [['ipv6-unicast', 'fd00:10:244::40/122', '::1']]);
});
