import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { silentLogger } from '../../lib/log.js';
import {
  apiServerUrl,
  DEFAULT_NETWORK_CONFIG,
  installCni,
  isTabbyConflist,
  renderConflist,
  resolveInstallCniOptions,
  resolveMtu,
  RUNTIME_DIR_NAME,
} from '../../node/install-cni.js';
import type { InstallCniOptions } from '../../node/install-cni.js';
import { runInstallCni } from '../../node/install-cni-main.js';

const CA = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n';

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'tabby-install-cni-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A fake image app dir: bundles that print their name and arguments, a package and a module. */
function fakeApp(dir: string, tag = 'v1'): string {
  const app = join(dir, 'app');
  mkdirSync(join(app, 'dist/bin'), { recursive: true });
  mkdirSync(join(app, 'node_modules/dep'), { recursive: true });
  mkdirSync(join(app, 'dist/bin/chunks'), { recursive: true });
  // Entry bundles import a shared chunk, as the code-splitting build makes them.
  writeFileSync(join(app, 'dist/bin/chunks/chunk-ABC.mjs'), `export const tag = ${JSON.stringify(tag)};\n`);
  writeFileSync(join(app, 'dist/bin/chunks/chunk-ABC.mjs.map'), '{}');
  for (const name of ['tabby', 'tabby-ipam']) {
    writeFileSync(
      join(app, 'dist/bin', `${name}.mjs`),
      `import { tag } from './chunks/chunk-ABC.mjs';\nconsole.log(${JSON.stringify(`${name}:`)} + tag, JSON.stringify(process.argv.slice(2)));\n`,
    );
  }
  writeFileSync(join(app, 'package.json'), '{"name":"tabby","version":"0.1.0","type":"module"}\n');
  writeFileSync(join(app, 'node_modules/dep/index.js'), 'module.exports = 1;\n');
  return app;
}

function options(dir: string, over: Partial<InstallCniOptions> = {}): InstallCniOptions {
  return {
    hostRoot: join(dir, 'host'),
    cniBinDir: '/opt/cni/bin',
    cniNetDir: '/etc/cni/net.d',
    confName: '10-tabby.conflist',
    networkConfig: DEFAULT_NETWORK_CONFIG,
    nodeName: 'node-a',
    mtu: 1450,
    appDir: fakeApp(dir),
    nodeBinary: undefined, // launchers use node from PATH: this test's own node
    copyNodeModules: true,
    extraPluginsDir: undefined,
    skipBinaries: false,
    cluster: { server: 'https://10.96.0.1:443', caPem: CA, skipTlsVerify: false, token: 'secret-token' },
    force: false,
    log: silentLogger(),
    ...over,
  };
}

const mode = (p: string): number => statSync(p).mode & 0o777;

