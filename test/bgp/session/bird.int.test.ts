/**
 * Interop with a real BIRD 2 in a network namespace (tbc-bird): iBGP with TCP-MD5, ADD-PATH and
 * graceful restart on loopback addresses inside the namespace. Our side runs as a child process
 * (fixtures/peer-runner.ts) inside the same namespace. Ports 17930/17931.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { firstReason, needCommand, needRoot } from '../../lib/skip.js';

const NS = 'tbc-bird';
const here = path.dirname(fileURLToPath(import.meta.url));

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

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
  const dir = mkdtempSync(path.join(tmpdir(), 'tbc-bird-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  try {
    sh('ip', ['netns', 'del', NS]);
  } catch {
    // not there: fine
  }
  sh('ip', ['netns', 'add', NS]);
  t.after(() => {
    try {
      sh('ip', ['netns', 'del', NS]);
    } catch {
      // already gone
    }
  });
  sh('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
  sh('ip', ['-n', NS, 'addr', 'add', '127.0.0.2/8', 'dev', 'lo']);
  writeFileSync(path.join(dir, 'bird.conf'), BIRD_CONF);
  const ctl = path.join(dir, 'bird.ctl');
  const bird = spawn('ip', ['netns', 'exec', NS, 'bird', '-f', '-c', path.join(dir, 'bird.conf'), '-s', ctl], { stdio: ['ignore', 'ignore', 'pipe'] });
  let birdLog = '';
  bird.stderr.on('data', (d: Buffer) => (birdLog += d.toString()));
  t.after(() => {
    bird.kill('SIGKILL');
  });

  const runnerCfg = {
    local: { address: '127.0.0.2', port: 17931 },
    peer: { address: '127.0.0.1', port: 17930 },
    password: 's3cret',
    config: { localAs: 64512, routerId: '10.0.0.2', peerAs: 64512, holdTime: 9, families: ['ipv4-unicast'], addPath: { 'ipv4-unicast': 'both' }, gracefulRestart: { restartTime: 120 } },
    originate: [{ family: 'ipv4-unicast', prefix: '10.244.9.0/26', nextHop: '127.0.0.2' }],
  };
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const child = spawn('ip', ['netns', 'exec', NS, process.execPath, '--import', 'tsx', path.join(here, 'fixtures/peer-runner.ts'), JSON.stringify(runnerCfg)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  let childErr = '';
  child.stderr.on('data', (d: Buffer) => (childErr += d.toString()));
  t.after(() => {
    child.kill('SIGKILL');
  });
  const events: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  createInterface({ input: child.stdout }).on('line', (l) => {
    try {
      events.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      events.push({ ev: 'garbage', line: l });
    }
    for (const w of waiters.splice(0)) w();
  });
  const waitFor = async (pred: (e: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>> => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const hit = events.find(pred);
      if (hit) return hit;
      if (Date.now() > deadline || child.exitCode !== null) {
        assert.fail(`${what} did not happen; events: ${JSON.stringify(events)}\nrunner: ${childErr}\nbird: ${birdLog}`);
      }
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 500);
      });
    }
  };

  const est = await waitFor((e) => e.ev === 'established', 'Established');
  assert.deepEqual(est.addPath, { receive: ['ipv4-unicast'], send: ['ipv4-unicast'] });
  assert.equal((est.gr as { restartTime: number }).restartTime, 120);
  const upd = await waitFor((e) => e.ev === 'update' && Array.isArray(e.announce) && (e.announce as unknown[]).length > 0, "BIRD's route");
  assert.deepEqual((upd.announce as Array<{ prefix: string }>).map((a) => a.prefix), ['10.244.1.0/26']);
  await waitFor((e) => e.ev === 'update' && e.eor === 'ipv4-unicast', "BIRD's End-of-RIB");

  // BIRD's view: Established and our route imported
  let proto = '';
  let routes = '';
  for (let i = 0; i < 20; i++) {
    proto = sh('birdc', ['-s', ctl, 'show', 'protocols', 'all', 'tabby']);
    routes = sh('birdc', ['-s', ctl, 'show', 'route', 'all', 'protocol', 'tabby']);
    if (/Established/.test(proto) && routes.includes('10.244.9.0/26')) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.match(proto, /Established/);
  assert.match(proto, /ADD-PATH/i);
  assert.ok(routes.includes('10.244.9.0/26'), routes);

  // stop with Cease: BIRD records the administrative shutdown
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  let after = '';
  for (let i = 0; i < 20; i++) {
    after = sh('birdc', ['-s', ctl, 'show', 'protocols', 'all', 'tabby']);
    if (/Administrative shutdown/i.test(after)) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.match(after, /Administrative shutdown/i);
});
