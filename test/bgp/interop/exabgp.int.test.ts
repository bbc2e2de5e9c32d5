/**
 * ExaBGP eBGP peer (AS 64513) announcing communities, large communities and an unknown optional
 * transitive attribute (0xf0); tabby passes them on to an iBGP BIRD (tbr-exa-*, 10.99.53.0/24):
 * communities kept, the unknown attribute forwarded with the Partial bit set.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { firstReason, needCommand, needRoot } from '../../lib/skip.js';
import { queryRoutes, queryStatus } from '../../../bgp/ctl.js';
import { makeLab, sh, until } from './lab.js';
import { PORT } from './bird-conf.js';

test('ExaBGP communities / large communities / unknown transitive attribute pass through tabby to BIRD', { skip: firstReason(needRoot(), needCommand('exabgp'), needCommand('bird', 'bird2'), needCommand('tcpdump')) ?? false, timeout: 120_000 }, async (t) => {
  const lab = makeLab(t, 'exa', 53);
  const birdIp = '10.99.53.3';
  sh('ip', ['-n', lab.peerNs, 'addr', 'add', `${birdIp}/24`, 'dev', 'e0']);
  const sock = path.join(lab.dir, 'tabby.sock');
  const script = path.join(lab.dir, 'announce.sh');
  writeFileSync(
    script,
    `#!/bin/sh
echo "announce route 10.244.4.0/26 next-hop self community [64513:100] large-community [64513:1:2]"
echo "announce route 10.244.5.0/26 next-hop self attribute [ 0xf0 0xc0 0x0102 ]"
# Exit with ExaBGP (it starts us in our own session, out of reach of the test's group kill).
while kill -0 $PPID 2>/dev/null; do sleep 1; done
`,
  );
  chmodSync(script, 0o755);
  writeFileSync(
    path.join(lab.dir, 'exabgp.conf'),
    `process announce { run ${script}; encoder text; }
neighbor ${lab.tabbyIp} {
    router-id ${lab.peerIp}; local-address ${lab.peerIp}; local-as 64513; peer-as 64512;
    hold-time 9;
    family { ipv4 unicast; }
    api { processes [ announce ]; }
}
`,
  );
  const exa = lab.spawnIn(lab.peerNs, 'env', [
    'exabgp.daemon.user=root',
    `exabgp.tcp.port=${PORT}`,
    'exabgp.tcp.bind=',
    'exabgp.log.destination=stderr',
    'exabgp',
    path.join(lab.dir, 'exabgp.conf'),
  ]);
  const birdCtl = path.join(lab.dir, 'bird.ctl');
  writeFileSync(
    path.join(lab.dir, 'bird.conf'),
    `log stderr all;
router id ${birdIp};
protocol device { scan time 10; }
protocol direct { ipv4; interface "e0"; }
protocol bgp tabby {
  local ${birdIp} port ${PORT} as 64512; strict bind on;
  neighbor ${lab.tabbyIp} port ${PORT} as 64512;
  hold time 9; connect delay time 1; connect retry time 1; error wait time 1, 5;
  ipv4 { import all; export none; };
}
`,
  );
  // Capture what tabby sends to BIRD, to check the attribute flags on the wire.
  const pcap = path.join(lab.dir, 'to-bird.pcap');
  const dump = lab.spawnIn(lab.peerNs, 'tcpdump', ['-i', 'e0', '-U', '-w', pcap, 'tcp', 'and', 'src', 'host', lab.tabbyIp, 'and', 'dst', 'host', birdIp]);
  await until('tcpdump ready', () => /listening on/.test(dump.output()), 10_000);
  const bird = lab.spawnIn(lab.peerNs, 'bird', ['-f', '-c', path.join(lab.dir, 'bird.conf'), '-s', birdCtl]);
  const tabby = lab.startTabby(
    JSON.stringify({
      routerId: lab.tabbyIp,
      asNumber: 64512,
      listen: { address: lab.tabbyIp, port: PORT },
      peers: [
        { address: lab.peerIp, port: PORT, asNumber: 64513, passive: true, holdTime: 9 },
        { address: birdIp, port: PORT, asNumber: 64512, holdTime: 9, connectRetryTime: 1 },
      ],
      statusSocket: sock,
    }),
  );
  const debug = () => `--- tabby\n${tabby.output().slice(-3000)}\n--- exabgp\n${exa.output().slice(-2000)}\n--- bird\n${bird.output().slice(-1000)}`;
  await until('both Established', async () => (await queryStatus(sock)).peers.every((p) => p.state === 'Established'), 60_000, debug);
  const r4 = await until('route with communities', async () => (await queryRoutes(sock, '10.244.4.0/26'))[0], 30_000, debug);
  assert.deepEqual(r4.paths[0]!.communities, ['64513:100', '64513:1:2']);
  assert.equal(r4.paths[0]!.asPath, '64513');
  await until('route with the unknown attribute', async () => (await queryRoutes(sock, '10.244.5.0/26'))[0], 30_000, debug);
  const at4 = await until('BIRD gets the communities', () => {
    const s = sh('birdc', ['-s', birdCtl, 'show', 'route', 'all', '10.244.4.0/26']);
    return s.includes('BGP.community') ? s : undefined;
  }, 30_000, debug);
  assert.match(at4, /BGP\.community: \(64513,100\)/);
  assert.match(at4, /BGP\.large_community: \(64513, 1, 2\)/);
  assert.match(at4, /BGP\.as_path: 64513/);
  const at5 = await until('BIRD gets the unknown attribute', () => {
    const s = sh('birdc', ['-s', birdCtl, 'show', 'route', 'all', '10.244.5.0/26']);
    return /10\.244\.5\.0\/26/.test(s) ? s : undefined;
  }, 30_000, debug);
  assert.match(at5, /BGP\.f0 \[t\]: 01 02/);
  // On the wire: flags 0xe0 (optional, transitive, partial), type 0xf0, length 2, value 01 02.
  const bytes = await until('captured UPDATE', () => {
    const b = readFileSync(pcap);
    return b.includes(Buffer.from('e0f0020102', 'hex')) ? b : undefined;
  }, 10_000);
  assert.ok(bytes.length > 0);
});
