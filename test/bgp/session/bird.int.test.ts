/**
 * Interop with a real BIRD 2 in a network namespace (tbc-bird): iBGP with TCP-MD5, ADD-PATH and
 * graceful restart on loopback addresses inside the namespace. Our side runs as a child process
 * (fixtures/peer-runner.ts) inside the same namespace. Ports 17930/17931.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { firstReason, needCommand, needRoot } from '../../lib/skip.js';
import { daemon, netnsWithTemp, nsName, poll, runner, sh } from './interop.js';

const NS = nsName('tbc-bird');

const BIRD_CONF = `
log stderr all;
router id 10.0.0.1;
protocol device { scan time 10; }
protocol static { ipv4; route 10.244.1.0/26 blackhole; }
protocol bgp tabby {
  local 127.0.0.1 port 17930 as 64512;
  neighbor 127.0.0.2 port 17931 as 64512;
  password "s3cret";
  hold time 9; connect retry time 1; connect delay time 1; error wait time 1, 5;
  graceful restart on;
  ipv4 { import all; export where source = RTS_STATIC; add paths on; };
}
`;

test('BIRD 2 iBGP peer with MD5, ADD-PATH and GR reaches Established and exchanges routes', { skip: firstReason(needRoot(), needCommand('bird', 'bird2')) ?? false, timeout: 60_000 }, async (t) => {
  const dir = netnsWithTemp(t, NS);
  writeFileSync(path.join(dir, 'bird.conf'), BIRD_CONF);
  const ctl = path.join(dir, 'bird.ctl');
  const bird = daemon(t, NS, ['bird', '-f', '-c', path.join(dir, 'bird.conf'), '-s', ctl]);
  const r = runner(t, NS, {
    local: { address: '127.0.0.2', port: 17931 },
    peer: { address: '127.0.0.1', port: 17930 },
    password: 's3cret',
    config: { localAs: 64512, routerId: '10.0.0.2', peerAs: 64512, holdTime: 9, families: ['ipv4-unicast'], addPath: { 'ipv4-unicast': 'both' }, gracefulRestart: { restartTime: 120 } },
    originate: [{ family: 'ipv4-unicast', prefix: '10.244.9.0/26', nextHop: '127.0.0.2' }],
  });

  const est = await r.waitFor((e) => e.ev === 'established', 'Established', bird.log);
  assert.deepEqual(est.addPath, { receive: ['ipv4-unicast'], send: ['ipv4-unicast'] });
  assert.equal((est.gr as { restartTime: number }).restartTime, 120);
  const upd = await r.waitFor((e) => e.ev === 'update' && Array.isArray(e.announce) && (e.announce as unknown[]).length > 0, "BIRD's route", bird.log);
  assert.deepEqual((upd.announce as Array<{ prefix: string }>).map((a) => a.prefix), ['10.244.1.0/26']);
  await r.waitFor((e) => e.ev === 'update' && e.eor === 'ipv4-unicast', "BIRD's End-of-RIB", bird.log);

  // BIRD's view: Established and our route imported
  const proto = await poll(() => sh('birdc', ['-s', ctl, 'show', 'protocols', 'all', 'tabby']), (s) => /Established/.test(s));
  assert.match(proto, /Established/);
  assert.match(proto, /ADD-PATH/i);
  const routes = await poll(() => sh('birdc', ['-s', ctl, 'show', 'route', 'all', 'protocol', 'tabby']), (s) => s.includes('10.244.9.0/26'));
  assert.ok(routes.includes('10.244.9.0/26'), routes);

  // stop with Cease: BIRD records the administrative shutdown
  await r.stop();
  const after = await poll(() => sh('birdc', ['-s', ctl, 'show', 'protocols', 'all', 'tabby']), (s) => /Administrative shutdown/i.test(s));
  assert.match(after, /Administrative shutdown/i);
});
