/**
 * The agent with BGPConfiguration service advertisement + communities and BGP passwords from
 * Secrets, on a memory datastore with a recording speaker: what reaches the speaker, what the
 * status socket says, and that changes do not touch sessions that did not change.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventEmitter } from 'node:events';
import { MemoryDatastore } from '../../datastore/memory.js';
import { Writable } from 'node:stream';
import { createLogger, silentLogger } from '../../lib/log.js';
import { parseNodeConfig } from '../../node/config.js';
import { NodeAgent, type SpeakerConfigLike, type SpeakerLike } from '../../node/agent.js';
import { formatNodeStatus, readStatus } from '../../node/status.js';
import type { BGPConfiguration, BGPPeer, CalicoNodeStatus } from '../../api/types.js';

/** Records every configuration; every peer reports Established. */
class RecordingSpeaker extends EventEmitter implements SpeakerLike {
  readonly history: SpeakerConfigLike[];
  constructor(first: SpeakerConfigLike) {
    super();
    this.history = [first];
  }
  get last(): SpeakerConfigLike {
    return this.history[this.history.length - 1]!;
  }
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  async setConfig(c: SpeakerConfigLike): Promise<void> {
    this.history.push(c);
  }
  status() {
    return { peers: this.last.peers.map((p) => ({ address: p.address, port: p.port ?? 179, peerType: p.description ?? '', state: 'Established', since: '2026-11-23T09:00:00Z', info: '', prefixes: { received: 0 } })) };
  }
  routes() {
    return [{ family: 'ipv4-unicast', prefix: '10.96.0.0/12', paths: [{ from: 'local', best: true }] }];
  }
}

async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>): Promise<T> {
  for (let i = 0; i < 300; i++) {
    const v = await fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
  return assert.fail(`gave up waiting for ${what}`);
}

test('agent: service CIDRs + communities advertised live, passwords from Secrets, held-back peer in status, CalicoNodeStatus written', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tnm-agent-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ds = new MemoryDatastore();
  const secrets: Record<string, Record<string, string>> = { 'bgp-secrets': { tor: 'torpw' } };
  const reads: string[] = [];
  await ds.create<BGPConfiguration>({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPConfiguration',
    metadata: { name: 'default' },
    spec: { serviceClusterIPs: [{ cidr: '10.96.0.0/12' }], communities: [{ name: 'svc', value: '65000:300' }], prefixAdvertisements: [{ cidr: '10.96.0.0/12', communities: ['svc'] }] },
  });
  const peer = (name: string, ip: string, key: string): BGPPeer => ({ apiVersion: 'projectcalico.org/v3', kind: 'BGPPeer', metadata: { name }, spec: { peerIP: ip, asNumber: 65100, password: { secretKeyRef: { name: 'bgp-secrets', key } } } });
  await ds.create(peer('tor', '10.0.0.254', 'tor'));
  await ds.create(peer('tor2', '10.0.0.253', 'tor2'));
  await ds.create<CalicoNodeStatus>({ apiVersion: 'projectcalico.org/v3', kind: 'CalicoNodeStatus', metadata: { name: 'a-status' }, spec: { node: 'node-a', classes: ['Agent', 'BGP', 'Routes'], updatePeriodSeconds: 1 } });

  const cfg = parseNodeConfig({ NODENAME: 'node-a', IP: '10.0.0.1/24', TABBY_RUN_DIR: join(dir, 'run'), TABBY_LIB_DIR: join(dir, 'lib'), DATASTORE_TYPE: 'memory', FELIX_HEALTHENABLED: 'false', NO_DEFAULT_POOLS: 'true' });
  let sp: RecordingSpeaker | undefined;
  const agent = new NodeAgent(cfg, {
    ds,
    log: silentLogger(),
    detect: async () => assert.fail('static IP'),
    speaker: (c) => (sp = new RecordingSpeaker(c)),
    version: 'tabby test',
    secrets: {
      namespace: 'calico-system',
      refreshMs: 20,
      source: {
        read: async (ns, name) => {
          reads.push(`${ns}/${name}`);
          return secrets[name];
        },
      },
    },
  });
  t.after(() => agent.stop());
  await agent.start();
  const speaker = await until('speaker with the tor password', async () => {
    await agent.settle();
    return sp?.last.peers.some((p) => p.password === 'torpw') && sp;
  });
  assert.ok(reads.every((r) => r === 'calico-system/bgp-secrets'));
  assert.deepEqual(speaker.last.originate, ['10.96.0.0/12']);
  assert.deepEqual(speaker.last.prefixAdvertisements, [{ cidr: '10.96.0.0/12', communities: ['65000:300'] }]);
  assert.deepEqual(speaker.last.peers.map((p) => p.address), ['10.0.0.254'], 'tor2 (no such key) is held back');

  let st = await readStatus(cfg.runDir);
  const held = st.bgp.peers.find((p) => p.address === '10.0.0.253');
  assert.deepEqual(held && [held.state, held.info], ['Idle', 'Idle password unavailable: Secret calico-system/bgp-secrets has no key "tor2"']);
  assert.match(formatNodeStatus(st), /\| 10\.0\.0\.253 +\| global +\| start \| \S+ +\| Idle password unavailable: Secret calico-system\/bgp-secrets has no key "tor2" \|/);
  assert.ok(!JSON.stringify(st).includes('torpw'), 'the status never carries a password');

  // BGPConfiguration change: new service range and community, sessions untouched.
  const peersBefore = JSON.stringify(speaker.last.peers);
  const bc = await ds.get<BGPConfiguration>('BGPConfiguration', 'default');
  await ds.update<BGPConfiguration>({ ...bc, spec: { ...bc.spec, serviceExternalIPs: [{ cidr: '192.0.2.0/24' }], prefixAdvertisements: [{ cidr: '10.96.0.0/12', communities: ['svc', '65000:1:2'] }] } });
  await until('new originate', async () => {
    await agent.settle();
    return speaker.last.originate?.includes('192.0.2.0/24');
  });
  assert.deepEqual(speaker.last.originate, ['10.96.0.0/12', '192.0.2.0/24']);
  assert.deepEqual(speaker.last.prefixAdvertisements, [{ cidr: '10.96.0.0/12', communities: ['65000:300', '65000:1:2'] }]);
  assert.equal(JSON.stringify(speaker.last.peers), peersBefore, 'peer configs (so sessions) unchanged');

  // The Secret gains the missing key and changes the other: both peers configured, tor re-keyed.
  secrets['bgp-secrets'] = { tor: 'torpw2', tor2: 'tor2pw' };
  await until('re-keyed peers', async () => {
    await agent.settle();
    return speaker.last.peers.length === 2;
  });
  assert.deepEqual(speaker.last.peers.map((p) => [p.address, p.password]), [['10.0.0.254', 'torpw2'], ['10.0.0.253', 'tor2pw']]);
  st = await readStatus(cfg.runDir);
  assert.deepEqual(st.bgp.peers.map((p) => p.state), ['Established', 'Established']);

  // CalicoNodeStatus naming this node got a status.
  const ns = await until('CalicoNodeStatus written', async () => {
    const o = await ds.get<CalicoNodeStatus>('CalicoNodeStatus', 'a-status');
    return o.status?.bgp?.peersV4?.length === 2 && o;
  });
  assert.equal(ns.status?.agent?.birdV4?.state, 'Ready');
  assert.equal(ns.status?.agent?.birdV4?.version, 'tabby test');
  assert.deepEqual(ns.status?.routes?.routesV4, [{ type: 'RIB', destination: '10.96.0.0/12', learnedFrom: { sourceType: 'Static' } }]);
  assert.deepEqual(ns.spec, { node: 'node-a', classes: ['Agent', 'BGP', 'Routes'], updatePeriodSeconds: 1 });
});

