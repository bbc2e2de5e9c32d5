/**
 * Both etcd transports against an etcd that serves TLS and requires client certificates
 * (ETCD_CA_CERT_FILE / ETCD_CERT_FILE / ETCD_KEY_FILE): CRUD and watch work with the certificates and
 * fail with UnavailableError without them. Certificates are made with openssl in a temp dir.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createEtcdDatastore } from '../../datastore/etcd.js';
import { UnavailableError } from '../../datastore/types.js';
import { needCommand } from '../lib/skip.js';
import { EventLog, pool } from './contract.js';
import { etcdMissing, startEtcd, type EtcdHarness } from './etcd-harness.js';

const missing = etcdMissing() ?? needCommand('openssl', 'openssl');
let dir: string | undefined;
let etcd: EtcdHarness | undefined;
let files: { ca: string; cert: string; key: string; clientCert: string; clientKey: string } | undefined;

/** A test CA, a server certificate for 127.0.0.1 (serverAuth + clientAuth) and a client certificate. */
function makeCerts(d: string): NonNullable<typeof files> {
  const f = (n: string): string => join(d, n);
  const ssl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: 'ignore' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ssl('req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '1', '-subj', '/CN=tabby-test-ca');
  for (const [name, ext] of [
    ['server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n'],
    ['client', 'extendedKeyUsage=clientAuth\n'],
  ] as const) {
    writeFileSync(f(`${name}.ext`), ext);
    ssl('req', ...ec, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=tabby-test-${name}`);
    ssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${name}.crt`), '-days', '1', '-extfile', f(`${name}.ext`));
  }
  return { ca: f('ca.crt'), cert: f('server.crt'), key: f('server.key'), clientCert: f('client.crt'), clientKey: f('client.key') };
}

before(async () => {
  if (missing) return;
  dir = await mkdtemp(join(tmpdir(), 'tabby-etcd-tls-'));
  files = makeCerts(dir);
  etcd = await startEtcd({ clientPorts: [23797, 23799], peerPorts: [23807, 23809], tls: { caFile: files.ca, certFile: files.cert, keyFile: files.key } });
});
after(async () => {
  await etcd?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

for (const transport of ['grpc', 'http'] as const) {
  test(`etcd TLS with client certificates (${transport}): CRUD and watch`, { skip: missing }, async () => {
    const e = etcd as EtcdHarness;
    const c = files as NonNullable<typeof files>;
    const ds = await createEtcdDatastore({ endpoints: [e.endpoint], transport, caCertFile: c.ca, certFile: c.clientCert, keyFile: c.clientKey });
    const log = new EventLog();
    try {
      await ds.wipe();
      const a = await ds.create(pool(`tls-${transport}`, '10.110.0.0/16'));
      assert.deepEqual(await ds.get('IPPool', `tls-${transport}`), a);
      log.start(ds, 'IPPool');
      await log.waitForCount('SYNCED', 1);
      await ds.update({ ...a, metadata: { ...a.metadata, labels: { t: '1' } } });
      await log.waitForCount('MODIFIED', 1);
      assert.deepEqual(log.summary(), [`ADDED tls-${transport}`, 'SYNCED', `MODIFIED tls-${transport}`]);
    } finally {
      await log.stop();
      await ds.close();
    }
  });

  test(`etcd TLS (${transport}): without a client certificate the store is unavailable`, { skip: missing }, async () => {
    const e = etcd as EtcdHarness;
    const c = files as NonNullable<typeof files>;
    const ds = await createEtcdDatastore({ endpoints: [e.endpoint], transport, caCertFile: c.ca, requestTimeoutMs: 2000 });
    try {
      await assert.rejects(ds.get('IPPool', 'x'), (err: unknown) => err instanceof UnavailableError && /bad certificate/.test(String(err.cause)));
    } finally {
      await ds.close();
    }
  });
}
