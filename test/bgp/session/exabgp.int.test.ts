/**
 * Interop with ExaBGP 4.2 in a network namespace (tbc-exa), eBGP, ExaBGP with 4-byte AS
 * disabled: our OPEN carries AS_TRANS, our UPDATE AS_TRANS + AS4_PATH (ExaBGP merges it back to
 * the real 4-byte AS); ExaBGP's communities, large communities and unknown optional transitive
 * attribute are decoded on our side from 2-byte AS_PATHs. Ports 17934/17935.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { firstReason, needCommand, needRoot } from '../../lib/skip.js';
import { daemon, netnsWithTemp, nsName, poll, runner } from './interop.js';

const NS = nsName('tbc-exa');

test('ExaBGP eBGP peer without AS4: AS_TRANS + AS4_PATH out, communities/large/unknown attributes in', { skip: firstReason(needRoot(), needCommand('exabgp')) ?? false, timeout: 60_000 }, async (t) => {
  const dir = netnsWithTemp(t, NS);
  chmodSync(dir, 0o755); // ExaBGP runs its helper scripts as an unprivileged user
  const announce = path.join(dir, 'announce.sh');
  writeFileSync(
    announce,
    [
      '#!/bin/sh',
      'sleep 1',
      'echo "announce route 10.244.4.0/26 next-hop self community [64513:100] large-community [64513:1:2]"',
      'echo "announce route 10.244.5.0/26 next-hop self attribute [ 0xf0 0xc0 0x0102 ]"',
      'exec sleep 60',
      '',
    ].join('\n'),
  );
  chmodSync(announce, 0o755);
  const recv = path.join(dir, 'recv.jsonl');
  const recvSh = path.join(dir, 'recv.sh');
  // no exec: ExaBGP treats a helper whose stdout closes as dead
  writeFileSync(recvSh, `#!/bin/sh\ncat >> ${recv}\n`);
  chmodSync(recvSh, 0o755);
  const conf = path.join(dir, 'exabgp.conf');
  writeFileSync(
    conf,
    `
process announce { run ${announce}; encoder text; }
process recv { run ${recvSh}; encoder json; }
neighbor 127.0.0.2 {
  router-id 10.0.0.4; local-address 127.0.0.1; local-as 64513; peer-as 23456;
  hold-time 9; connect 17935;
  capability { asn4 disable; route-refresh; }
  family { ipv4 unicast; }
  api { processes [ announce ]; }
  api { processes [ recv ]; receive { parsed; update; notification; } }
}
`,
  );
  const env = { ...process.env, 'exabgp.daemon.user': 'root', 'exabgp.log.destination': path.join(dir, 'exa.log'), 'exabgp.tcp.port': '17934' };
  const exaDaemon = daemon(t, NS, ['exabgp', conf], env);
  const exaLog = path.join(dir, 'exa.log');
  const exa = { log: (): string => `${exaDaemon.log()}\n${existsSync(exaLog) ? readFileSync(exaLog, 'utf8') : ''}` };
  const r = runner(t, NS, {
    local: { address: '127.0.0.2', port: 17935 },
    peer: { address: '127.0.0.1', port: 17934 },
    config: { localAs: 4200000001, routerId: '10.0.0.2', peerAs: 64513, holdTime: 9, families: ['ipv4-unicast'] },
    originate: [{ family: 'ipv4-unicast', prefix: '10.244.9.0/26', nextHop: '127.0.0.2', attributes: { asPath: [{ type: 2, asns: [4200000001] }] } }],
  });
  const est = await r.waitFor((e) => e.ev === 'established', 'Established', exa.log);
  assert.equal(est.holdTime, 9);
  const c = (await r.waitFor((e) => e.ev === 'update' && JSON.stringify(e.announce).includes('10.244.4.0/26'), 'route with communities', exa.log)).attributes as Record<string, unknown>;
  assert.deepEqual(c.asPath, [{ type: 2, asns: [64513] }]);
  assert.deepEqual(c.communities, [((64513 << 16) >>> 0) + 100]);
  assert.deepEqual(c.largeCommunities, [[64513, 1, 2]]);
  const u = (await r.waitFor((e) => e.ev === 'update' && JSON.stringify(e.announce).includes('10.244.5.0/26'), 'route with an unknown attribute', exa.log)).attributes as Record<string, unknown>;
  assert.deepEqual(u.unknown, [{ flags: 0xc0, type: 0xf0, value: { 0: 1, 1: 2 } }]);

  // ExaBGP's view of our route: a 2-byte session (peer AS 23456) whose AS4_PATH restored the real AS
  const got = await poll(() => (existsSync(recv) ? readFileSync(recv, 'utf8') : ''), (s) => s.includes('10.244.9.0/26'));
  const line = got.split('\n').find((l) => l.includes('10.244.9.0/26'));
  assert.ok(line, got);
  const j = JSON.parse(line) as { neighbor: { asn: { peer: number }; message: { update: { attribute: { 'as-path': number[] } } } } };
  assert.equal(j.neighbor.asn.peer, 23456);
  assert.deepEqual(j.neighbor.message.update.attribute['as-path'], [4200000001]);
  await r.stop();
});
