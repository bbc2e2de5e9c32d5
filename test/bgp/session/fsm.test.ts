import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BgpFsm, type FsmAction, type FsmEvent } from '../../../bgp/session/fsm.js';
import { maxPrefixData } from '../../../bgp/session/session.js';
import { buildOpen, negotiate, resolveCollision, type LocalConfig } from '../../../bgp/session/negotiate.js';
import { AS_TRANS, BgpError, decodeMessage, type OpenMessage } from '../../../bgp/codec/index.js';

const local: LocalConfig = { localAs: 64512, routerId: '10.0.0.1', peerAs: 64512, holdTime: 90, families: ['ipv4-unicast'], addPath: { 'ipv4-unicast': 'both' } };

function peerOpen(over: Partial<OpenMessage> = {}, cfg: Partial<LocalConfig> = {}): OpenMessage {
  return { type: 'open', ...buildOpen({ ...local, routerId: '10.0.0.2', ...cfg }), ...over };
}

const sent = (acts: FsmAction[]): string[] =>
  acts.flatMap((a) => (a.type === 'send' ? [a.kind === 'notification' ? `notification ${a.notification!.code}/${a.notification!.subcode}` : a.kind] : []));
const states = (acts: FsmAction[]): string[] => acts.flatMap((a) => (a.type === 'state' ? [`${a.from}->${a.to}`] : []));
const timers = (acts: FsmAction[]): string[] =>
  acts.flatMap((a) => (a.type === 'startTimer' ? [`+${a.timer}:${a.seconds}`] : []));

function toEstablished(fsm = new BgpFsm({ config: local })): BgpFsm {
  fsm.handle({ type: 'ManualStart' });
  fsm.handle({ type: 'TcpConnectionConfirmed' });
  fsm.handle({ type: 'Message', message: peerOpen() });
  fsm.handle({ type: 'Message', message: { type: 'keepalive' } });
  assert.equal(fsm.state, 'Established');
  return fsm;
}

test('happy path: Idle → Connect → OpenSent (large hold 240) → OpenConfirm (keepalive hold/3) → Established', () => {
  const fsm = new BgpFsm({ config: local });
  let a = fsm.handle({ type: 'ManualStart' });
  assert.deepEqual(states(a), ['Idle->Connect']);
  assert.ok(a.some((x) => x.type === 'connect'));
  assert.deepEqual(timers(a), ['+connectRetry:120']);
  a = fsm.handle({ type: 'TcpConnectionConfirmed' });
  assert.deepEqual(sent(a), ['open']);
  assert.deepEqual(timers(a), ['+hold:240']);
  a = fsm.handle({ type: 'Message', message: peerOpen({ holdTime: 30 }) });
  assert.deepEqual(sent(a), ['keepalive']);
  assert.deepEqual(timers(a), ['+keepalive:10', '+hold:30']);
  a = fsm.handle({ type: 'Message', message: { type: 'keepalive' } });
  assert.deepEqual(states(a), ['OpenConfirm->Established']);
  const est = a.find((x) => x.type === 'established');
  assert.ok(est && est.type === 'established');
  assert.deepEqual(est.negotiated.addPath, { receive: ['ipv4-unicast'], send: ['ipv4-unicast'] });
  assert.equal(est.negotiated.holdTime, 30);
  // keepalive timer → KEEPALIVE + restart; UPDATE restarts hold and is delivered
  a = fsm.handle({ type: 'TimerExpired', timer: 'keepalive' });
  assert.deepEqual(sent(a), ['keepalive']);
  a = fsm.handle({ type: 'Message', message: { type: 'update', attributes: {}, announce: [], withdraw: [] } });
  assert.deepEqual(timers(a), ['+hold:30']);
  assert.ok(a.some((x) => x.type === 'update'));
});

test('hold time 0 → no keepalives and no hold timer', () => {
  const fsm = new BgpFsm({ config: { ...local, holdTime: 0 } });
  fsm.handle({ type: 'ManualStart' });
  fsm.handle({ type: 'TcpConnectionConfirmed' });
  const a = fsm.handle({ type: 'Message', message: peerOpen({ holdTime: 90 }) });
  assert.deepEqual(timers(a), []);
  fsm.handle({ type: 'Message', message: { type: 'keepalive' } });
  assert.deepEqual(fsm.handle({ type: 'TimerExpired', timer: 'keepalive' }), []);
});

