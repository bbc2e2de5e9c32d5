import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NodeConfigError, parseAutodetectMethod, parseDurationSec, parseIPSetting, parseNodeConfig } from '../../node/config.js';

const host = { hostname: () => 'host-a' };

test('defaults: hostname fallback, autodetect first-found, default pool, dirs, health/metrics ports', () => {
  const c = parseNodeConfig({}, host);
  assert.equal(c.nodeName, 'host-a');
  assert.deepEqual(c.ip, { mode: 'autodetect' });
  assert.deepEqual(c.autodetect, { kind: 'first-found' });
  assert.deepEqual(c.defaultPool, { cidr: '192.168.0.0/16', blockSize: 26, ipipMode: 'Never', vxlanMode: 'Never', natOutgoing: true, nodeSelector: 'all()' });
  assert.equal(c.runDir, '/var/run/tabby');
  assert.equal(c.libDir, '/var/lib/tabby');
  assert.equal(c.felix.healthPort, 9099);
  assert.equal(c.felix.healthHost, '127.0.0.1');
  assert.equal(c.felix.prometheusMetricsPort, 9091);
  assert.equal(c.felix.prometheusMetricsEnabled, false);
  assert.equal(c.felix.routeRefreshIntervalSec, 90);
  assert.equal(c.datastore.type, 'etcdv3');
  assert.equal(c.datastore.etcdTransport, 'http', 'the agent talks to etcd over the JSON gateway (no gRPC client)');
  assert.equal(parseNodeConfig({ TABBY_ETCD_TRANSPORT: 'grpc' }, host).datastore.etcdTransport, 'grpc');
  assert.equal(parseNodeConfig({ DATASTORE_TYPE: 'kubernetes' }, host).datastore.etcdTransport, undefined);
  assert.throws(() => parseNodeConfig({ TABBY_ETCD_TRANSPORT: 'h2' }, host), (e: unknown) => e instanceof NodeConfigError && /TABBY_ETCD_TRANSPORT/.test(e.message));
  assert.equal(c.asNumber, undefined);
  assert.equal(c.networkingBackend, 'bird');
  assert.equal(parseNodeConfig({ CALICO_NETWORKING_BACKEND: 'vxlan' }, host).networkingBackend, 'vxlan');
});

test('every variable is honoured', () => {
  const c = parseNodeConfig({
    NODENAME: 'node-1', DATASTORE_TYPE: 'etcdv3', ETCD_ENDPOINTS: 'http://127.0.0.1:23850', IP: '10.0.0.5/24',
    IP_AUTODETECTION_METHOD: 'interface=eth.*,ens.*', AS: '64513', CALICO_IPV4POOL_CIDR: '10.244.0.0/16',
    CALICO_IPV4POOL_BLOCK_SIZE: '24', CALICO_IPV4POOL_VXLAN: 'CrossSubnet', CALICO_IPV4POOL_NAT_OUTGOING: 'false',
    CALICO_IPV4POOL_NODE_SELECTOR: 'zone == "a"', FELIX_IPINIPMTU: '1400', FELIX_VXLANMTU: '1350',
    FELIX_ROUTEREFRESHINTERVAL: '1m30s', FELIX_HEALTHPORT: '19090', FELIX_HEALTHHOST: '0.0.0.0',
    FELIX_PROMETHEUSMETRICSENABLED: 'true', FELIX_PROMETHEUSMETRICSPORT: '19091', FELIX_LOGSEVERITYSCREEN: 'Warning',
    CALICO_ROUTER_ID: 'hash', TABBY_RUN_DIR: '/tmp/r', TABBY_LIB_DIR: '/tmp/l',
  }, host);
  assert.equal(c.nodeName, 'node-1');
  assert.deepEqual(c.datastore.etcdEndpoints, ['http://127.0.0.1:23850']);
  assert.deepEqual(c.ip, { mode: 'static', address: '10.0.0.5', prefix: 24 });
  assert.deepEqual(c.autodetect, { kind: 'interface', patterns: ['eth.*', 'ens.*'] });
  assert.equal(c.asNumber, 64513);
  assert.deepEqual(c.defaultPool, { cidr: '10.244.0.0/16', blockSize: 24, ipipMode: 'Never', vxlanMode: 'CrossSubnet', natOutgoing: false, nodeSelector: 'zone == "a"' });
  assert.equal(c.felix.ipipMTU, 1400);
  assert.equal(c.felix.vxlanMTU, 1350);
  assert.equal(c.felix.routeRefreshIntervalSec, 90);
  assert.equal(c.felix.healthPort, 19090);
  assert.equal(c.felix.healthHost, '0.0.0.0');
  assert.equal(c.felix.prometheusMetricsEnabled, true);
  assert.equal(c.felix.prometheusMetricsPort, 19091);
  assert.equal(c.felix.logSeverityScreen, 'warn');
  assert.equal(c.routerId, 'hash');
  assert.equal(c.runDir, '/tmp/r');
  assert.equal(c.libDir, '/tmp/l');
});

