/**
 * FRR 8 (zebra + bgpd) iBGP peer (tbr-frr-*, 10.99.58.0/24): routes both ways; FRR installs our
 * route into its kernel, we install FRR's with protocol 80.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { firstReason, needCommand, needRoot } from '../../lib/skip.js';
import { queryRoutes, queryStatus } from '../../../bgp/ctl.js';
import { makeLab, sh, until } from './lab.js';
import { PORT } from './bird-conf.js';

const ZEBRA = '/usr/lib/frr/zebra';
const BGPD = '/usr/lib/frr/bgpd';

test('tabby-bgp ⇄ FRR bgpd: iBGP routes both ways, kernel on both sides', { skip: firstReason(needRoot(), needCommand(BGPD, 'frr'), needCommand('vtysh', 'frr')) ?? false, timeout: 120_000 }, async (t) => {
  const lab = makeLab(t, 'frr', 58);
  const frrDir = path.join(lab.dir, 'frr');
  chmodSync(lab.dir, 0o755);
  mkdirSync(frrDir);
  sh('chown', ['frr:frr', frrDir]);
  const sock = path.join(lab.dir, 'tabby.sock');
  writeFileSync(path.join(frrDir, 'zebra.conf'), 'hostname r-frr\n');
  writeFileSync(
    path.join(frrDir, 'bgpd.conf'),
    `frr defaults traditional
hostname r-frr
router bgp 64512
 bgp router-id ${lab.peerIp}
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor ${lab.tabbyIp} remote-as 64512
 neighbor ${lab.tabbyIp} port ${PORT}
 neighbor ${lab.tabbyIp} timers 3 9
 neighbor ${lab.tabbyIp} timers connect 1
 address-family ipv4 unicast
  network 10.244.3.0/26
 exit-address-family
`,
  );
  const z = ['--vty_socket', frrDir, '-z', path.join(frrDir, 'zserv.api')];
  const zebra = lab.spawnIn(lab.peerNs, ZEBRA, ['-f', path.join(frrDir, 'zebra.conf'), ...z, '-i', path.join(frrDir, 'zebra.pid')]);
  await until('zebra socket', () => {
    try {
      sh('test', ['-S', path.join(frrDir, 'zserv.api')]);
      return true;
    } catch {
      return false;
    }
  }, 15_000, () => zebra.output());
  const bgpd = lab.spawnIn(lab.peerNs, BGPD, ['-S', '-f', path.join(frrDir, 'bgpd.conf'), ...z, '-i', path.join(frrDir, 'bgpd.pid'), '-p', String(PORT), '-l', lab.peerIp]);
  const tabby = lab.startTabby(
    JSON.stringify({
      routerId: lab.tabbyIp,
      asNumber: 64512,
      listen: { address: lab.tabbyIp, port: PORT },
      peers: [{ address: lab.peerIp, port: PORT, asNumber: 64512, holdTime: 9, connectRetryTime: 1 }],
      originate: ['10.244.2.0/26'],
      fib: { install: true, protocol: 80 },
      statusSocket: sock,
    }),
  );
  const vtysh = (cmd: string) => sh('ip', ['netns', 'exec', lab.peerNs, 'vtysh', '--vty_socket', frrDir, '-c', cmd]);
  const debug = () => `--- tabby\n${tabby.output().slice(-3000)}\n--- bgpd\n${bgpd.output().slice(-1500)}\n--- zebra\n${zebra.output().slice(-500)}`;
  await until('Established', async () => (await queryStatus(sock)).peers[0]?.state === 'Established', 60_000, debug);
  const r = await until('FRR route at tabby', async () => (await queryRoutes(sock, '10.244.3.0/26'))[0], 30_000, debug);
  assert.equal(r.paths[0]!.nextHop, lab.peerIp);
  await until('our kernel', () => sh('ip', ['-n', lab.tabbyNs, 'route', 'show', '10.244.3.0/26']).includes('proto 80'), 20_000, debug);
  const j = await until('our route at FRR', () => {
    const s = JSON.parse(vtysh('show bgp ipv4 unicast 10.244.2.0/26 json')) as { paths?: Array<{ nexthops?: Array<{ ip?: string }> }> };
    return s.paths?.length ? s : undefined;
  }, 30_000, debug);
  assert.equal(j.paths![0]!.nexthops?.[0]?.ip, lab.tabbyIp);
  await until('FRR kernel', () => sh('ip', ['-n', lab.peerNs, 'route', 'show', '10.244.2.0/26']).includes(`via ${lab.tabbyIp}`), 30_000, debug);
});
