import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type FsProbe, fallbackReason, requestRunDir } from '../../cni/shim/decide.js';
import { type ShimRequest, SHIM_PROTOCOL, ShimProtocolError, decodeReply, decodeRequest, encodeReply, encodeRequest } from '../../cni/shim/protocol.js';
import { REPO_FALLBACK, shimScript } from '../../cni/shim/script.js';
import { ROOT } from './helpers.js';

const req = (over: Partial<ShimRequest> = {}): ShimRequest => ({
  env: { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/var/run/netns/p', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin', ...over.env },
  meta: { self: '/opt/cni/bin/tabby', netns: '4:4026532', ...over.meta },
  stdin: over.stdin ?? JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'tabby', ipam: { type: 'host-local' } }),
});

test('request round trip: env, meta and stdin bytes (incl. newlines and unicode) survive', () => {
  const r = req({ stdin: '{"cniVersion":"1.0.0",\n "name":"né","type":"tabby"}\n\n' });
  const back = decodeRequest(encodeRequest(r));
  assert.deepEqual(back, r);
});

test('request: what the sh shim writes decodes (header, empty line, config + newline)', () => {
  const text = `${SHIM_PROTOCOL}\nM self=/x/tabby\nM netns=\nE CNI_COMMAND=DEL\nE CNI_ARGS=K8S_POD_NAME=a=b;X=1\nE PATH=/usr/bin\n\n{"a":1}\n`;
  const r = decodeRequest(Buffer.from(text));
  assert.deepEqual(r.env, { CNI_COMMAND: 'DEL', CNI_ARGS: 'K8S_POD_NAME=a=b;X=1', PATH: '/usr/bin' });
  assert.deepEqual(r.meta, { self: '/x/tabby', netns: '' });
  assert.equal(r.stdin, '{"a":1}\n');
});

test('request: variables the plugin does not honour are dropped, not trusted', () => {
  const r = decodeRequest(Buffer.from(`${SHIM_PROTOCOL}\nE LD_PRELOAD=/evil.so\nE NODE_OPTIONS=--x\nE NODENAME=n1\nM other=1\n\n{}`));
  assert.deepEqual(r.env, { NODENAME: 'n1' });
  assert.deepEqual(r.meta, {});
});

test('request: another protocol version and garbage are typed errors', () => {
  assert.throws(() => decodeRequest(Buffer.from('TABBYCNI/2\n\n{}')), (e: unknown) => e instanceof ShimProtocolError && e.code === 'ShimVersion');
  assert.throws(() => decodeRequest(Buffer.from('GET / HTTP/1.1\n\n')), (e: unknown) => e instanceof ShimProtocolError && e.code === 'ShimProtocol');
  assert.throws(() => decodeRequest(Buffer.from(`${SHIM_PROTOCOL}\nE CNI_COMMAND=ADD`)), (e: unknown) => e instanceof ShimProtocolError && /inside its header/.test(e.message));
  assert.throws(() => decodeRequest(Buffer.from(`${SHIM_PROTOCOL}\nX A=1\n\n`)), ShimProtocolError);
  assert.throws(() => decodeRequest(Buffer.from(`${SHIM_PROTOCOL}\nE =1\n\n`)), ShimProtocolError);
  assert.throws(() => encodeRequest({ env: { CNI_ARGS: 'a\nb' }, meta: {}, stdin: '' }), ShimProtocolError);
});

test('reply: exit code line then stdout; fallback; anything else reads as fallback', () => {
  const out = '{"cniVersion":"1.0.0","code":4,"msg":"x"}\n';
  assert.equal(encodeReply({ kind: 'result', code: 1, stdout: out }), `1\n${out}`);
  assert.deepEqual(decodeReply(encodeReply({ kind: 'result', code: 1, stdout: out })), { kind: 'result', code: 1, stdout: out });
  assert.deepEqual(decodeReply('0\n'), { kind: 'result', code: 0, stdout: '' });
  assert.deepEqual(decodeReply('0'), { kind: 'result', code: 0, stdout: '' });
  assert.equal(encodeReply({ kind: 'fallback', reason: 'a\nb' }), 'fallback a b\n');
  assert.deepEqual(decodeReply('fallback no netns\n'), { kind: 'fallback', reason: 'no netns' });
  assert.deepEqual(decodeReply(''), { kind: 'fallback', reason: 'no reply' });
  assert.deepEqual(decodeReply('HTTP/1.1 400\n'), { kind: 'fallback', reason: 'unreadable reply' });
});

const probe = (over: Partial<FsProbe> = {}): FsProbe => ({
  identity: () => '4:4026532',
  exists: () => true,
  findPlugin: () => true,
  ...over,
});

test('fallback decision: served when the server sees what the runtime meant', () => {
  assert.equal(fallbackReason(req(), '/var/run/tabby', probe()), undefined);
  assert.equal(fallbackReason(req({ env: { CNI_COMMAND: 'DEL' }, meta: { netns: '' } }), '/var/run/tabby/', probe({ identity: () => undefined })), undefined, 'DEL needs no netns');
  assert.equal(fallbackReason(req({ stdin: 'not json' }), '/var/run/tabby', probe()), undefined, 'bad config: the handlers answer 6 as the Node plugin does');
});

test('fallback decision: each reason', () => {
  const cases: Array<[ShimRequest, FsProbe, RegExp]> = [
    [req({ env: { TABBY_CNI_SERVER: 'off' } }), probe(), /TABBY_CNI_SERVER/],
    [req({ env: { TABBY_IPAM_TEST_CRASH: 'after-handle-write' } }), probe(), /TEST_CRASH/],
    [req({ stdin: JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'tabby', run_dir: '/tmp/other' }) }), probe(), /run_dir \/tmp\/other/],
    [req({ env: { TABBY_RUN_DIR: '/tmp/other' } }), probe(), /run_dir/],
    [req({ meta: { netns: '' } }), probe(), /could not stat/],
    [req(), probe({ identity: () => undefined }), /not visible/],
    [req({ env: { CNI_COMMAND: 'CHECK' } }), probe({ identity: () => '4:1' }), /another file/],
    [req(), probe({ findPlugin: () => false }), /IPAM plugin host-local/],
    [req({ stdin: JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'tabby', kubernetes: { kubeconfig: '/etc/cni/net.d/kc' } }) }), probe({ exists: () => false }), /\/etc\/cni\/net.d\/kc is not visible/],
  ];
  for (const [r, p, want] of cases) assert.match(fallbackReason(r, '/var/run/tabby', p) ?? '(served)', want);
});

test('request run dir: config run_dir, else TABBY_RUN_DIR, else the default', () => {
  assert.equal(requestRunDir({ run_dir: '/a' }, { TABBY_RUN_DIR: '/b' }), '/a');
  assert.equal(requestRunDir({}, { TABBY_RUN_DIR: '/b' }), '/b');
  assert.equal(requestRunDir(undefined, {}), '/var/run/tabby');
});

test('bin/tabby is the generated shim (regenerate with shimScript(REPO_FALLBACK) when this fails)', () => {
  assert.equal(readFileSync(join(ROOT, 'bin/tabby'), 'utf8'), shimScript({ fallback: REPO_FALLBACK }));
});
