/**
 * containerd as the real caller: `ctr run --cni` two busybox containers through the tabby conflist;
 * they ping each other over the Calico-style /32 + 169.254.1.1 plumbing; when they exit ctr calls
 * DEL and every veth, route and IPAM allocation is gone.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildOnce } from '../cni/helpers.js';
import { buildBusyboxImage, containerIp, containerdMissing, installCni, startContainerd } from './harness.js';

const skip = containerdMissing() ?? (existsSync('/usr/lib/cni/host-local') ? undefined : 'needs /usr/lib/cni/host-local (containernetworking-plugins)');

function caliLinks(): string[] {
  return execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(':')[1]?.trim().split('@')[0] ?? '')
    .filter((n) => n.startsWith('cali'));
}

async function waitFor(what: string, fn: () => boolean, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('ctr run --cni: two containers get tabby addresses, ping each other, exit releases everything', { skip, timeout: 120_000 }, async (t) => {
  buildOnce();
  const work = await mkdtemp(join(tmpdir(), 'tcn-ctr-'));
  t.after(() => rm(work, { recursive: true, force: true }));
  const before = caliLinks();
  const cd = await startContainerd();
  t.after(() => cd.stop());
  const image = await buildBusyboxImage(work);
  await cd.ctr(['images', 'import', '--no-unpack=false', image]).catch(() => cd.ctr(['images', 'import', image]));
  const ipamDir = join(work, 'ipam');
  const cni = await installCni({
    cniVersion: '1.0.0',
    name: 'tcn-ctr-net',
    plugins: [
      {
        type: 'tabby',
        log_file_path: join(work, 'cni.log'),
        lib_dir: join(work, 'lib'),
        mtu: 1450,
        ipam: { type: 'host-local', subnet: '10.97.0.0/24', dataDir: ipamDir },
      },
      { type: 'portmap', snat: true, capabilities: { portMappings: true } },
    ],
  });
  t.after(() => cni.restore());
  const a = cd.runDetached('tcn-a', ['sleep', '60']);
  let aOut = '';
  a.stderr?.on('data', (b: Buffer) => (aOut += b.toString()));
  await cd.waitRunning('tcn-a').catch((err: Error) => {
    throw new Error(`${err.message}\nctr: ${aOut}`);
  });
  const ipA = await containerIp(cd, 'tcn-a');
  assert.match(ipA, /^10\.97\.0\.\d+$/);
  assert.equal(caliLinks().filter((l) => !before.includes(l)).length, 1, 'one host veth for tcn-a');
  // Container b pings a through the gateway and exits; ctr then runs DEL for b.
  const pingOut = await cd.ctr(['run', '--rm', '--cni', 'docker.io/tabby/busybox:test', 'tcn-b', 'ping', '-c', '2', '-W', '3', ipA], { timeoutMs: 30_000 });
  assert.match(pingOut, /2 packets received/);
  // a got the MTU from the config and the default route via the proxy-ARP gateway.
  const back = await cd.ctr(['tasks', 'exec', '--exec-id', 'mtu', 'tcn-a', 'ip', 'link', 'show', 'eth0']);
  assert.match(back, /mtu 1450/);
  const routes = await cd.ctr(['tasks', 'exec', '--exec-id', 'routes', 'tcn-a', 'ip', 'route']);
  assert.match(routes, /default via 169\.254\.1\.1 dev eth0/);
  await waitFor('b released', () => readdirSync(join(ipamDir, 'tcn-ctr-net')).filter((f) => /^\d/.test(f)).length === 1);
  // Stop a: ctr run --rm calls DEL, the veth, route and allocation go.
  await cd.ctr(['tasks', 'kill', '-s', 'KILL', 'tcn-a']);
  await new Promise<void>((r) => (a.exitCode !== null ? r() : a.once('exit', () => r())));
  await waitFor('veths removed', () => caliLinks().filter((l) => !before.includes(l)).length === 0);
  assert.deepEqual(readdirSync(join(ipamDir, 'tcn-ctr-net')).filter((f) => /^\d/.test(f)), []);
  assert.doesNotMatch(execFileSync('ip', ['route'], { encoding: 'utf8' }), /10\.97\.0\./);
});