test('installs launchers, runtime, conflist and a 0600 kubeconfig; the launcher runs the bundle', (t) => {
  const dir = tempDir(t);
  const o = options(dir);
  const r = installCni(o);
  const bin = join(o.hostRoot, 'opt/cni/bin');
  const net = join(o.hostRoot, 'etc/cni/net.d');
  assert.deepEqual(r.binaries, ['/opt/cni/bin/tabby', '/opt/cni/bin/tabby-ipam']);
  assert.equal(r.runtimeCopied, true);
  assert.equal(mode(join(bin, 'tabby')), 0o755);
  assert.ok(existsSync(join(o.hostRoot, r.runtimeDir!, 'node_modules/dep/index.js')));
  assert.ok(existsSync(join(o.hostRoot, r.runtimeDir!, 'dist/bin/chunks/chunk-ABC.mjs')));
  assert.equal(existsSync(join(o.hostRoot, r.runtimeDir!, 'dist/bin/chunks/chunk-ABC.mjs.map')), false, 'source maps stay in the image');
  const out = execFileSync(join(bin, 'tabby'), ['a', 'b c'], { encoding: 'utf8' });
  assert.equal(out.trim(), 'tabby:v1 ["a","b c"]');
  assert.match(execFileSync(join(bin, 'tabby-ipam'), [], { encoding: 'utf8' }), /^tabby-ipam:v1/);

  const conf = JSON.parse(readFileSync(join(net, '10-tabby.conflist'), 'utf8'));
  assert.deepEqual(conf.plugins.map((p: { type: string }) => p.type), ['tabby', 'portmap']);
  assert.equal(conf.plugins[0].ipam.type, 'tabby-ipam');
  assert.equal(conf.plugins[0].nodename, 'node-a');
  assert.equal(conf.plugins[0].mtu, 1450);
  assert.equal(conf.plugins[0].kubernetes.kubeconfig, '/etc/cni/net.d/tabby-kubeconfig');
  assert.equal(mode(join(net, '10-tabby.conflist')), 0o644);

  const kcPath = join(net, 'tabby-kubeconfig');
  assert.equal(mode(kcPath), 0o600);
  const kc = parse(readFileSync(kcPath, 'utf8'));
  assert.equal(kc.clusters[0].cluster.server, 'https://10.96.0.1:443');
  assert.equal(Buffer.from(kc.clusters[0].cluster['certificate-authority-data'], 'base64').toString(), CA);
  assert.equal(kc.users[0].user.token, 'secret-token');
  assert.equal(kc['current-context'], 'tabby-context');
  // No temp files left behind.
  for (const d of [bin, net, join(bin, RUNTIME_DIR_NAME)]) assert.deepEqual(readdirSync(d).filter((n) => n.includes('tmp')), []);
});

test('a copied node binary is what the launcher executes', (t) => {
  const dir = tempDir(t);
  const fakeNode = join(dir, 'fake-node');
  writeFileSync(fakeNode, '#!/bin/sh\necho "fake-node $*"\n', { mode: 0o755 });
  const o = options(dir, { nodeBinary: fakeNode });
  const r = installCni(o);
  assert.equal(mode(join(o.hostRoot, r.runtimeDir!, 'node')), 0o755);
  const out = execFileSync(join(o.hostRoot, 'opt/cni/bin/tabby'), ['ADD'], { encoding: 'utf8' }).trim();
  assert.equal(out, `fake-node ${join(o.hostRoot, 'opt/cni/bin', RUNTIME_DIR_NAME, r.runtimeDir!.split('/').pop()!)}/dist/bin/tabby.mjs ADD`);
});

test('supplies portmap/loopback when the host has none, never replaces the host\'s own', (t) => {
  const dir = tempDir(t);
  const extra = join(dir, 'usr-lib-cni');
  mkdirSync(extra);
  writeFileSync(join(extra, 'portmap'), 'image-portmap');
  writeFileSync(join(extra, 'loopback'), 'image-loopback');
  const o = options(dir, { extraPluginsDir: extra });
  const bin = join(o.hostRoot, 'opt/cni/bin');
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'loopback'), 'host-loopback', { mode: 0o755 });
  const r = installCni(o);
  assert.deepEqual(r.binaries, ['/opt/cni/bin/tabby', '/opt/cni/bin/tabby-ipam', '/opt/cni/bin/portmap']);
  assert.equal(readFileSync(join(bin, 'portmap'), 'utf8'), 'image-portmap');
  assert.equal(mode(join(bin, 'portmap')), 0o755);
  assert.equal(readFileSync(join(bin, 'loopback'), 'utf8'), 'host-loopback');
});

