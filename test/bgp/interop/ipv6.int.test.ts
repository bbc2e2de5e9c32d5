/**
 * IPv6 unicast on its own IPv6 session (as Calico runs bird6), against BIRD 2 (tbr-v6-*, veth
 * fd00:99:57::/64): routes both ways with IPv6 next hops in MP_REACH_NLRI, BIRD's route installed
 * in our namespace's kernel with protocol 80.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { firstReason, needCommand, needRoot } from '../../lib/skip.js';
import { queryRoutes, queryStatus } from '../../../bgp/ctl.js';
import { makeLab, sh, until } from './lab.js';
import { PORT } from './bird-conf.js';

test('tabby-bgp ⇄ BIRD 2 over an IPv6 session: ipv6-unicast both ways, kernel install', { skip: firstReason(needRoot(), needCommand('bird', 'bird2')) ?? false, timeout: 120_000 }, async (t) => {
  const lab = makeLab(t, 'v6', 57);
  const ours = 'fd00:99:57::2';
  const theirs = 'fd00:99:57::1';
  sh('ip', ['-n', lab.tabbyNs, 'addr', 'add', `${ours}/64`, 'dev', 'e0', 'nodad']);
  sh('ip', ['-n', lab.peerNs, 'addr', 'add', `${theirs}/64`, 'dev', 'e0', 'nodad']);
  const sock = path.join(lab.dir, 'tabby.sock');
  const birdCtl = path.join(lab.dir, 'bird.ctl');
  writeFileSync(
    path.join(lab.dir, 'bird.conf'),
    `log stderr all;
router id ${lab.peerIp};
protocol device { scan time 10; }
protocol direct { ipv6; interface "e0"; }
protocol kernel { ipv6 { import none; export where source = RTS_BGP; }; }
protocol static { ipv6; route 2001:db8:1::/64 blackhole; }
protocol bgp tabby6 {
  local ${theirs} port ${PORT} as 64512;
  neighbor ${ours} port ${PORT} as 64512;
  hold time 9; connect delay time 1; connect retry time 1; error wait time 1, 5;
  graceful restart on;
  ipv6 { import all; export where source = RTS_STATIC; };
}
`,
  );
  const bird = lab.spawnIn(lab.peerNs, 'bird', ['-f', '-c', path.join(lab.dir, 'bird.conf'), '-s', birdCtl]);
  const tabby = lab.startTabby(
    JSON.stringify({
      routerId: lab.tabbyIp,
      asNumber: 64512,
      listen: { address: ours, port: PORT },
      peers: [{ address: theirs, port: PORT, asNumber: 64512, holdTime: 9, connectRetryTime: 1, gracefulRestart: { restartTime: 120 } }],
      originate: ['2001:db8:2::/64'],
      fib: { install: true, protocol: 80 },
      statusSocket: sock,
    }),
  );
  const debug = () => `--- tabby\n${tabby.output().slice(-3000)}\n--- bird\n${bird.output().slice(-1500)}`;
  const st = await until('Established', async () => {
    const s = await queryStatus(sock);
    return s.peers[0]?.state === 'Established' ? s : undefined;
  }, 40_000, debug);
  assert.ok(st.peers[0]!.capabilities.includes('ipv6-unicast'));
  const r = await until('BIRD route at tabby', async () => (await queryRoutes(sock, '2001:db8:1::/64'))[0], 20_000, debug);
  assert.equal(r.family, 'ipv6-unicast');
  assert.equal(r.paths[0]!.nextHop, theirs);
  await until('kernel route', () => sh('ip', ['-6', '-n', lab.tabbyNs, 'route', 'show', '2001:db8:1::/64']).includes(`via ${theirs}`), 20_000, debug);
  assert.match(sh('ip', ['-6', '-n', lab.tabbyNs, 'route', 'show', '2001:db8:1::/64']), /proto 80/);
  const atBird = await until('our route at BIRD', () => {
    const s = sh('birdc', ['-s', birdCtl, 'show', 'route', 'all', '2001:db8:2::/64']);
    return s.includes('BGP.next_hop') ? s : undefined;
  }, 20_000, debug);
  assert.match(atBird, new RegExp(`BGP\\.next_hop: ${ours}`));
});