test('NO_DEFAULT_POOLS drops the default pool; IP=none; asdot AS', () => {
  const c = parseNodeConfig({ NO_DEFAULT_POOLS: 'true', IP: 'none', AS: '1.10' }, host);
  assert.equal(c.defaultPool, undefined);
  assert.deepEqual(c.ip, { mode: 'none' });
  assert.equal(c.asNumber, 65546);
});

const bad: Array<[Record<string, string>, string]> = [
  [{ IP: '10.0.0.300' }, 'IP'],
  [{ IP: 'fd00::1' }, 'IP'],
  [{ IP_AUTODETECTION_METHOD: 'magic' }, 'IP_AUTODETECTION_METHOD'],
  [{ IP_AUTODETECTION_METHOD: 'interface=(' }, 'IP_AUTODETECTION_METHOD'],
  [{ IP_AUTODETECTION_METHOD: 'cidr=10.0.0.0/33' }, 'IP_AUTODETECTION_METHOD'],
  [{ IP_AUTODETECTION_METHOD: 'can-reach=' }, 'IP_AUTODETECTION_METHOD'],
  [{ AS: 'abc' }, 'AS'],
  [{ AS: '0' }, 'AS'],
  [{ CALICO_IPV4POOL_CIDR: '10.0.0.0' }, 'CALICO_IPV4POOL_CIDR'],
  [{ CALICO_IPV4POOL_BLOCK_SIZE: '40' }, 'CALICO_IPV4POOL_BLOCK_SIZE'],
  [{ CALICO_IPV4POOL_CIDR: '10.0.0.0/24', CALICO_IPV4POOL_BLOCK_SIZE: '20' }, 'CALICO_IPV4POOL_BLOCK_SIZE'],
  [{ CALICO_IPV4POOL_IPIP: 'sometimes' }, 'CALICO_IPV4POOL_IPIP'],
  [{ CALICO_IPV4POOL_IPIP: 'Always', CALICO_IPV4POOL_VXLAN: 'Always' }, 'CALICO_IPV4POOL_VXLAN'],
  [{ CALICO_IPV4POOL_NAT_OUTGOING: 'maybe' }, 'CALICO_IPV4POOL_NAT_OUTGOING'],
  [{ CALICO_IPV4POOL_NODE_SELECTOR: 'a ==' }, 'CALICO_IPV4POOL_NODE_SELECTOR'],
  [{ FELIX_HEALTHPORT: '70000' }, 'FELIX_HEALTHPORT'],
  [{ FELIX_ROUTEREFRESHINTERVAL: 'soon' }, 'FELIX_ROUTEREFRESHINTERVAL'],
  [{ FELIX_LOGSEVERITYSCREEN: 'loud' }, 'FELIX_LOGSEVERITYSCREEN'],
  [{ CALICO_ROUTER_ID: '1.2.3' }, 'CALICO_ROUTER_ID'],
  [{ NODENAME: 'Bad_Name' }, 'NODENAME'],
  [{ DATASTORE_TYPE: 'consul' }, 'DATASTORE_TYPE'],
  [{ CALICO_NETWORKING_BACKEND: 'gobgp' }, 'CALICO_NETWORKING_BACKEND'],
];
for (const [env, variable] of bad) {
  test(`bad ${JSON.stringify(env)} names ${variable}`, () => {
    assert.throws(() => parseNodeConfig(env, host), (err: unknown) => {
      assert.ok(err instanceof NodeConfigError);
      assert.equal(err.variable, variable);
      assert.match(err.message, new RegExp(`^${variable}:`));
      assert.ok(err.hint);
      return true;
    });
  });
}

test('methods, IP forms and durations', () => {
  assert.deepEqual(parseAutodetectMethod('can-reach=8.8.8.8'), { kind: 'can-reach', destination: '8.8.8.8' });
  assert.deepEqual(parseAutodetectMethod('skip-interface=docker.*'), { kind: 'skip-interface', patterns: ['docker.*'] });
  assert.deepEqual(parseAutodetectMethod('cidr=10.1.2.3/8, 192.168.0.0/16'), { kind: 'cidr', cidrs: ['10.0.0.0/8', '192.168.0.0/16'] });
  assert.deepEqual(parseIPSetting('10.0.0.5'), { mode: 'static', address: '10.0.0.5' });
  assert.equal(parseDurationSec('X', '500ms'), 0.5);
  assert.equal(parseDurationSec('X', '2h'), 7200);
  assert.equal(parseDurationSec('X', '15'), 15);
});
