/**
 * Graceful restart against BIRD 2 (tbr-gr-*, veth 10.99.51.0/24):
 *  1. tabby restarting: kill -9 tabby-bgp → BIRD keeps our route (stale) and our kernel keeps
 *     BIRD's; tabby restarts, finds its kernel routes (R/F bits), waits for BIRD's End-of-RIB,
 *     sends its table + EoR → BIRD drops the route we no longer originate, keeps the new one.
 *  2. tabby helping: kill -9 BIRD → tabby keeps BIRD's route stale (kernel too); BIRD restarts
 *     (`-R`) with another static route → after its EoR the stale route is swept.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { firstReason, needCommand, needRoot } from '../../lib/skip.js';
import { queryRoutes, queryStatus } from '../../../bgp/ctl.js';
import { makeLab, sh, until } from './lab.js';
import { birdConf, tabbyConf } from './bird-conf.js';

test('graceful restart with BIRD 2: tabby restarting (kill -9) and tabby as helper (BIRD kill -9)', { skip: firstReason(needRoot(), needCommand('bird', 'bird2')) ?? false, timeout: 180_000 }, async (t) => {
  const lab = makeLab(t, 'gr', 51);
  const sock = path.join(lab.dir, 'tabby.sock');
  const birdCtl = path.join(lab.dir, 'bird.ctl');
  const birdFile = path.join(lab.dir, 'bird.conf');
  writeFileSync(birdFile, birdConf(lab.peerIp, lab.tabbyIp));
  let bird = lab.spawnIn(lab.peerNs, 'bird', ['-f', '-c', birdFile, '-s', birdCtl]);
  let tabby = lab.startTabby(tabbyConf(lab, ['10.244.2.0/26']));
  const birdc = (...args: string[]) => sh('birdc', ['-s', birdCtl, ...args]);
  const birdRoutes = () => birdc('show', 'route', 'protocol', 'tabby');
  const debug = () => `--- tabby\n${tabby.output().slice(-3000)}\n--- bird\n${bird.output().slice(-2000)}`;
  const established = async () => (await queryStatus(sock)).peers[0]?.state === 'Established';

  await until('Established', established, 40_000, debug);
  await until('BIRD has 10.244.2.0/26', () => birdRoutes().includes('10.244.2.0/26'), 20_000, debug);
  await until('our kernel has 10.244.1.0/26', () => sh('ip', ['-n', lab.tabbyNs, 'route', 'show', '10.244.1.0/26']).includes('proto 80'), 20_000, debug);

  // 1. tabby dies without a word.
  const gone = new Promise((r) => tabby.once('exit', r));
  tabby.kill('SIGKILL');
  await gone;
  await until('BIRD notices the loss', () => !/Established/.test(birdc('show', 'protocols', 'tabby')), 30_000, debug);
  assert.match(birdRoutes(), /10\.244\.2\.0\/26/, 'BIRD keeps our route while we restart');
  assert.match(sh('ip', ['-n', lab.tabbyNs, 'route', 'show', '10.244.1.0/26']), /proto 80/, 'our kernel route survives');
  tabby = lab.startTabby(tabbyConf(lab, ['10.244.4.0/26']));
  await until('Established again', established, 40_000, debug);
  await until('BIRD swaps the stale route for the new one', () => {
    const r = birdRoutes();
    return r.includes('10.244.4.0/26') && !r.includes('10.244.2.0/26');
  }, 30_000, debug);
  await until('advertisements released', async () => !(await queryStatus(sock)).deferringAdvertisements, 20_000, debug);
  assert.match(sh('ip', ['-n', lab.tabbyNs, 'route', 'show', '10.244.1.0/26']), /proto 80/, 'kernel route kept (refreshed by BIRD)');

  // 2. BIRD dies; tabby helps.
  const birdGone = new Promise((r) => bird.once('exit', r));
  bird.kill('SIGKILL');
  await birdGone;
  const stale = await until('stale route at tabby', async () => {
    const r = await queryRoutes(sock, '10.244.1.0/26');
    return r[0]?.paths[0]?.stale ? r : undefined;
  }, 30_000, debug);
  assert.equal(stale[0]!.paths[0]!.nextHop, lab.peerIp);
  assert.match(sh('ip', ['-n', lab.tabbyNs, 'route', 'show', '10.244.1.0/26']), /proto 80/, 'kernel keeps forwarding during the restart');
  writeFileSync(birdFile, birdConf(lab.peerIp, lab.tabbyIp, ['10.244.5.0/26']));
  bird = lab.spawnIn(lab.peerNs, 'bird', ['-f', '-R', '-c', birdFile, '-s', birdCtl]);
  await until('BIRD back and stale swept', async () => {
    const gone1 = (await queryRoutes(sock, '10.244.1.0/26')).length === 0;
    const has5 = (await queryRoutes(sock, '10.244.5.0/26')).length === 1;
    return gone1 && has5;
  }, 60_000, debug);
  await until('kernel follows', () => !sh('ip', ['-n', lab.tabbyNs, 'route', 'show', '10.244.1.0/26']).includes('proto 80') && sh('ip', ['-n', lab.tabbyNs, 'route', 'show', '10.244.5.0/26']).includes('proto 80'), 20_000, debug);
});
