/**
 * The CNI token refresher's pure logic (when to refresh, back-off, configuration, JWT claims) and
 * its state machine over fake I/O and a fake clock: refresh at a third of the lifetime left, keep a
 * valid token through errors, fall back to the mounted token on refusals, never log a token.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../lib/log.js';
import type { Logger } from '../../lib/log.js';
import { NodeConfigError } from '../../node/config.js';
import {
  adoptableExpiry,
  CniTokenError,
  CniTokenRefresher,
  DEFAULT_POLICY,
  isRefusal,
  jwtClaims,
  parseCniTokenConfig,
  refreshDueAt,
  retryDelayMs,
} from '../../node/cni-token.js';
import type { CniTokenDeps, IssuedToken } from '../../node/cni-token.js';

const H = 3600_000;
const T0 = Date.UTC(2026, 0, 1);

function capture(): { log: Logger; text: () => string } {
  const raw: string[] = [];
  const log = createLogger({ name: 'cni-token-test', level: 'debug', destination: { write: (s: string) => void raw.push(s) } });
  return { log, text: () => raw.join('') };
}
const messages = (c: ReturnType<typeof capture>, level?: number): string[] =>
  c
    .text()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { level: number; msg: string })
    .filter((l) => level === undefined || l.level === level)
    .map((l) => l.msg);
const WARN = 40;

function jwt(claims: Record<string, unknown>): string {
  const b = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b({ alg: 'RS256' })}.${b(claims)}.c2lnbmF0dXJlLXNpZ25hdHVyZQ`;
}

/** A fake API + files + clock around one refresher. */
function rig(opts: { fileToken?: string; policy?: Partial<typeof DEFAULT_POLICY> } = {}) {
  const clock = { now: T0 };
  let serial = 0;
  const replies: Array<IssuedToken | Error> = [];
  const c = capture();
  const st = {
    requests: 0,
    writes: [] as string[],
    mounted: 'mounted-token-0001' as string | undefined,
    writeFails: false,
    /** Default reply: a fresh 24 h token. */
    next(): IssuedToken {
      serial++;
      return { token: `issued-token-${String(serial).padStart(4, '0')}`, expiresAtMs: clock.now + 24 * H };
    },
  };
  const deps: CniTokenDeps = {
    request: async () => {
      st.requests++;
      const r = replies.shift() ?? st.next();
      if (r instanceof Error) throw r;
      return r;
    },
    mountedToken: () => st.mounted,
    write: (t) => {
      if (st.writeFails) throw new Error(`EIO writing kubeconfig`);
      st.writes.push(t);
    },
    log: c.log,
    now: () => clock.now,
  };
  if (opts.policy) deps.policy = opts.policy;
  if (opts.fileToken !== undefined) deps.fileToken = () => opts.fileToken;
  return { r: new CniTokenRefresher(deps), clock, replies, st, c };
}

const refused = (status: number): CniTokenError => new CniTokenError('CNI_TOKEN_REQUEST_FAILED', `TokenRequest: HTTP ${status}: serviceaccounts "tabby-cni-plugin" is forbidden`, { status });
const transient = (status?: number): CniTokenError =>
  new CniTokenError('CNI_TOKEN_REQUEST_FAILED', status ? `TokenRequest: HTTP ${status}` : 'TokenRequest: connect ECONNREFUSED', status === undefined ? {} : { status });

test('refreshDueAt: with a third of the lifetime left; retryDelayMs doubles up to the cap', () => {
  assert.equal(refreshDueAt(0, 24 * H), 16 * H);
  assert.equal(refreshDueAt(10 * H, 13 * H), 12 * H);
  assert.equal(refreshDueAt(5, 5), 5, 'an already expired token is due at once');
  assert.equal(refreshDueAt(10, 4), 4);
  const p = { minRetryMs: 5000, maxRetryMs: 300_000 };
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8, 100].map((n) => retryDelayMs(n, p)), [5000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000]);
  assert.equal(retryDelayMs(0, p), 5000);
  assert.deepEqual([403, 404, 405].map(isRefusal), [true, true, true]);
  assert.deepEqual([undefined, 401, 409, 429, 500, 503].map(isRefusal), [false, false, false, false, false, false]);
});