test('agent: an optional password Secret that is missing → the peer runs without a password, warned once (again after it comes and goes)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tk5-agent-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ds = new MemoryDatastore();
  let secret: Record<string, string> | undefined;
  await ds.create<BGPPeer>({ apiVersion: 'projectcalico.org/v3', kind: 'BGPPeer', metadata: { name: 'tor' }, spec: { peerIP: '10.0.0.254', asNumber: 65100, password: { secretKeyRef: { name: 'bgp-secrets', key: 'tor', optional: true } } } });
  const cfg = parseNodeConfig({ NODENAME: 'node-a', IP: '10.0.0.1/24', TABBY_RUN_DIR: join(dir, 'run'), TABBY_LIB_DIR: join(dir, 'lib'), DATASTORE_TYPE: 'memory', FELIX_HEALTHENABLED: 'false', NO_DEFAULT_POOLS: 'true' });
  const lines: string[] = [];
  const log = createLogger({ name: 'tabby-node', level: 'info', destination: new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }) });
  let sp: RecordingSpeaker | undefined;
  const agent = new NodeAgent(cfg, {
    ds,
    log,
    detect: async () => assert.fail('static IP'),
    speaker: (c) => (sp = new RecordingSpeaker(c)),
    secrets: { namespace: 'calico-system', refreshMs: 20, source: { read: async () => secret } },
  });
  t.after(() => agent.stop());
  await agent.start();
  const warnings = () => lines.filter((l) => l.includes('optional password: Secret calico-system/bgp-secrets not found; running without TCP-MD5')).length;
  const speaker = await until('peer configured without a password', async () => {
    await agent.settle();
    return sp?.last.peers.length === 1 && warnings() === 1 && sp;
  });
  assert.equal(speaker.last.peers[0]!.password, undefined);
  // More recomputes (a new BGPConfiguration) do not repeat the warning.
  await ds.create<BGPConfiguration>({ apiVersion: 'projectcalico.org/v3', kind: 'BGPConfiguration', metadata: { name: 'default' }, spec: { serviceClusterIPs: [{ cidr: '10.96.0.0/12' }] } });
  await until('recomputed', async () => {
    await agent.settle();
    return speaker.last.originate?.includes('10.96.0.0/12');
  });
  assert.equal(warnings(), 1, 'warned once');
  const st = await readStatus(cfg.runDir);
  assert.deepEqual(st.bgp.peers.map((p) => p.address), ['10.0.0.254'], 'not held back');

  secret = { tor: 'torpw' };
  await until('password once the Secret exists', async () => {
    await agent.settle();
    return speaker.last.peers[0]?.password === 'torpw';
  });
  secret = undefined;
  await until('warned again when it is gone again', async () => {
    await agent.settle();
    return speaker.last.peers[0]?.password === undefined && warnings() === 2;
  });
  assert.ok(!lines.join('').includes('torpw'), 'the password never reaches the log');
});
