import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDatastore } from '../../datastore/memory.js';
import { Ipam } from '../../ipam/ipam.js';
import { ensureTunnelAddress, releaseTunnelAddress, tunnelHandle } from '../../ipam/tunnel.js';
import { checkIpam, loadSnapshot } from '../../ipam/report.js';
import type { IPAMBlock } from '../../api/types.js';
import { addNode, addPool } from './fixtures.js';

test('tunnel address: first ordinal of the node block, stable, re-made when its pool goes away', async () => {
  const ds = new MemoryDatastore();
  await addPool(ds, 'p', { cidr: '10.244.0.0/24' });
  await addNode(ds, 'n1');
  const ipam = new Ipam({ datastore: ds });
  const ip = await ensureTunnelAddress(ipam, 'n1', 'ipip');
  const [b] = (await ds.list<IPAMBlock>('IPAMBlock')).items;
  assert.equal(ip, b!.spec.cidr.split('/')[0], 'first ordinal of the first block');
  assert.deepEqual(b!.spec.attributes[0], { handle_id: 'ipip-tunnel-addr-n1', secondary: { node: 'n1', type: 'ipipTunnelAddress' } });
  assert.equal(await ensureTunnelAddress(ipam, 'n1', 'ipip'), ip, 'idempotent');
  const report = checkIpam(await loadSnapshot(ds), { handles: new Set(), nodes: new Set(['n1']) });
  assert.equal(report.summary.tunnelIps, 1);
  assert.equal(report.summary.problems, 0);
  // A new tunnel-only pool requested explicitly: the address moves there.
  await addPool(ds, 'tun', { cidr: '10.99.0.0/24', allowedUses: ['Tunnel'] });
  const moved = await ensureTunnelAddress(ipam, 'n1', 'ipip', ['tun']);
  assert.match(moved, /^10\.99\.0\./);
  assert.deepEqual((await ipam.ipsByHandle(tunnelHandle('ipip', 'n1'))).map((a) => a.ip), [moved]);
  assert.equal(await releaseTunnelAddress(ipam, 'n1', 'ipip'), 1);
  assert.equal((await ds.list('IPAMHandle')).items.length, 0);
});