const openErrors: Array<[string, Partial<OpenMessage>, Partial<LocalConfig>, string]> = [
  ['hold time 1', { holdTime: 1 }, {}, 'notification 2/6'],
  ['hold time 2', { holdTime: 2 }, {}, 'notification 2/6'],
  ['version 3', { version: 3 }, {}, 'notification 2/1'],
  ['bad peer AS', {}, { localAs: 64999 }, 'notification 2/2'],
  ['bgp id 0', { bgpId: '0.0.0.0' }, {}, 'notification 2/3'],
  ['same bgp id on iBGP', { bgpId: '10.0.0.1' }, {}, 'notification 2/3'],
];
for (const [name, over, cfg, want] of openErrors) {
  test(`OPEN error: ${name} → ${want}, Idle with idle-hold back-off`, () => {
    const fsm = new BgpFsm({ config: local, idleHoldTime: 5 });
    fsm.handle({ type: 'ManualStart' });
    fsm.handle({ type: 'TcpConnectionConfirmed' });
    const a = fsm.handle({ type: 'Message', message: peerOpen(over, cfg) });
    assert.deepEqual(sent(a), [want]);
    assert.equal(fsm.state, 'Idle');
    assert.ok(a.some((x) => x.type === 'close'));
    assert.deepEqual(timers(a), ['+idleHold:5']);
    // back-off doubles on repeated errors
    fsm.handle({ type: 'TimerExpired', timer: 'idleHold' });
    assert.equal(fsm.state, 'Connect');
    fsm.handle({ type: 'TcpConnectionConfirmed' });
    const b = fsm.handle({ type: 'Message', message: peerOpen(over, cfg) });
    assert.deepEqual(timers(b), ['+idleHold:10']);
  });
}

test('unsupported version NOTIFICATION carries version 4 as data', () => {
  const fsm = new BgpFsm({ config: local });
  fsm.handle({ type: 'ManualStart' });
  fsm.handle({ type: 'TcpConnectionConfirmed' });
  const a = fsm.handle({ type: 'Message', message: peerOpen({ version: 5 }) });
  const s = a.find((x) => x.type === 'send');
  assert.ok(s && s.type === 'send');
  const m = decodeMessage(s.bytes).message;
  assert.ok(m.type === 'notification' && m.data[0] === 0 && m.data[1] === 4);
});

test('AS_TRANS in OPEN only when the local AS > 65535; a 4-byte peer AS is checked via capability 65', () => {
  assert.equal(buildOpen({ ...local, localAs: 65535 }).myAs, 65535);
  assert.equal(buildOpen({ ...local, localAs: 65536 }).myAs, AS_TRANS);
  const big: LocalConfig = { ...local, peerAs: 4200000001 };
  const n = negotiate(big, peerOpen({}, { localAs: 4200000001 }));
  assert.equal(n.peerAs, 4200000001);
  assert.equal(n.as4, true);
  assert.throws(() => negotiate(local, peerOpen({}, { localAs: 4200000001 })), (e: unknown) => e instanceof BgpError && e.notifSubcode === 2);
  // a peer without AS4: as4 false
  const old = peerOpen();
  old.capabilities = old.capabilities.filter((c) => c.kind !== 'as4');
  assert.equal(negotiate(local, old).as4, false);
  assert.deepEqual(negotiate(local, old).encode.as4, false);
});

test('negotiation: families intersect, ADD-PATH per direction, GR, RR, ext msg', () => {
  const me: LocalConfig = {
    ...local,
    families: ['ipv4-unicast', 'ipv6-unicast'],
    addPath: { 'ipv4-unicast': 'receive', 'ipv6-unicast': 'both' },
    extendedMessage: true,
    gracefulRestart: { restartTime: 120 },
  };
  const peer = peerOpen({}, {
    families: ['ipv6-unicast', 'ipv4-unicast'],
    addPath: { 'ipv4-unicast': 'both', 'ipv6-unicast': 'receive' },
    extendedMessage: true,
    gracefulRestart: { restartTime: 60, restarting: true, forwarding: ['ipv4-unicast'] },
  });
  const n = negotiate(me, peer);
  assert.deepEqual(n.families, ['ipv4-unicast', 'ipv6-unicast']);
  assert.deepEqual(n.addPath, { receive: ['ipv4-unicast'], send: ['ipv6-unicast'] });
  assert.equal(n.extendedMessage, true);
  assert.equal(n.routeRefresh, true);
  assert.equal(n.enhancedRouteRefresh, true);
  assert.deepEqual(n.gracefulRestart, {
    restartTime: 60,
    restarting: true,
    notification: false,
    families: [{ family: 'ipv6-unicast', forwarding: false }, { family: 'ipv4-unicast', forwarding: true }],
  });
  // a peer with no MP capability means IPv4 unicast only (RFC 4760)
  const bare = peerOpen();
  bare.capabilities = [];
  assert.deepEqual(negotiate(me, bare).families, ['ipv4-unicast']);
});

test('hold timer expiry in OpenSent / OpenConfirm / Established sends 4/0', () => {
  for (const steps of [1, 2, 3]) {
    const fsm = new BgpFsm({ config: local });
    const evs: FsmEvent[] = [{ type: 'TcpConnectionConfirmed' }, { type: 'Message', message: peerOpen() }, { type: 'Message', message: { type: 'keepalive' } }];
    fsm.handle({ type: 'ManualStart' });
    for (const e of evs.slice(0, steps)) fsm.handle(e);
    const a = fsm.handle({ type: 'TimerExpired', timer: 'hold' });
    assert.deepEqual(sent(a), ['notification 4/0']);
    assert.equal(fsm.state, 'Idle');
  }
});

