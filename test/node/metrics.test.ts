import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { NodeMetrics, startMetricsServer } from '../../node/metrics.js';

const loadedPromClient = (): boolean => Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('/prom-client/'));

test('disabled metrics do not load prom-client and accept every update as a no-op', async () => {
  const m = new NodeMetrics(true, false);
  assert.equal(m.registry, undefined);
  m.bgpPeerState.set({ peer: '10.0.0.1', type: 'global' }, 1);
  m.bgpExported.set(3);
  m.routeApply.observe(0.01);
  m.reconcileErrors.inc();
  assert.equal(loadedPromClient(), false);
  await assert.rejects(startMetricsServer(m, '127.0.0.1', 0), /disabled/);
});

test('enabled metrics are served on /metrics', async (t) => {
  const m = new NodeMetrics(false, true);
  m.bgpExported.set(3);
  const srv = await startMetricsServer(m, '127.0.0.1', 0);
  t.after(() => srv.close());
  const text = await (await fetch(`http://127.0.0.1:${srv.port}/metrics`)).text();
  assert.match(text, /^tabby_bgp_prefixes_exported 3$/m);
  assert.equal(loadedPromClient(), true);
});
