/**
 * docker-compose.yml: the demo topology for machines with Docker. Validated with `docker-compose config`
 * (works without an engine) and checked against the BIRD config, the build contexts and, once the
 * cluster harness is in the tree, against the demo's own plan.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse } from 'yaml';
import { needCommand } from '../lib/skip.js';
import { ROOT } from '../../scripts/gen-manifests.js';

type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any

const COMPOSE = join(ROOT, 'docker-compose.yml');
const BIRD_CONF = join(ROOT, 'deploy/compose/bird/bird.conf');
const NODES = ['node-1', 'node-2', 'node-3'];

/** The file as docker-compose resolves it, or with the yaml library (merge keys on) when it is absent. */
let cached: { model: Any; via: string } | undefined;
function composeModel(): { model: Any; via: string } {
  if (cached) return cached;
  if (needCommand('docker-compose') === undefined) {
    const out = execFileSync('docker-compose', ['-f', COMPOSE, 'config'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    cached = { model: parse(out), via: 'docker-compose' };
  } else {
    cached = { model: parse(readFileSync(COMPOSE, 'utf8'), { merge: true }), via: 'yaml' };
  }
  return cached;
}

test('docker-compose config accepts the file', (t) => {
  const reason = needCommand('docker-compose');
  if (reason) {
    t.skip(reason);
    return;
  }
  // Throws (non-zero exit) on any schema or interpolation error.
  const out = execFileSync('docker-compose', ['-f', COMPOSE, 'config', '--quiet'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  assert.equal(out.trim(), '');
});

test('etcd, setup, a BIRD ToR and three tabby-node services on one network with static addresses', () => {
  const { model } = composeModel();
  const s = model.services;
  assert.deepEqual(Object.keys(s).sort(), ['etcd', 'node-1', 'node-2', 'node-3', 'setup', 'tor']);
  const addr = (name: string): string => s[name].networks.fabric.ipv4_address;
  assert.equal(addr('tor'), '172.31.254.1');
  assert.equal(addr('etcd'), '172.31.254.2');
  const subnet = model.networks.fabric.ipam.config[0];
  assert.equal(subnet.subnet, '172.31.254.0/24');
  assert.ok(![addr('tor'), addr('etcd'), ...NODES.map(addr)].includes(subnet.gateway), 'the bridge gateway must not take a service address');
  const etcdUrl = `http://${addr('etcd')}:2379`;
  for (const [i, n] of NODES.entries()) {
    const env = s[n].environment;
    assert.equal(addr(n), `172.31.254.${11 + i}`);
    assert.equal(env.NODENAME, n);
    assert.equal(env.IP, `${addr(n)}/24`);
    assert.equal(env.DATASTORE_TYPE, 'etcdv3');
    assert.equal(env.ETCD_ENDPOINTS, etcdUrl);
    assert.equal(env.CALICO_IPV4POOL_IPIP, 'Never');
    assert.equal(s[n].privileged, true);
    assert.equal(s[n].image, 'tabby/tabby:0.1.0');
  }
  assert.equal(s.setup.environment.ETCD_ENDPOINTS, etcdUrl);
});

test('build contexts and mounted files exist', () => {
  const model = parse(readFileSync(COMPOSE, 'utf8'), { merge: true }) as Any;
  for (const [name, svc] of Object.entries(model.services) as Array<[string, Any]>) {
    if (svc.build) {
      const ctx = typeof svc.build === 'string' ? svc.build : svc.build.context;
      assert.ok(existsSync(join(ROOT, ctx, 'Dockerfile')), `${name}: no Dockerfile in ${ctx}`);
    }
    for (const v of (svc.volumes ?? []) as string[]) {
      const src = v.split(':')[0]!;
      if (src.startsWith('./')) assert.ok(existsSync(join(ROOT, src)), `${name}: ${src} does not exist`);
    }
  }
});

test('the ToR peers with exactly the compose nodes, from its own address, in the nodes\' AS', () => {
  const { model } = composeModel();
  const bird = readFileSync(BIRD_CONF, 'utf8');
  const tor = model.services.tor.networks.fabric.ipv4_address;
  assert.match(bird, new RegExp(`^router id ${tor.replace(/\./g, '\\.')};$`, 'm'));
  const neighbors = [...bird.matchAll(/neighbor (\S+) as (\d+); source address (\S+);/g)].map((m) => ({ ip: m[1], as: m[2], src: m[3] }));
  const as = model.services['node-1'].environment.AS;
  assert.deepEqual(
    neighbors,
    NODES.map((n) => ({ ip: model.services[n].networks.fabric.ipv4_address, as, src: tor })),
  );
  assert.match(bird, new RegExp(`local as ${as};`));
});

test('matches the demo plan (cluster/plan.ts): BIRD config, pool and peer', async (t) => {
  const planPath = join(ROOT, 'cluster/plan.ts');
  if (!existsSync(planPath)) {
    t.skip('cluster/plan.ts is not in this tree yet (the demo harness lands with the cluster branch)');
    return;
  }
  const plan: Any = await import(pathToFileURL(planPath).href);
  const p = plan.makePlan(plan.defaultOptions());
  const strip = (s: string): string => s.split('\n').filter((l) => !l.startsWith('#')).join('\n');
  assert.equal(strip(readFileSync(BIRD_CONF, 'utf8')), strip(plan.birdConfig(p)));
  const docs = (x: string): Any[] => x.split(/^---$/m).map((d) => parse(d)).filter(Boolean);
  assert.deepEqual(docs(readFileSync(join(ROOT, 'deploy/compose/cluster.yaml'), 'utf8')), docs(plan.clusterManifests(p)));
});
