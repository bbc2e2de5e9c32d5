import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDatastore } from '../../datastore/memory.js';
import { Ipam } from '../../ipam/ipam.js';
import { silentLogger } from '../../lib/log.js';
import { ensureTunnelAddresses } from '../../node/tunnel.js';
import type { IPAMHandle, IPPool, Node } from '../../api/types.js';

test('VXLAN pool → vxlan tunnel address under handle vxlan-tunnel-addr-<node>; kept; released when no pool needs it', async () => {
  const ds = new MemoryDatastore();
  const ipam = new Ipam({ datastore: ds });
  await ds.create<IPPool>({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'p' }, spec: { cidr: '10.244.0.0/16', blockSize: 26, vxlanMode: 'Always', ipipMode: 'Never', nodeSelector: 'all()' } });
  await ds.create<Node>({ apiVersion: 'projectcalico.org/v3', kind: 'Node', metadata: { name: 'n1' }, spec: { bgp: { ipv4Address: '10.0.0.5/24' } } });
  const a = await ensureTunnelAddresses(ds, ipam, 'n1', silentLogger());
  const addr = a.spec?.ipv4VXLANTunnelAddr;
  assert.ok(addr?.startsWith('10.244.'));
  assert.equal(a.spec?.bgp?.ipv4IPIPTunnelAddr, undefined);
  const handles = (await ds.list<IPAMHandle>('IPAMHandle')).items.map((h) => h.spec.handleID);
  assert.deepEqual(handles, ['vxlan-tunnel-addr-n1']);
  const b = await ensureTunnelAddresses(ds, ipam, 'n1', silentLogger());
  assert.equal(b.spec?.ipv4VXLANTunnelAddr, addr);
  assert.equal(b.metadata.resourceVersion, a.metadata.resourceVersion);

  const pool = await ds.get<IPPool>('IPPool', 'p');
  await ds.update<IPPool>({ ...pool, spec: { ...pool.spec, vxlanMode: 'Never' } });
  const c = await ensureTunnelAddresses(ds, ipam, 'n1', silentLogger());
  assert.equal(c.spec?.ipv4VXLANTunnelAddr, undefined);
  assert.deepEqual((await ds.list<IPAMHandle>('IPAMHandle')).items.filter((h) => Object.keys(h.spec.block ?? {}).length > 0), []);
});
