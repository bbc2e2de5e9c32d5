/**
 * tabby-node's early BGP listeners (node/bgp-listen.ts EarlyBgpListeners, openEarlyListeners) over real
 * TCP on 127.0.0.1 (no root), ports 23970-23972: connections made before the speaker exists are held
 * and handed over with the bytes already sent, except from peers that need TCP-MD5/GTSM; and the
 * session and speaker loggers that keep a session's way up to one log line at info level.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Writable } from 'node:stream';
import { MemoryDatastore } from '../../datastore/memory.js';
import { createLogger, silentLogger } from '../../lib/log.js';
import { EarlyBgpListeners, openEarlyListeners, sessionLogger, speakerLogger } from '../../node/bgp-listen.js';
import type { BGPConfiguration } from '../../api/types.js';

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

const closed = (s: net.Socket): Promise<void> => new Promise((r) => (s.closed ? r() : s.once('close', () => r())));

async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 300 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), `gave up waiting for ${what}`);
}

test('connections before deliver() are held with their bytes, then handed over; later ones go straight through', async (t) => {
  const early = new EarlyBgpListeners(23970, false, silentLogger());
  t.after(() => early.close());
  assert.equal(await early.listeners.ready, true);
  const plain = await connect(23970);
  plain.write('OPEN from a plain peer');
  t.after(() => plain.destroy());
  await until('the first connection to be held', () => early.holding === 1);
  const secured = await connect(23970);
  t.after(() => secured.destroy());
  await until('both connections to be held', () => early.holding === 2);

  // Both come from 127.0.0.1; tell them apart by the client port.
  const got: net.Socket[] = [];
  const plainPort = plain.localPort;
  early.deliver((s) => void got.push(s), [{ address: '127.0.0.1' }]);
  assert.equal(early.holding, 0);
  assert.equal(got.length, 2, 'a peer without password/ttlSecurity: both handed over');
  const data = await new Promise<string>((r) => got.find((s) => s.remotePort === plainPort)!.once('data', (b: Buffer) => r(b.toString())));
  assert.equal(data, 'OPEN from a plain peer');
  for (const s of got) s.destroy();

  // After delivery new connections go straight to the handler.
  const later = await connect(23970);
  t.after(() => later.destroy());
  await until('a direct hand-over', () => got.length === 3);
  for (const s of [...got, plain, secured, later]) s.destroy();
});

test('held connections from a peer with a password or ttlSecurity are closed on delivery', async (t) => {
  for (const [i, p] of [{ password: 'pw' }, { ttlSecurity: 1 }].entries()) {
    const port = 23971;
    const early = new EarlyBgpListeners(port, false, silentLogger());
    assert.equal(await early.listeners.ready, true, `listener ${i}`);
    const c = await connect(port);
    await until('held', () => early.holding === 1);
    const got: net.Socket[] = [];
    early.deliver((s) => void got.push(s), [{ address: '127.0.0.1', ...p }]);
    await closed(c);
    assert.equal(got.length, 0);
    await early.close();
  }
  // close() drops what is still held.
  const early = new EarlyBgpListeners(23972, false, silentLogger());
  t.after(() => early.close());
  await early.listeners.ready;
  const c = await connect(23972);
  await until('held', () => early.holding === 1);
  await early.close();
  await closed(c);
});

test('openEarlyListeners: BGPConfiguration default listenPort, else the default port', async (t) => {
  const ds = new MemoryDatastore();
  const a = await openEarlyListeners(ds, 23970, false, silentLogger());
  t.after(() => a?.close());
  assert.equal(a?.port, 23970);
  await a?.close();
  await ds.create<BGPConfiguration>({ apiVersion: 'projectcalico.org/v3', kind: 'BGPConfiguration', metadata: { name: 'default' }, spec: { listenPort: 23971 } });
  const b = await openEarlyListeners(ds, 23970, false, silentLogger());
  t.after(() => b?.close());
  assert.equal(b?.port, 23971);
  // The datastore cannot be read: none (the speaker opens its own later).
  const broken = { get: () => Promise.reject(new Error('unreachable')) } as unknown as MemoryDatastore;
  assert.equal(await openEarlyListeners(broken, 23972, false, silentLogger()), undefined);
});

test('session logger: transitions and NOTIFICATION lines dropped at info (the speaker logs them), the rest kept; all kept at debug', () => {
  const lines: Array<{ msg: string; peer?: string }> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as { msg: string; peer?: string });
      cb();
    },
  });
  const info = sessionLogger(createLogger({ name: 't', level: 'info', destination: sink }));
  const s = info.child({ peer: '10.0.0.3' });
  s.info({ from: 'Idle', to: 'Active' }, 'Idle -> Active');
  s.info({ notification: 'Cease/Administrative Shutdown' }, 'NOTIFICATION sent');
  s.info({ keep: 'outgoing' }, 'connection collision resolved');
  s.warn('something odd');
  info.info({ remote: '10.0.0.9' }, 'refusing a connection from an unconfigured address');
  assert.deepEqual(
    lines.map((l) => [l.msg, l.peer]),
    [
      ['connection collision resolved', '10.0.0.3'],
      ['something odd', '10.0.0.3'],
      ['refusing a connection from an unconfigured address', undefined],
    ],
  );
  lines.length = 0;
  const debug = sessionLogger(createLogger({ name: 't', level: 'debug', destination: sink }));
  debug.child({ peer: '10.0.0.3' }).info('Idle -> Active');
  assert.deepEqual(lines.map((l) => l.msg), ['Idle -> Active']);
});

test('speaker logger: at info a session coming up is one line; failures, leaving Established and other lines kept', () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push((JSON.parse(l) as { msg: string }).msg);
      cb();
    },
  });
  const log = speakerLogger(createLogger({ name: 't', level: 'info', destination: sink }));
  const tr = (from: string, to: string, detail?: string): void => log.info({ peer: '10.0.0.3', from, to, reason: 'r', detail }, `peer 10.0.0.3 ${from} -> ${to}`);
  tr('Idle', 'Connect');
  tr('Connect', 'Active', 'connection refused');
  tr('Active', 'OpenSent');
  tr('OpenSent', 'OpenConfirm');
  tr('OpenConfirm', 'Established');
  tr('Established', 'Idle', 'received Cease / Administrative Shutdown');
  tr('Idle', 'Active');
  log.info({ peer: '10.0.0.3' }, 'peer 10.0.0.3: restarting after the max-prefix idle time');
  log.warn('peer 10.0.0.3 Idle -> Active');
  assert.deepEqual(lines, [
    'peer 10.0.0.3 Connect -> Active',
    'peer 10.0.0.3 OpenConfirm -> Established',
    'peer 10.0.0.3 Established -> Idle',
    'peer 10.0.0.3: restarting after the max-prefix idle time',
    'peer 10.0.0.3 Idle -> Active',
  ]);
  lines.length = 0;
  const debug = speakerLogger(createLogger({ name: 't', level: 'debug', destination: sink }));
  debug.info({ from: 'Idle', to: 'Connect' }, 'peer 10.0.0.3 Idle -> Connect');
  assert.deepEqual(lines, ['peer 10.0.0.3 Idle -> Connect']);
});