test('re-running is idempotent; a new build replaces the runtime and removes the old one', (t) => {
  const dir = tempDir(t);
  const o = options(dir);
  const first = installCni(o);
  const again = installCni(o);
  assert.equal(again.runtimeDir, first.runtimeDir);
  assert.equal(again.runtimeCopied, false);
  fakeApp(dir, 'v2'); // only the chunk's content changes
  const next = installCni(o);
  assert.notEqual(next.runtimeDir, first.runtimeDir);
  assert.equal(existsSync(join(o.hostRoot, first.runtimeDir!)), false);
  assert.deepEqual(readdirSync(join(o.hostRoot, 'opt/cni/bin', RUNTIME_DIR_NAME)), [next.runtimeDir!.split('/').pop()]);
  assert.match(execFileSync(join(o.hostRoot, 'opt/cni/bin/tabby'), { encoding: 'utf8' }), /^tabby:v2/);
});

test('refuses to overwrite a foreign conflist and changes nothing; --force replaces it', (t) => {
  const dir = tempDir(t);
  const o = options(dir);
  const net = join(o.hostRoot, 'etc/cni/net.d');
  mkdirSync(net, { recursive: true });
  const foreign = '{"name":"other","cniVersion":"1.0.0","plugins":[{"type":"bridge"}]}';
  writeFileSync(join(net, '10-tabby.conflist'), foreign);
  assert.throws(() => installCni(o), (err: Error & { code?: string }) => err.code === 'INSTALL_CNI_FOREIGN_CONFIG');
  assert.equal(readFileSync(join(net, '10-tabby.conflist'), 'utf8'), foreign);
  assert.equal(existsSync(join(o.hostRoot, 'opt/cni/bin/tabby')), false);
  assert.equal(existsSync(join(net, 'tabby-kubeconfig')), false);
  // Garbage is foreign too.
  writeFileSync(join(net, '10-tabby.conflist'), 'not json');
  assert.throws(() => installCni(o), /not written by tabby/);

  installCni({ ...o, force: true });
  assert.equal(isTabbyConflist(readFileSync(join(net, '10-tabby.conflist'), 'utf8')), true);
});

test('replaces its own conflist without --force (new node name / MTU)', (t) => {
  const dir = tempDir(t);
  const o = options(dir);
  installCni(o);
  installCni({ ...o, nodeName: 'node-b', mtu: 0 });
  const conf = JSON.parse(readFileSync(join(o.hostRoot, 'etc/cni/net.d/10-tabby.conflist'), 'utf8'));
  assert.equal(conf.plugins[0].nodename, 'node-b');
  assert.equal(conf.plugins[0].mtu, 0);
});

test('SKIP_CNI_BINARIES leaves the bin dir alone; without a cluster no kubeconfig is written', (t) => {
  const dir = tempDir(t);
  const o = options(dir, { skipBinaries: true, cluster: undefined });
  const r = installCni(o);
  assert.deepEqual(r.binaries, []);
  assert.equal(r.kubeconfig, undefined);
  assert.equal(existsSync(join(o.hostRoot, 'opt/cni/bin')), false);
  assert.equal(existsSync(join(o.hostRoot, 'etc/cni/net.d/tabby-kubeconfig')), false);
  assert.ok(existsSync(join(o.hostRoot, 'etc/cni/net.d/10-tabby.conflist')));
});

test('a missing bundle is an error that says to build', (t) => {
  const dir = tempDir(t);
  const o = options(dir);
  rmSync(join(o.appDir, 'dist/bin/tabby-ipam.mjs'));
  assert.throws(() => installCni(o), (err: Error & { code?: string; hint?: string }) => err.code === 'INSTALL_CNI_NO_BUNDLE' && /npm run build/.test(err.hint ?? ''));
  assert.equal(existsSync(join(o.hostRoot, 'etc/cni/net.d/10-tabby.conflist')), false);
});

test('kubeconfig without a CA needs SKIP_TLS_VERIFY', (t) => {
  const dir = tempDir(t);
  const o = options(dir, { cluster: { server: 'https://x:6443', caPem: undefined, skipTlsVerify: false, token: 't' } });
  assert.throws(() => installCni(o), (err: Error & { code?: string }) => err.code === 'INSTALL_CNI_NO_CA');
  installCni({ ...o, cluster: { server: 'https://x:6443', caPem: undefined, skipTlsVerify: true, token: 't' } });
  const kc = parse(readFileSync(join(o.hostRoot, 'etc/cni/net.d/tabby-kubeconfig'), 'utf8'));
  assert.equal(kc.clusters[0].cluster['insecure-skip-tls-verify'], true);
});

