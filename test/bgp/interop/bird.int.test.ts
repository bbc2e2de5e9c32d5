/**
 * tabby-bgp (the daemon) against a real BIRD 2, each in its own network namespace (tbr-bird-t /
 * tbr-bird-p, veth 10.99.50.0/24, BGP port 17952): iBGP with TCP-MD5, graceful restart and
 * ADD-PATH; routes both ways; BIRD's route lands in our namespace's kernel with protocol 80;
 * SIGHUP adds a prefix without a session reset; SIGTERM closes with Cease.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { firstReason, needCommand, needRoot } from '../../lib/skip.js';
import { queryRoutes, queryStatus } from '../../../bgp/ctl.js';
import { makeLab, sh, until } from './lab.js';
import { birdConf, tabbyConf } from './bird-conf.js';

test('tabby-bgp ⇄ BIRD 2: MD5 + GR + ADD-PATH iBGP, routes both ways, kernel install, reload, Cease', { skip: firstReason(needRoot(), needCommand('bird', 'bird2')) ?? false, timeout: 120_000 }, async (t) => {
  const lab = makeLab(t, 'bird', 50);
  const sock = path.join(lab.dir, 'tabby.sock');
  const birdCtl = path.join(lab.dir, 'bird.ctl');
  writeFileSync(path.join(lab.dir, 'bird.conf'), birdConf(lab.peerIp, lab.tabbyIp));
  const bird = lab.spawnIn(lab.peerNs, 'bird', ['-f', '-c', path.join(lab.dir, 'bird.conf'), '-s', birdCtl]);
  const tabby = lab.startTabby(tabbyConf(lab, ['10.244.2.0/26']));
  const birdc = (...args: string[]) => sh('birdc', ['-s', birdCtl, ...args]);
  const debug = () => `--- tabby\n${tabby.output().slice(-3000)}\n--- bird\n${bird.output().slice(-2000)}`;

  const st = await until('Established (tabby side)', async () => {
    const s = await queryStatus(sock);
    return s.peers[0]?.state === 'Established' ? s : undefined;
  }, 40_000, debug);
  assert.ok(st.peers[0]!.capabilities.includes('add-path rx ipv4-unicast'), st.peers[0]!.capabilities.join(','));
  assert.ok(st.peers[0]!.capabilities.some((c) => c.startsWith('graceful-restart')));
  await until('BIRD Established', () => /Established/.test(birdc('show', 'protocols', 'tabby')), 20_000, debug);

  // BIRD → tabby, into our namespace's kernel with protocol 80.
  const routes = await until('route from BIRD', async () => {
    const r = await queryRoutes(sock, '10.244.1.0/26');
    return r.length === 1 ? r : undefined;
  }, 20_000, debug);
  assert.equal(routes[0]!.paths[0]!.nextHop, lab.peerIp);
  assert.equal(routes[0]!.paths[0]!.localPref, 100);
  const kernel = await until('kernel route', () => {
    const out = sh('ip', ['-n', lab.tabbyNs, 'route', 'show', '10.244.1.0/26']);
    return out.includes('via') ? out : undefined;
  }, 20_000, debug);
  assert.match(kernel, new RegExp(`10\\.244\\.1\\.0/26 via ${lab.peerIp.replace(/\./g, '\\.')} dev e0 proto 80`));

  // tabby → BIRD (and BIRD's kernel).
  await until('BIRD has our route', () => /10\.244\.2\.0\/26/.test(birdc('show', 'route', 'protocol', 'tabby')), 20_000, debug);
  await until('BIRD kernel has our route', () => sh('ip', ['-n', lab.peerNs, 'route', 'show', '10.244.2.0/26']).includes(`via ${lab.tabbyIp}`), 20_000, debug);

  // SIGHUP: one more prefix, same session.
  const estBefore = birdc('show', 'protocols', 'tabby').match(/Established\s*$/m) ? birdc('show', 'protocols', 'tabby') : '';
  writeFileSync(path.join(lab.dir, 'tabby-bgp.yaml'), tabbyConf(lab, ['10.244.2.0/26', '10.244.3.0/26']));
  tabby.kill('SIGHUP');
  await until('BIRD has the added route', () => /10\.244\.3\.0\/26/.test(birdc('show', 'route', 'protocol', 'tabby')), 20_000, debug);
  const since = (s: string) => s.split('\n').find((l) => l.startsWith('tabby'))?.split(/\s+/).slice(3, 5).join(' ');
  assert.equal(since(birdc('show', 'protocols', 'tabby')), since(estBefore), 'session not reset by the reload');

  // SIGTERM: Cease (administrative shutdown) seen by BIRD; the process exits 0.
  const exited = new Promise<number | null>((r) => tabby.once('exit', (code) => r(code)));
  tabby.kill('SIGTERM');
  assert.equal(await exited, 0);
  const down = await until('BIRD sees the shutdown', () => {
    const s = birdc('show', 'protocols', 'all', 'tabby');
    return /Administrative shutdown|Cease/i.test(s) ? s : undefined;
  }, 20_000, debug);
  assert.doesNotMatch(down, /Established/);
  // The kernel route stays after exit (forwarding survives a restart of the speaker).
  assert.match(sh('ip', ['-n', lab.tabbyNs, 'route', 'show', '10.244.1.0/26']), /proto 80/);
});
