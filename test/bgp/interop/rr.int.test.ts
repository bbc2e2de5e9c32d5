/**
 * Route reflection with BIRD 2:
 *  - tabby is the route reflector (cluster id 1.1.1.1) for two BIRD clients (tbr-rr-*,
 *    10.99.52.1 and .3 in the peer namespace); each client receives the other's route with
 *    ORIGINATOR_ID and CLUSTER_LIST;
 *  - tabby is an RR client of a BIRD reflector (tbr-rrc-*, 10.99.59.1, cluster id 2.2.2.2) that
 *    also serves BIRD client 10.99.59.3: routes are reflected to and from tabby.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { firstReason, needCommand, needRoot } from '../../lib/skip.js';
import { queryRoutes, queryStatus } from '../../../bgp/ctl.js';
import { makeLab, sh, until } from './lab.js';
import { PORT } from './bird-conf.js';

function client(ip: string, neighbor: string, route: string): string {
  return `
log stderr all;
router id ${ip};
protocol device { scan time 10; }
protocol direct { ipv4; interface "e0"; }
protocol static { ipv4; route ${route} blackhole; }
protocol bgp reflector {
  local ${ip} port ${PORT} as 64512; strict bind on;
  neighbor ${neighbor} port ${PORT} as 64512;
  hold time 9; connect delay time 1; connect retry time 1; error wait time 1, 5;
  ipv4 { import all; export where source = RTS_STATIC; };
}
`;
}

test('tabby as route reflector for two BIRD clients', { skip: firstReason(needRoot(), needCommand('bird', 'bird2')) ?? false, timeout: 120_000 }, async (t) => {
  const lab = makeLab(t, 'rr', 52);
  const second = '10.99.52.3';
  sh('ip', ['-n', lab.peerNs, 'addr', 'add', `${second}/24`, 'dev', 'e0']);
  const sock = path.join(lab.dir, 'tabby.sock');
  const ctl = (n: number) => path.join(lab.dir, `bird${n}.ctl`);
  writeFileSync(path.join(lab.dir, 'bird1.conf'), client(lab.peerIp, lab.tabbyIp, '10.244.1.0/26'));
  writeFileSync(path.join(lab.dir, 'bird3.conf'), client(second, lab.tabbyIp, '10.244.3.0/26'));
  const b1 = lab.spawnIn(lab.peerNs, 'bird', ['-f', '-c', path.join(lab.dir, 'bird1.conf'), '-s', ctl(1)]);
  const b3 = lab.spawnIn(lab.peerNs, 'bird', ['-f', '-c', path.join(lab.dir, 'bird3.conf'), '-s', ctl(3)]);
  const tabby = lab.startTabby(
    JSON.stringify({
      routerId: lab.tabbyIp,
      asNumber: 64512,
      clusterId: '1.1.1.1',
      listen: { address: lab.tabbyIp, port: PORT },
      peers: [lab.peerIp, second].map((address) => ({ address, port: PORT, asNumber: 64512, routeReflectorClient: true, holdTime: 9, connectRetryTime: 1 })),
      originate: ['10.244.2.0/26'],
      statusSocket: sock,
    }),
  );
  const debug = () => `--- tabby\n${tabby.output().slice(-3000)}\n--- bird1\n${b1.output().slice(-1500)}\n--- bird3\n${b3.output().slice(-1500)}`;
  await until('both sessions Established', async () => (await queryStatus(sock)).peers.every((p) => p.state === 'Established'), 40_000, debug);
  const at1 = await until('client 1 gets client 3\'s route', () => {
    const s = sh('birdc', ['-s', ctl(1), 'show', 'route', 'all', '10.244.3.0/26']);
    return s.includes('BGP.originator_id') ? s : undefined;
  }, 20_000, debug);
  assert.match(at1, /BGP\.originator_id: 10\.99\.52\.3/);
  assert.match(at1, /BGP\.cluster_list: 1\.1\.1\.1/);
  assert.match(at1, /BGP\.next_hop: 10\.99\.52\.3/);
  const at3 = await until('client 3 gets client 1\'s route', () => {
    const s = sh('birdc', ['-s', ctl(3), 'show', 'route', 'all', '10.244.1.0/26']);
    return s.includes('BGP.originator_id') ? s : undefined;
  }, 20_000, debug);
  assert.match(at3, /BGP\.originator_id: 10\.99\.52\.1/);
  // Our own route reaches both, without reflection attributes.
  const own = sh('birdc', ['-s', ctl(1), 'show', 'route', 'all', '10.244.2.0/26']);
  assert.match(own, /10\.244\.2\.0\/26/);
  assert.doesNotMatch(own, /originator_id/);
});

test('tabby as route-reflector client of a BIRD reflector', { skip: firstReason(needRoot(), needCommand('bird', 'bird2')) ?? false, timeout: 120_000 }, async (t) => {
  const lab = makeLab(t, 'rrc', 59);
  const other = '10.99.59.3';
  sh('ip', ['-n', lab.peerNs, 'addr', 'add', `${other}/24`, 'dev', 'e0']);
  const sock = path.join(lab.dir, 'tabby.sock');
  const rrCtl = path.join(lab.dir, 'rr.ctl');
  const session = (name: string, ip: string) => `protocol bgp ${name} {
  local ${lab.peerIp} port ${PORT} as 64512; strict bind on;
  neighbor ${ip} port ${PORT} as 64512;
  rr client; rr cluster id 2.2.2.2;
  hold time 9; connect delay time 1; connect retry time 1; error wait time 1, 5;
  ipv4 { import all; export all; };
}`;
  writeFileSync(
    path.join(lab.dir, 'rr.conf'),
    `log stderr all;
router id ${lab.peerIp};
protocol device { scan time 10; }
protocol direct { ipv4; interface "e0"; }
${session('tabby', lab.tabbyIp)}
${session('peer3', other)}
`,
  );
  writeFileSync(path.join(lab.dir, 'other.conf'), client(other, lab.peerIp, '10.244.3.0/26'));
  const rr = lab.spawnIn(lab.peerNs, 'bird', ['-f', '-c', path.join(lab.dir, 'rr.conf'), '-s', rrCtl]);
  const oth = lab.spawnIn(lab.peerNs, 'bird', ['-f', '-c', path.join(lab.dir, 'other.conf'), '-s', path.join(lab.dir, 'other.ctl')]);
  const tabby = lab.startTabby(
    JSON.stringify({
      routerId: lab.tabbyIp,
      asNumber: 64512,
      listen: { address: lab.tabbyIp, port: PORT },
      peers: [{ address: lab.peerIp, port: PORT, asNumber: 64512, holdTime: 9, connectRetryTime: 1 }],
      originate: ['10.244.2.0/26'],
      statusSocket: sock,
    }),
  );
  const debug = () => `--- tabby\n${tabby.output().slice(-3000)}\n--- rr\n${rr.output().slice(-1500)}\n--- other\n${oth.output().slice(-1000)}`;
  await until('Established', async () => (await queryStatus(sock)).peers[0]?.state === 'Established', 40_000, debug);
  const r = await until('reflected route at tabby', async () => (await queryRoutes(sock, '10.244.3.0/26'))[0], 30_000, debug);
  assert.equal(r.paths[0]!.originatorId, other);
  assert.deepEqual(r.paths[0]!.clusterList, ['2.2.2.2']);
  assert.equal(r.paths[0]!.nextHop, other);
  const atOther = await until('our route reflected to the other client', () => {
    const s = sh('birdc', ['-s', path.join(lab.dir, 'other.ctl'), 'show', 'route', 'all', '10.244.2.0/26']);
    return s.includes('BGP.originator_id') ? s : undefined;
  }, 30_000, debug);
  assert.match(atOther, new RegExp(`BGP\\.originator_id: ${lab.tabbyIp.replace(/\./g, '\\.')}`));
  assert.match(atOther, /BGP\.cluster_list: 2\.2\.2\.2/);
  // The reflector does not send our own route back (and we would drop it: ORIGINATOR_ID = us).
  assert.deepEqual((await queryRoutes(sock, '10.244.2.0/26'))[0]?.paths.map((p) => p.from), ['local']);
});