test('resolveMtu: CNI_MTU wins (0 = auto), else the MTU file, else 1500', () => {
  assert.equal(resolveMtu('1400', '1450\n'), 1400);
  assert.equal(resolveMtu('0', '1450'), 0);
  assert.equal(resolveMtu(undefined, '1450\n'), 1450);
  assert.equal(resolveMtu('', undefined), 1500);
  assert.equal(resolveMtu(undefined, '0'), 1500);
  assert.throws(() => resolveMtu('12', undefined), (err: Error & { code?: string }) => err.code === 'INSTALL_CNI_BAD_MTU');
  assert.throws(() => resolveMtu('1500x', undefined), /not an MTU/);
  assert.throws(() => resolveMtu(undefined, 'junk'), /MTU file/);
});

test('renderConflist substitutes every placeholder and rejects non-conflists', () => {
  const text = renderConflist(DEFAULT_NETWORK_CONFIG, { nodeName: 'n1', mtu: 1500, kubeconfigPath: '/k' });
  assert.doesNotMatch(text, /__[A-Z_]+__/);
  assert.throws(() => renderConflist('{"mtu": __CNI_MTU__,', { nodeName: 'n', mtu: 1, kubeconfigPath: '/k' }), /not JSON/);
  assert.throws(() => renderConflist('{"type":"tabby"}', { nodeName: 'n', mtu: 1, kubeconfigPath: '/k' }), /no "plugins"/);
});

test('resolveInstallCniOptions reads Calico installer env names', () => {
  const files: Record<string, string> = {
    '/var/run/secrets/kubernetes.io/serviceaccount/token': 'tok\n',
    '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt': CA,
    '/var/lib/tabby/mtu': '1430',
    '/conf.json': '{"plugins":[{"type":"tabby"}]}',
  };
  const o = resolveInstallCniOptions({
    env: {
      CNI_BIN_DIR: '/b',
      CNI_NET_DIR: '/n',
      CNI_CONF_NAME: '05-tabby.conflist',
      CNI_NETWORK_CONFIG_FILE: '/conf.json',
      KUBERNETES_NODE_NAME: 'k8s-node',
      KUBERNETES_SERVICE_HOST: 'fd00::1',
      KUBERNETES_SERVICE_PORT: '6443',
      SKIP_CNI_BINARIES: 'portmap,tabby',
      TABBY_HOST_ROOT: '/h/',
      TABBY_APP_DIR: '/app',
    },
    argv: ['--force'],
    log: silentLogger(),
    readFile: (p) => files[p],
  });
  assert.equal(o.hostRoot, '/h');
  assert.equal(o.cniBinDir, '/b');
  assert.equal(o.cniNetDir, '/n');
  assert.equal(o.confName, '05-tabby.conflist');
  assert.equal(o.networkConfig, files['/conf.json']);
  assert.equal(o.nodeName, 'k8s-node');
  assert.equal(o.mtu, 1430);
  assert.equal(o.appDir, '/app');
  assert.equal(o.skipBinaries, true);
  assert.equal(o.force, true);
  assert.deepEqual(o.cluster, { server: 'https://[fd00::1]:6443', caPem: CA, skipTlsVerify: false, token: 'tok' });

  const plain = resolveInstallCniOptions({ env: { NODENAME: 'n2', CNI_MTU: '1500' }, log: silentLogger(), readFile: () => undefined });
  assert.equal(plain.hostRoot, '/host');
  assert.equal(plain.cniBinDir, '/opt/cni/bin');
  assert.equal(plain.cniNetDir, '/etc/cni/net.d');
  assert.equal(plain.confName, '10-tabby.conflist');
  assert.equal(plain.networkConfig, DEFAULT_NETWORK_CONFIG);
  assert.equal(plain.nodeName, 'n2');
  assert.equal(plain.cluster, undefined);
  assert.equal(plain.force, false);
  assert.equal(plain.nodeBinary, process.execPath);
  assert.equal(plain.extraPluginsDir, '/usr/lib/cni');
  assert.equal(resolveInstallCniOptions({ env: { TABBY_HOST_ROOT: '' }, log: silentLogger(), readFile: () => undefined }).hostRoot, '', 'empty = on the host');

  assert.throws(
    () => resolveInstallCniOptions({ env: { KUBERNETES_SERVICE_HOST: '10.0.0.1' }, log: silentLogger(), readFile: () => undefined }),
    (err: Error & { code?: string }) => err.code === 'INSTALL_CNI_NO_TOKEN',
  );
  assert.equal(apiServerUrl('10.0.0.1', '443'), 'https://10.0.0.1:443');
});