test('parseCniTokenConfig: CALICO_MANAGE_CNI, expiration and check interval from the environment', () => {
  const d = parseCniTokenConfig({});
  assert.equal(d.enabled, false);
  assert.deepEqual(d.policy, DEFAULT_POLICY);
  assert.equal(d.policy.expirationSec, 86400);
  assert.equal(d.policy.checkIntervalMs, 60_000);
  const c = parseCniTokenConfig({ CALICO_MANAGE_CNI: 'true', TABBY_CNI_TOKEN_EXPIRATION: '2h', TABBY_CNI_TOKEN_CHECK_INTERVAL: '30' });
  assert.equal(c.enabled, true);
  assert.equal(c.policy.expirationSec, 7200);
  assert.equal(c.policy.checkIntervalMs, 30_000);
  assert.equal(parseCniTokenConfig({ TABBY_CNI_TOKEN_EXPIRATION: '600' }).policy.expirationSec, 600);
  for (const [k, v] of [
    ['TABBY_CNI_TOKEN_EXPIRATION', '599'],
    ['TABBY_CNI_TOKEN_EXPIRATION', '5m'],
    ['TABBY_CNI_TOKEN_EXPIRATION', 'soon'],
    ['TABBY_CNI_TOKEN_CHECK_INTERVAL', '500ms'],
    ['CALICO_MANAGE_CNI', 'maybe'],
  ] as const) {
    assert.throws(
      () => parseCniTokenConfig({ [k]: v }),
      (e: unknown) => e instanceof NodeConfigError && e.variable === k,
      `${k}=${v}`,
    );
  }
});

test('jwtClaims / adoptableExpiry: only a still valid tabby-cni-plugin JWT is taken over', () => {
  const sub = 'system:serviceaccount:kube-system:tabby-cni-plugin';
  const exp = T0 / 1000 + 3600;
  assert.deepEqual(jwtClaims(jwt({ exp, sub })), { exp, sub });
  assert.equal(jwtClaims('not-a-jwt'), undefined);
  assert.equal(jwtClaims('a.%%%.c'), undefined);
  assert.equal(adoptableExpiry(jwt({ exp, sub }), T0), exp * 1000);
  assert.equal(adoptableExpiry(jwt({ exp, sub }), exp * 1000), undefined, 'expired');
  assert.equal(adoptableExpiry(jwt({ exp, sub: 'system:serviceaccount:kube-system:tabby-node' }), T0), undefined, 'the agent\'s own token');
  assert.equal(adoptableExpiry(jwt({ sub }), T0), undefined, 'no exp');
  assert.equal(adoptableExpiry(undefined, T0), undefined);
});

test('refresher: writes a token at once, refreshes when a third of its lifetime is left, sleeps at most the check interval', async () => {
  const { r, clock, st, replies } = rig();
  assert.equal(r.status().source, 'none');
  let wait = await r.tick();
  assert.equal(st.requests, 1);
  assert.deepEqual(st.writes, ['issued-token-0001']);
  assert.equal(r.status().source, 'token-request');
  assert.equal(r.status().expiresAtMs, T0 + 24 * H);
  assert.equal(r.status().nextRequestAtMs, T0 + 16 * H);
  assert.equal(wait, DEFAULT_POLICY.checkIntervalMs);

  // Just before the refresh point nothing happens; the last sleep ends exactly at it.
  clock.now = T0 + 16 * H - 10_000;
  wait = await r.tick();
  assert.equal(st.requests, 1);
  assert.equal(wait, 10_000);
  clock.now += wait;
  await r.tick();
  assert.equal(st.requests, 2);
  assert.deepEqual(st.writes, ['issued-token-0001', 'issued-token-0002']);
  assert.equal(r.status().nextRequestAtMs, clock.now + 16 * H);
  assert.equal(r.status().refreshes, 2);

  // The server may issue a shorter token than asked for: its expiry counts.
  clock.now = r.status().nextRequestAtMs;
  const short = { token: 'issued-short-token', expiresAtMs: clock.now + 3 * H };
  replies.push(short);
  await r.tick();
  assert.equal(r.status().nextRequestAtMs, clock.now + 2 * H);
});


test('refresher: transient errors keep the valid token in place and retry with a doubling back-off', async () => {
  const { r, clock, st, replies, c } = rig();
  await r.tick();
  clock.now = r.status().nextRequestAtMs;
  replies.push(transient(503), transient(), transient(500));
  const due: number[] = [];
  for (let i = 0; i < 3; i++) {
    const at = clock.now;
    await r.tick();
    due.push(r.status().nextRequestAtMs - at);
    clock.now = r.status().nextRequestAtMs;
  }
  assert.deepEqual(due, [5000, 10_000, 20_000]);
  assert.equal(r.status().failures, 3);
  assert.deepEqual(st.writes, ['issued-token-0001'], 'the still valid token is never replaced by the mounted one');
  assert.equal(r.status().source, 'token-request');
  await r.tick();
  assert.equal(r.status().failures, 0);
  assert.deepEqual(st.writes, ['issued-token-0001', 'issued-token-0002']);
  assert.equal(messages(c, WARN).filter((m) => m.includes('the current token stays in use')).length, 3);
});

