/**
 * lib/linelog.ts (createLineLogger) writes the same lines as the pino logger of createLogger: shape,
 * field order, levels, child bindings, error serialization and redaction of secrets.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLineLogger, createLogger, silentLogger, type Logger } from '../../lib/log.js';

function capture(mk: typeof createLogger | typeof createLineLogger, level = 'debug'): { log: Logger; lines: () => string[] } {
  const out: string[] = [];
  const log = mk({ name: 'cmp', level, destination: { write: (s: string) => void out.push(s) } });
  // time and stack differ between the two runs; everything else must not
  return { log, lines: () => out.join('').split('\n').filter(Boolean).map((l) => l.replace(/"time":\d+/, '"time":0').replace(/"stack":"(?:[^"\\]|\\.)*"/g, '"stack":"S"')) };
}

function script(log: Logger): void {
  log.info('hello');
  log.info({ a: 1, password: 'p', nested: { token: 't', md5: 'm', authorization: 'a', deep: { password: 'q', ok: 1 } } }, 'with secrets');
  log.warn({ err: new Error('boom') }, 'failed');
  log.error(new Error('direct'));
  log.debug({ n: 1, list: [1, 'two'], nil: null });
  log.trace('not written at debug');
  const child = log.child({ peer: '192.0.2.1' });
  child.info({ x: 2 }, 'child %s %d', 'arg', 7);
  child.child({ session: 3 }).warn('grandchild');
  log.fatal({ token: 'secret-token' }, 'fatal');
}

test('createLineLogger writes the lines pino writes', () => {
  const a = capture(createLogger);
  const b = capture(createLineLogger);
  script(a.log);
  script(b.log);
  assert.equal(a.lines().length, 8);
  assert.deepEqual(b.lines(), a.lines());
  assert.ok(!b.lines().join('').includes('secret-token') && !b.lines().join('').includes('"q"'), 'secrets are redacted');
});

test('createLineLogger: levels, silent, unknown level, no mutation of the logged object', () => {
  const b = capture(createLineLogger, 'warn');
  const obj = { password: 'p', inner: { token: 't' } };
  b.log.info(obj, 'dropped');
  b.log.warn(obj, 'kept');
  assert.deepEqual(obj, { password: 'p', inner: { token: 't' } });
  assert.equal(b.lines().length, 1);
  assert.equal(b.log.level, 'warn');
  assert.equal(b.log.isLevelEnabled('error'), true);
  assert.equal(b.log.isLevelEnabled('info'), false);
  assert.throws(() => createLineLogger({ name: 'x', level: 'loud' }), /unknown level/);
  const s = silentLogger();
  s.fatal('nothing');
  assert.equal(s.level, 'silent');
});

test('createLineLogger: a cyclic object is written, not thrown', () => {
  const b = capture(createLineLogger);
  const o: Record<string, unknown> = { k: 1 };
  o.self = o;
  b.log.info({ o }, 'cycle');
  assert.match(b.lines()[0]!, /"self":"\[Circular\]"/);
});