test('runInstallCni: --help exits 0, unknown flags 2, a full run from env exits 0', async (t) => {
  const dir = tempDir(t);
  const app = fakeApp(dir);
  const writes: string[] = [];
  const orig = process.stdout.write.bind(process.stdout);
  const origErr = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((c: string) => (writes.push(String(c)), true)) as typeof process.stdout.write;
  process.stderr.write = ((c: string) => (writes.push(String(c)), true)) as typeof process.stderr.write;
  const level = process.env.LOG_LEVEL;
  process.env.LOG_LEVEL = 'silent';
  let codes: number[];
  try {
    codes = [
      await runInstallCni(['--help'], {}),
      await runInstallCni(['--bogus'], {}),
      await runInstallCni([], { TABBY_HOST_ROOT: join(dir, 'host'), TABBY_APP_DIR: app, TABBY_CNI_HOST_NODE: 'true', NODENAME: 'n' }),
    ];
  } finally {
    process.stdout.write = orig;
    process.stderr.write = origErr;
    if (level === undefined) delete process.env.LOG_LEVEL;
    else process.env.LOG_LEVEL = level;
  }
  assert.deepEqual(codes, [0, 2, 0]);
  assert.match(writes.join(''), /usage: tabby-node install-cni/);
  assert.ok(existsSync(join(dir, 'host/etc/cni/net.d/10-tabby.conflist')));
  assert.ok(existsSync(join(dir, 'host/opt/cni/bin/tabby')));
});

test('the tabby launcher is the CNI shim (Node plugin as its fallback); socat is copied for hosts without one', (t) => {
  const dir = tempDir(t);
  const fakeSocat = join(dir, 'socat');
  writeFileSync(fakeSocat, '#!/bin/sh\nexit 1\n', { mode: 0o755 });
  const o = options(dir, { socatBinary: fakeSocat });
  const r = installCni(o);
  const text = readFileSync(join(o.hostRoot, 'opt/cni/bin/tabby'), 'utf8');
  assert.match(text, /TABBYCNI\/1/);
  assert.match(text, /socat="\$d\/socat"/);
  assert.equal(mode(join(o.hostRoot, r.runtimeDir!, 'socat')), 0o755);
  // No server socket in this run dir: the shim runs the bundle with the config on stdin.
  const run = join(dir, 'run');
  mkdirSync(run);
  const out = execFileSync(join(o.hostRoot, 'opt/cni/bin/tabby'), [], { input: '{"cniVersion":"1.0.0"}', env: { ...process.env, CNI_COMMAND: 'VERSION', TABBY_RUN_DIR: run }, encoding: 'utf8' });
  assert.equal(out.trim(), 'tabby:v1 []');
  // tabby-ipam stays a plain launcher.
  assert.doesNotMatch(readFileSync(join(o.hostRoot, 'opt/cni/bin/tabby-ipam'), 'utf8'), /TABBYCNI/);
});