test('refresher: errors with no valid token left fall back to the mounted token', async () => {
  // Nothing valid at start (no install-cni token to take over).
  const a = rig();
  a.replies.push(transient(500));
  await a.r.tick();
  assert.deepEqual(a.st.writes, ['mounted-token-0001']);
  assert.equal(a.r.status().source, 'mounted');

  // A token that expires while the API keeps failing.
  const b = rig();
  b.replies.push({ token: 'issued-brief-token', expiresAtMs: T0 + H });
  await b.r.tick();
  b.clock.now = T0 + H; // expired
  b.replies.push(transient(500));
  await b.r.tick();
  assert.deepEqual(b.st.writes, ['issued-brief-token', 'mounted-token-0001']);
  assert.equal(b.r.status().source, 'mounted');
  // It recovers on the next successful request.
  b.clock.now = b.r.status().nextRequestAtMs;
  await b.r.tick();
  assert.equal(b.r.status().source, 'token-request');
  assert.deepEqual(b.st.writes.slice(2), ['issued-token-0001']);
});

test('refresher: a refused TokenRequest (403/404) falls back to the mounted token, follows its rotation, and returns to TokenRequest', async () => {
  for (const status of [403, 404]) {
    const { r, clock, st, replies, c } = rig();
    replies.push(refused(status), refused(status));
    let wait = await r.tick();
    assert.equal(r.status().source, 'mounted');
    assert.deepEqual(st.writes, ['mounted-token-0001']);
    assert.equal(wait, 5000, 'first retry after the minimum delay');
    const warns = messages(c, WARN);
    assert.equal(warns.length, 1);
    assert.match(warns[0]!, new RegExp(`refused \\(HTTP ${status}\\).*mounted token.*serviceaccounts/token`));

    // Still refused: no second warning, file untouched while the mounted token is the same.
    clock.now += wait;
    wait = await r.tick();
    assert.equal(st.requests, 2);
    assert.equal(messages(c, WARN).length, 1);
    assert.deepEqual(st.writes, ['mounted-token-0001']);
    assert.equal(wait, 10_000);

    // The kubelet rotates the mounted token: the kubeconfig follows at the next step.
    st.mounted = 'mounted-token-0002';
    clock.now += 1000;
    await r.tick();
    assert.equal(st.requests, 2, 'not yet time to ask again');
    assert.deepEqual(st.writes, ['mounted-token-0001', 'mounted-token-0002']);

    // RBAC fixed: the next attempt gets a tabby-cni-plugin token again.
    clock.now = r.status().nextRequestAtMs;
    await r.tick();
    assert.equal(r.status().source, 'token-request');
    assert.deepEqual(st.writes.slice(-1), ['issued-token-0001']);
    assert.ok(messages(c).some((m) => m.includes('TokenRequest works again')));
  }
});

test('refresher: refused while a valid token is in place: it stays until it expires, then the mounted token', async () => {
  const { r, clock, st, replies, c } = rig();
  await r.tick();
  clock.now = r.status().nextRequestAtMs;
  for (let i = 0; i < 6; i++) replies.push(refused(403));
  await r.tick();
  assert.deepEqual(st.writes, ['issued-token-0001']);
  assert.equal(r.status().source, 'token-request');
  const warns = messages(c, WARN);
  assert.equal(warns.length, 1);
  assert.match(warns[0]!, /refused \(HTTP 403\): the current token stays in use until it expires, then .*mounted token/);
  // Still refused when the token has expired: now the mounted token, and no second refusal warning.
  clock.now = T0 + 24 * H;
  await r.tick();
  assert.deepEqual(st.writes, ['issued-token-0001', 'mounted-token-0001']);
  assert.equal(r.status().source, 'mounted');
  assert.equal(messages(c, WARN).length, 1);
  assert.ok(messages(c).includes('CNI kubeconfig now uses the mounted service-account token'));
});

test('refresher: a token that expires between two backed-off attempts is replaced by the mounted token without waiting for the retry', async () => {
  const { r, clock, st, replies } = rig({ policy: { minRetryMs: 2 * H, maxRetryMs: 2 * H } });
  replies.push({ token: 'issued-brief-token', expiresAtMs: T0 + 3 * H }, transient(503));
  await r.tick();
  clock.now = r.status().nextRequestAtMs; // T0 + 2 h
  await r.tick(); // fails; next attempt at T0 + 4 h, after the expiry
  clock.now = T0 + 3 * H - 30_000;
  assert.equal(await r.tick(), 30_000, 'the sleep ends at the expiry');
  clock.now = T0 + 3 * H;
  await r.tick();
  assert.equal(st.requests, 2, 'no extra request');
  assert.deepEqual(st.writes, ['issued-brief-token', 'mounted-token-0001']);
  assert.equal(r.status().source, 'mounted');
});