test('unexpected messages are FSM errors 5/1, 5/2, 5/3', () => {
  let fsm = new BgpFsm({ config: local });
  fsm.handle({ type: 'ManualStart' });
  fsm.handle({ type: 'TcpConnectionConfirmed' });
  assert.deepEqual(sent(fsm.handle({ type: 'Message', message: { type: 'keepalive' } })), ['notification 5/1']);
  fsm = new BgpFsm({ config: local });
  fsm.handle({ type: 'ManualStart' });
  fsm.handle({ type: 'TcpConnectionConfirmed' });
  fsm.handle({ type: 'Message', message: peerOpen() });
  assert.deepEqual(sent(fsm.handle({ type: 'Message', message: { type: 'update', attributes: {}, announce: [], withdraw: [] } })), ['notification 5/2']);
  fsm = toEstablished();
  assert.deepEqual(sent(fsm.handle({ type: 'Message', message: peerOpen() })), ['notification 5/3']);
});

test('NOTIFICATION received → Idle without answering; decode error → its NOTIFICATION', () => {
  let fsm = toEstablished();
  let a = fsm.handle({ type: 'Message', message: { type: 'notification', code: 6, subcode: 2, data: new Uint8Array(0), shutdownMessage: 'bye' } });
  assert.deepEqual(sent(a), []);
  assert.ok(a.some((x) => x.type === 'notificationReceived'));
  assert.match(fsm.lastErrorText!, /Administrative Shutdown.*bye/);
  fsm = toEstablished();
  a = fsm.handle({ type: 'DecodeError', error: new BgpError(3, 1, 'malformed') });
  assert.deepEqual(sent(a), ['notification 3/1']);
});

test('ManualStop sends Cease 6/2 with the shutdown message and does not auto-restart', () => {
  const fsm = toEstablished();
  const a = fsm.handle({ type: 'ManualStop', shutdownMessage: 'maintenance' });
  const s = a.find((x) => x.type === 'send');
  assert.ok(s && s.type === 'send' && s.notification?.shutdownMessage === 'maintenance');
  assert.deepEqual(timers(a), []);
  assert.equal(fsm.state, 'Idle');
  assert.deepEqual(fsm.handle({ type: 'TimerExpired', timer: 'idleHold' }), []);
});

test('passive mode waits in Active and never connects; TCP failure in Connect → Active, retry timer → Connect', () => {
  const p = new BgpFsm({ config: local, passive: true });
  const a = p.handle({ type: 'ManualStart' });
  assert.equal(p.state, 'Active');
  assert.ok(!a.some((x) => x.type === 'connect'));
  assert.ok(!p.handle({ type: 'TimerExpired', timer: 'connectRetry' }).some((x) => x.type === 'connect'));
  assert.deepEqual(sent(p.handle({ type: 'TcpConnectionConfirmed' })), ['open']);

  const f = new BgpFsm({ config: local, connectRetryTime: 5 });
  f.handle({ type: 'ManualStart' });
  f.handle({ type: 'TcpConnectionFails', detail: 'ECONNREFUSED' });
  assert.equal(f.state, 'Active');
  const r = f.handle({ type: 'TimerExpired', timer: 'connectRetry' });
  assert.equal(f.state, 'Connect');
  assert.ok(r.some((x) => x.type === 'connect'));
});

test('collision: higher BGP id keeps its own connection; equal ids → higher AS (RFC 6286); loser sends 6/7', () => {
  assert.equal(resolveCollision('10.0.0.2', '10.0.0.1', 1, 1), 'local');
  assert.equal(resolveCollision('10.0.0.1', '10.0.0.2', 1, 1), 'remote');
  assert.equal(resolveCollision('200.0.0.1', '10.0.0.2', 1, 1), 'local', 'compared as unsigned 32-bit');
  assert.equal(resolveCollision('10.0.0.1', '10.0.0.1', 65001, 65000), 'local');
  assert.equal(resolveCollision('10.0.0.1', '10.0.0.1', 65000, 65001), 'remote');
  const fsm = new BgpFsm({ config: local });
  fsm.handle({ type: 'ManualStart' });
  fsm.handle({ type: 'TcpConnectionConfirmed' });
  fsm.handle({ type: 'Message', message: peerOpen() });
  assert.deepEqual(sent(fsm.handle({ type: 'CollisionLost' })), ['notification 6/7']);
  assert.deepEqual(sent(toEstablished().handle({ type: 'CollisionLost' })), [], 'Established always wins');
});

test('max-prefix Cease 6/1 carries AFI, SAFI and the limit (RFC 4486)', () => {
  const fsm = toEstablished();
  const a = fsm.handle({ type: 'ManualStop', subcode: 1, data: maxPrefixData('ipv6-unicast', 1000) });
  const s = a.find((x) => x.type === 'send');
  assert.ok(s && s.type === 'send');
  const m = decodeMessage(s.bytes).message;
  assert.ok(m.type === 'notification' && m.code === 6 && m.subcode === 1);
  assert.deepEqual([...m.data], [0, 2, 1, 0, 0, 0x03, 0xe8]);
});
