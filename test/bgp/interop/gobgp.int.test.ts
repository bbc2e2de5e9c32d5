/**
 * GoBGP (tbr-gob-*, 10.99.54.0/24): ADD-PATH negotiated both ways, routes exchanged both ways,
 * and several paths for one prefix received by GoBGP: tabby reflects (RR) a BIRD client's path
 * for a prefix it also originates, and sends both with their own path ids.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { firstReason, needCommand, needRoot } from '../../lib/skip.js';
import { queryRoutes, queryStatus } from '../../../bgp/ctl.js';
import { makeLab, sh, until } from './lab.js';
import { PORT } from './bird-conf.js';

test('GoBGP: ADD-PATH both ways, routes both ways, two paths for one prefix', { skip: firstReason(needRoot(), needCommand('gobgpd'), needCommand('bird', 'bird2')) ?? false, timeout: 120_000 }, async (t) => {
  const lab = makeLab(t, 'gob', 54);
  const birdIp = '10.99.54.3';
  sh('ip', ['-n', lab.peerNs, 'addr', 'add', `${birdIp}/24`, 'dev', 'e0']);
  const sock = path.join(lab.dir, 'tabby.sock');
  writeFileSync(
    path.join(lab.dir, 'gobgpd.toml'),
    `[global.config]
  as = 64512
  router-id = "${lab.peerIp}"
  port = ${PORT}
  local-address-list = ["${lab.peerIp}"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "${lab.tabbyIp}"
    peer-as = 64512
  [neighbors.transport.config]
    remote-port = ${PORT}
  [neighbors.timers.config]
    hold-time = 9
    keepalive-interval = 3
    connect-retry = 1
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
    [neighbors.afi-safis.add-paths.config]
      receive = true
      send-max = 8
`,
  );
  const api = '127.0.0.1:50051';
  const gobgpd = lab.spawnIn(lab.peerNs, 'gobgpd', ['-f', path.join(lab.dir, 'gobgpd.toml'), '--api-hosts', api, '--pprof-disable']);
  const gobgp = (...args: string[]) => sh('ip', ['netns', 'exec', lab.peerNs, 'gobgp', '-u', api.split(':')[0]!, '-p', api.split(':')[1]!, ...args]);
  const birdCtl = path.join(lab.dir, 'bird.ctl');
  writeFileSync(
    path.join(lab.dir, 'bird.conf'),
    `log stderr all;
router id ${birdIp};
protocol device { scan time 10; }
protocol direct { ipv4; interface "e0"; }
protocol static { ipv4; route 10.244.7.0/24 blackhole; }
protocol bgp tabby {
  local ${birdIp} port ${PORT} as 64512; strict bind on;
  neighbor ${lab.tabbyIp} port ${PORT} as 64512;
  hold time 9; connect delay time 1; connect retry time 1; error wait time 1, 5;
  ipv4 { import all; export where source = RTS_STATIC; };
}
`,
  );
  const bird = lab.spawnIn(lab.peerNs, 'bird', ['-f', '-c', path.join(lab.dir, 'bird.conf'), '-s', birdCtl]);
  const tabby = lab.startTabby(
    JSON.stringify({
      routerId: lab.tabbyIp,
      asNumber: 64512,
      clusterId: '1.1.1.1',
      listen: { address: lab.tabbyIp, port: PORT },
      peers: [
        { address: lab.peerIp, port: PORT, asNumber: 64512, addPaths: 'both', routeReflectorClient: true, holdTime: 9, connectRetryTime: 1 },
        { address: birdIp, port: PORT, asNumber: 64512, routeReflectorClient: true, holdTime: 9, connectRetryTime: 1 },
      ],
      originate: ['10.244.2.0/26', '10.244.7.0/24'],
      statusSocket: sock,
    }),
  );
  const debug = () => `--- tabby\n${tabby.output().slice(-3000)}\n--- gobgpd\n${gobgpd.output().slice(-2000)}\n--- bird\n${bird.output().slice(-1000)}`;
  const st = await until('both Established', async () => {
    const s = await queryStatus(sock);
    return s.peers.every((p) => p.state === 'Established') ? s : undefined;
  }, 60_000, debug);
  const caps = st.peers.find((p) => p.address === lab.peerIp)!.capabilities;
  assert.ok(caps.includes('add-path rx ipv4-unicast') && caps.includes('add-path tx ipv4-unicast'), caps.join(','));
  // GoBGP → tabby.
  gobgp('global', 'rib', 'add', '10.244.6.0/24', 'nexthop', lab.peerIp, '-a', 'ipv4');
  const r6 = await until('GoBGP route at tabby', async () => (await queryRoutes(sock, '10.244.6.0/24'))[0], 30_000, debug);
  assert.equal(r6.paths[0]!.nextHop, lab.peerIp);
  // tabby → GoBGP, with two paths for 10.244.7.0/24 (ours + BIRD's, reflected).
  const rib = await until('two paths at GoBGP', () => {
    const j = JSON.parse(gobgp('global', 'rib', '-a', 'ipv4', '-j')) as Record<string, Array<{ 'neighbor-ip'?: string; attrs?: Array<{ type: number; nexthop?: string }> }>>;
    return (j['10.244.7.0/24']?.length ?? 0) >= 2 && j['10.244.2.0/26'] ? j : undefined;
  }, 30_000, debug);
  const paths = rib['10.244.7.0/24']!;
  // Two paths from one neighbour can only coexist in GoBGP when they carry distinct path ids.
  assert.deepEqual(new Set(paths.map((p) => p['neighbor-ip'])), new Set([lab.tabbyIp]));
  const hops = paths.map((p) => p.attrs?.find((a) => a.type === 3)?.nexthop).sort();
  assert.deepEqual(hops, [lab.tabbyIp, birdIp].sort());
});
