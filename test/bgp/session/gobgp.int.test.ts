/**
 * Interop with GoBGP 3.10 in a network namespace (tbc-gobgp): iBGP with TCP-MD5, ADD-PATH, GR,
 * GoBGP's extra capabilities (extended next hop, hostname); routes both ways. Ports 17932/17933.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { firstReason, needCommand, needRoot } from '../../lib/skip.js';
import { daemon, netnsWithTemp, nsName, poll, runner, sh } from './interop.js';

const NS = nsName('tbc-gobgp');

const GOBGP_CONF = `
[global.config]
  as = 64512
  router-id = "10.0.0.1"
  port = 17932
  local-address-list = ["127.0.0.1"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "127.0.0.2"
    peer-as = 64512
    auth-password = "s3cret"
  [neighbors.transport.config]
    remote-port = 17933
    local-address = "127.0.0.1"
  [neighbors.timers.config]
    hold-time = 9
    keepalive-interval = 3
    connect-retry = 1
  [neighbors.graceful-restart.config]
    enabled = true
    restart-time = 120
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
    [neighbors.afi-safis.add-paths.config]
      receive = true
      send-max = 8
`;

test('GoBGP iBGP peer with MD5, ADD-PATH and GR reaches Established and exchanges routes', { skip: firstReason(needRoot(), needCommand('gobgpd')) ?? false, timeout: 60_000 }, async (t) => {
  const dir = netnsWithTemp(t, NS);
  const conf = path.join(dir, 'gobgpd.toml');
  writeFileSync(conf, GOBGP_CONF);
  const gobgp = daemon(t, NS, ['gobgpd', '-f', conf, '--api-hosts', '127.0.0.1:50051', '--pprof-disable']);
  const cli = (...args: string[]): string => sh('ip', ['netns', 'exec', NS, 'gobgp', '-u', '127.0.0.1', '-p', '50051', ...args]);
  // wait for the API, then originate a route in GoBGP
  await poll(() => cli('global'), (s) => s.includes('64512'));
  cli('global', 'rib', 'add', '10.244.2.0/26', '-a', 'ipv4');

  const r = runner(t, NS, {
    local: { address: '127.0.0.2', port: 17933 },
    peer: { address: '127.0.0.1', port: 17932 },
    password: 's3cret',
    config: { localAs: 64512, routerId: '10.0.0.2', peerAs: 64512, holdTime: 9, families: ['ipv4-unicast'], addPath: { 'ipv4-unicast': 'both' }, gracefulRestart: { restartTime: 120 } },
    // GoBGP treats a loopback next hop as invalid (treat-as-withdraw): use a documentation address.
    originate: [{ family: 'ipv4-unicast', prefix: '10.244.9.0/26', nextHop: '192.0.2.2' }],
  });
  const est = await r.waitFor((e) => e.ev === 'established', 'Established', gobgp.log);
  assert.deepEqual(est.addPath, { receive: ['ipv4-unicast'], send: ['ipv4-unicast'] });
  const upd = await r.waitFor((e) => e.ev === 'update' && Array.isArray(e.announce) && (e.announce as unknown[]).length > 0, "GoBGP's route", gobgp.log);
  const ann = upd.announce as Array<{ prefix: string; pathId?: number }>;
  assert.equal(ann[0]?.prefix, '10.244.2.0/26');
  assert.equal(typeof ann[0]?.pathId, 'number', 'GoBGP sends path ids (ADD-PATH send)');

  const nb = await poll(() => cli('neighbor', '127.0.0.2'), (s) => /BGP state\s*=\s*established/i.test(s));
  assert.match(nb, /BGP state\s*=\s*established/i);
  const rib = await poll(() => cli('global', 'rib', '-a', 'ipv4'), (s) => s.includes('10.244.9.0/26'));
  assert.ok(rib.includes('10.244.9.0/26'), `${rib}\nadj-in: ${cli('neighbor', '127.0.0.2', 'adj-in', '-a', 'ipv4')}\n${gobgp.log()}`);
  await r.stop();
});