test('refresher: while falling back the wait never exceeds the check interval and a missing mounted token is reported once', async () => {
  const { r, clock, st, replies, c } = rig({ policy: { checkIntervalMs: 2000, minRetryMs: 60_000, maxRetryMs: 60_000 } });
  st.mounted = undefined;
  replies.push(refused(403));
  const wait = await r.tick();
  assert.equal(wait, 2000);
  assert.deepEqual(st.writes, []);
  clock.now += wait;
  await r.tick();
  assert.equal(messages(c, WARN).filter((m) => m.includes('no mounted service-account token')).length, 1);
  st.mounted = 'mounted-token-0003';
  clock.now += 2000;
  await r.tick();
  assert.deepEqual(st.writes, ['mounted-token-0003']);
});

test('refresher: a failed kubeconfig write keeps the old file and retries', async () => {
  const { r, clock, st, c } = rig();
  await r.tick();
  clock.now = r.status().nextRequestAtMs;
  st.writeFails = true;
  await r.tick();
  assert.deepEqual(st.writes, ['issued-token-0001']);
  assert.equal(r.status().source, 'token-request', 'the token in the file is still the old, valid one');
  assert.equal(r.status().failures, 1);
  assert.ok(messages(c, WARN).some((m) => m.includes('cannot write the CNI kubeconfig')));
  st.writeFails = false;
  clock.now = r.status().nextRequestAtMs;
  await r.tick();
  assert.deepEqual(st.writes, ['issued-token-0001', 'issued-token-0003'], 'the token minted for the failed write is never used');
});

test('refresher: a valid tabby-cni-plugin token from install-cni survives a failing first request', async () => {
  const fileToken = jwt({ exp: T0 / 1000 + 20 * 3600, sub: 'system:serviceaccount:kube-system:tabby-cni-plugin' });
  const { r, st, replies } = rig({ fileToken });
  replies.push(transient(500));
  await r.tick();
  assert.deepEqual(st.writes, [], 'kept, not replaced by the (less privileged) mounted token');
  assert.equal(r.status().source, 'token-request');
  assert.equal(r.status().expiresAtMs, T0 + 20 * H);
  // The agent's own token in the file is not adopted: a failure puts the mounted token there.
  const other = rig({ fileToken: jwt({ exp: T0 / 1000 + 3600, sub: 'system:serviceaccount:kube-system:tabby-node' }) });
  other.replies.push(transient(500));
  await other.r.tick();
  assert.deepEqual(other.st.writes, ['mounted-token-0001']);
});

test('refresher: a token that expires at once is not re-requested in a tight loop', async () => {
  const { r, clock, replies } = rig();
  replies.push({ token: 'issued-stale-token', expiresAtMs: T0 - 1000 });
  await r.tick();
  assert.equal(r.status().nextRequestAtMs, clock.now + DEFAULT_POLICY.minRetryMs);
});

test('refresher: no token ever reaches the log, even when an error message echoes one', async () => {
  const { r, clock, st, replies, c } = rig();
  await r.tick();
  clock.now = r.status().nextRequestAtMs;
  replies.push(new Error('request with Authorization: Bearer issued-token-0001 failed'), refused(403));
  await r.tick();
  clock.now = r.status().nextRequestAtMs;
  await r.tick();
  st.mounted = 'mounted-token-0009';
  clock.now += 60_000;
  await r.tick();
  clock.now = r.status().nextRequestAtMs;
  await r.tick();
  const text = c.text();
  assert.ok(text.length > 0 && messages(c).length >= 4, 'the scenario logged');
  assert.ok(text.includes('[redacted]'), 'the echoed token was scrubbed');
  for (const t of [...st.writes, 'mounted-token-0001']) assert.equal(text.includes(t), false, `token ${t.slice(0, 6)}… in the log`);
});

test('refresher: start() runs the loop on the injected clock and stop() ends it', async () => {
  const clock = { now: T0 };
  let n = 0;
  const writes: string[] = [];
  let stopAfter: (() => void) | undefined;
  const done = new Promise<void>((resolve) => (stopAfter = resolve));
  const r = new CniTokenRefresher({
    request: async () => ({ token: `loop-token-${++n}`, expiresAtMs: clock.now + 3 * H }),
    mountedToken: () => undefined,
    write: (t) => {
      writes.push(t);
      if (writes.length === 4) stopAfter!();
    },
    log: capture().log,
    now: () => clock.now,
    sleep: async (ms) => {
      clock.now += ms;
      await new Promise((res) => setImmediate(res));
    },
  });
  r.start();
  await done;
  await r.stop();
  assert.deepEqual(writes, ['loop-token-1', 'loop-token-2', 'loop-token-3', 'loop-token-4']);
  assert.equal(clock.now, T0 + 3 * 2 * H, 'each refresh came when a third of the 3 h lifetime was left');
  const after = n;
  await new Promise((res) => setImmediate(res));
  assert.equal(n, after, 'no request after stop()');
});
