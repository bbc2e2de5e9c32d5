/**
 * The datastore contract suite: one set of tests, run against every backend (memory, etcdv3 on a
 * real etcd, kubernetes on the API-faithful test server). Each test gets a fresh, empty store from
 * the factory. Optional fault hooks let a backend prove that watches survive lost connections and
 * compaction without losing or duplicating events.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Resource } from '../../api/meta.js';
import type { Datastore, WatchEvent, WatchOptions, Watcher } from '../../datastore/types.js';
import { AlreadyExistsError, ConflictError, NotFoundError, supportsCommit, type DatastoreError } from '../../datastore/types.js';

export interface WatchFaults {
  /** Cut the watch connection(s) of `ds`; `writer` must keep working. */
  cutWatches(): Promise<void>;
  /** Let watches reconnect. */
  restoreWatches(): Promise<void>;
  /** Drop change history up to now so a reconnecting watcher cannot resume (etcd compaction, 410 Gone). */
  compact(): Promise<void>;
}

export interface ContractHarness {
  /** The store under test (fresh and empty). */
  ds: Datastore;
  /** A client of the same store whose writes are not affected by cutWatches (may be `ds`). */
  writer: Datastore;
  faults?: WatchFaults;
  cleanup(): Promise<void>;
}

export type HarnessFactory = () => Promise<ContractHarness>;

export function pool(name: string, cidr: string, labels?: Record<string, string>): Resource {
  return {
    apiVersion: 'projectcalico.org/v3',
    kind: 'IPPool',
    metadata: { name, ...(labels ? { labels } : {}) },
    spec: { cidr, blockSize: 26, ipipMode: 'Never', vxlanMode: 'Never', natOutgoing: true },
  };
}

/** Collects watch events and waits for conditions on them (bounded waits, no timing assertions). */
export class EventLog<T extends Resource = Resource> {
  readonly events: WatchEvent<T>[] = [];
  watcher: Watcher | undefined;
  readonly onEvent = (ev: WatchEvent<T>): void => {
    this.events.push(ev);
  };

  start(ds: Datastore, kind: string, opts: WatchOptions = {}): this {
    this.watcher = ds.watch<T>(kind, opts, this.onEvent);
    return this;
  }

  /** Non-ERROR events as compact strings: `ADDED a@rv`, `SYNCED`. */
  summary(withRv = false): string[] {
    return this.events
      .filter((e) => e.type !== 'ERROR')
      .map((e) =>
        e.type === 'SYNCED' ? 'SYNCED' : `${e.type} ${e.object.metadata.name}${withRv ? `@${e.object.metadata.resourceVersion}` : ''}`,
      );
  }

  async waitFor(pred: (evs: WatchEvent<T>[]) => boolean, what: string, limitMs = 20000): Promise<void> {
    const end = Date.now() + limitMs;
    while (!pred(this.events)) {
      if (Date.now() > end) assert.fail(`timed out waiting for ${what}; events so far: ${JSON.stringify(this.summary(true))}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async waitForCount(type: WatchEvent['type'], n: number, what = `${n} ${type}`): Promise<void> {
    await this.waitFor((evs) => evs.filter((e) => e.type === type).length >= n, what);
  }

  async stop(): Promise<void> {
    await this.watcher?.stop();
  }
}

/** Replays ADDED/MODIFIED/DELETED onto a map name → resourceVersion (what a consumer would hold). */
export function replay(events: WatchEvent[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of events) {
    if (e.type === 'ADDED') {
      assert.ok(!m.has(e.object.metadata.name), `duplicate ADDED for ${e.object.metadata.name}`);
      m.set(e.object.metadata.name, e.object.metadata.resourceVersion ?? '');
    } else if (e.type === 'MODIFIED') {
      assert.ok(m.has(e.object.metadata.name), `MODIFIED before ADDED for ${e.object.metadata.name}`);
      m.set(e.object.metadata.name, e.object.metadata.resourceVersion ?? '');
    } else if (e.type === 'DELETED') {
      assert.ok(m.has(e.object.metadata.name), `DELETED of unknown ${e.object.metadata.name}`);
      m.delete(e.object.metadata.name);
    }
  }
  return m;
}

async function stateOf(ds: Datastore, kind: string): Promise<Map<string, string>> {
  const { items } = await ds.list(kind);
  return new Map(items.map((o) => [o.metadata.name, o.metadata.resourceVersion ?? '']));
}

export function datastoreContract(name: string, factory: HarnessFactory, opts: { skip?: string } = {}): void {
  describe(`datastore contract: ${name}`, { skip: opts.skip }, () => {
    const withStore = (title: string, fn: (h: ContractHarness) => Promise<void>, o: { needsFaults?: boolean } = {}): void => {
      test(title, async (t) => {
        const h = await factory();
        t.after(() => h.cleanup());
        if (o.needsFaults && !h.faults) {
          t.skip(`${name} harness has no fault hooks`);
          return;
        }
        await fn(h);
      });
    };

    withStore('create then get returns the stored object with metadata filled in', async ({ ds }) => {
      const created = await ds.create(pool('p1', '10.1.0.0/16', { zone: 'a' }));
      assert.equal(created.metadata.name, 'p1');
      assert.equal(created.kind, 'IPPool');
      assert.equal(created.apiVersion, 'projectcalico.org/v3');
      assert.ok(created.metadata.resourceVersion, 'resourceVersion set');
      assert.ok(created.metadata.uid, 'uid set');
      assert.ok(created.metadata.creationTimestamp, 'creationTimestamp set');
      const got = await ds.get('IPPool', 'p1');
      assert.deepEqual(got, created);
      assert.deepEqual(got.spec, pool('p1', '10.1.0.0/16').spec);
      assert.deepEqual(got.metadata.labels, { zone: 'a' });
      // kind lookups by alias/plural reach the same object
      assert.deepEqual(await ds.get('ippools', 'p1'), created);
    });

    withStore('IPAM kinds keep their crd.projectcalico.org/v1 apiVersion; IPAMConfiguration round-trips', async ({ ds }) => {
      const blk = await ds.create({
        apiVersion: 'crd.projectcalico.org/v1',
        kind: 'IPAMBlock',
        metadata: { name: '10-244-1-0-26' },
        spec: { cidr: '10.244.1.0/26', affinity: 'host:n1', allocations: [0, null], unallocated: [1], attributes: [], deleted: false },
      });
      assert.equal(blk.apiVersion, 'crd.projectcalico.org/v1');
      assert.deepEqual((await ds.get('IPAMBlock', '10-244-1-0-26')).spec, blk.spec);
      const cfg = await ds.create({
        apiVersion: 'projectcalico.org/v3',
        kind: 'IPAMConfiguration',
        metadata: { name: 'default' },
        spec: { strictAffinity: false, autoAllocateBlocks: true },
      });
      const got = await ds.get('IPAMConfiguration', 'default');
      assert.equal(got.kind, 'IPAMConfiguration');
      assert.equal(got.apiVersion, 'projectcalico.org/v3');
      assert.deepEqual(got, cfg);
    });

    withStore('create of an existing name fails with AlreadyExistsError', async ({ ds }) => {
      await ds.create(pool('dup', '10.2.0.0/16'));
      await assert.rejects(ds.create(pool('dup', '10.3.0.0/16')), AlreadyExistsError);
      assert.equal((await ds.get<Resource<string, { cidr: string }>>('IPPool', 'dup')).spec.cidr, '10.2.0.0/16');
    });

    withStore('get/update/delete of a missing object fail with NotFoundError', async ({ ds }) => {
      await assert.rejects(ds.get('IPPool', 'nope'), NotFoundError);
      await assert.rejects(ds.update({ ...pool('nope', '10.0.0.0/8'), metadata: { name: 'nope', resourceVersion: '5' } }), NotFoundError);
      await assert.rejects(ds.delete('IPPool', 'nope'), NotFoundError);
      await assert.rejects(ds.delete('IPPool', 'nope', { resourceVersion: '3' }), NotFoundError);
    });

    withStore('list filters by label selector and name prefix, sorted, with a revision', async ({ ds }) => {
      await ds.create(pool('a-one', '10.10.0.0/16', { env: 'prod', tier: 'web' }));
      await ds.create(pool('a-two', '10.11.0.0/16', { env: 'dev', tier: 'web' }));
      await ds.create(pool('b-three', '10.12.0.0/16', { env: 'prod' }));
      await ds.create(pool('b-four', '10.13.0.0/16'));
      const names = async (o: Parameters<Datastore['list']>[1]): Promise<string[]> =>
        (await ds.list('IPPool', o)).items.map((i) => i.metadata.name).sort();
      assert.deepEqual(await names({}), ['a-one', 'a-two', 'b-four', 'b-three']);
      assert.deepEqual(await names({ labelSelector: 'env=prod' }), ['a-one', 'b-three']);
      assert.deepEqual(await names({ labelSelector: 'env==prod,tier=web' }), ['a-one']);
      assert.deepEqual(await names({ labelSelector: 'env!=prod' }), ['a-two', 'b-four']);
      assert.deepEqual(await names({ labelSelector: 'env in (dev, prod),!tier' }), ['b-three']);
      assert.deepEqual(await names({ labelSelector: 'env notin (prod)' }), ['a-two', 'b-four']);
      assert.deepEqual(await names({ labelSelector: 'tier' }), ['a-one', 'a-two']);
      assert.deepEqual(await names({ namePrefix: 'b-' }), ['b-four', 'b-three']);
      assert.deepEqual(await names({ namePrefix: 'a-', labelSelector: 'env=prod' }), ['a-one']);
      assert.deepEqual(await names({ namePrefix: 'zzz' }), []);
      const r = await ds.list('IPPool');
      assert.match(r.revision, /^\d+$/);
      const maxRv = Math.max(...r.items.map((i) => Number(i.metadata.resourceVersion)));
      assert.ok(Number(r.revision) >= maxRv, 'list revision covers every listed object');
    });

    withStore('namespaced kinds: get/list/delete per namespace', async ({ ds }) => {
      const wep = (ns: string, name: string): Resource => ({
        apiVersion: 'projectcalico.org/v3',
        kind: 'WorkloadEndpoint',
        metadata: { name, namespace: ns, labels: { app: ns } },
        spec: { node: 'n1', pod: name },
      });
      await ds.create(wep('ns1', 'pod-a'));
      await ds.create(wep('ns2', 'pod-a'));
      await ds.create(wep('ns2', 'pod-b'));
      assert.equal((await ds.get('WorkloadEndpoint', 'pod-a', 'ns2')).metadata.namespace, 'ns2');
      await assert.rejects(ds.get('WorkloadEndpoint', 'pod-b', 'ns1'), NotFoundError);
      const all = await ds.list('WorkloadEndpoint');
      assert.deepEqual(all.items.map((i) => `${i.metadata.namespace}/${i.metadata.name}`).sort(), ['ns1/pod-a', 'ns2/pod-a', 'ns2/pod-b']);
      const ns2 = await ds.list('WorkloadEndpoint', { namespace: 'ns2' });
      assert.deepEqual(ns2.items.map((i) => i.metadata.name).sort(), ['pod-a', 'pod-b']);
      assert.deepEqual((await ds.list('WorkloadEndpoint', { labelSelector: 'app=ns1' })).items.map((i) => i.metadata.namespace), ['ns1']);
      await ds.delete('WorkloadEndpoint', 'pod-a', { namespace: 'ns1' });
      await assert.rejects(ds.get('WorkloadEndpoint', 'pod-a', 'ns1'), NotFoundError);
      assert.equal((await ds.get('WorkloadEndpoint', 'pod-a', 'ns2')).metadata.name, 'pod-a');
    });

    withStore('update is compare-and-swap on resourceVersion', async ({ ds }) => {
      const v1 = await ds.create(pool('cas', '10.20.0.0/16'));
      const v2 = await ds.update({ ...v1, spec: { ...(v1.spec as object), natOutgoing: false } });
      assert.notEqual(v2.metadata.resourceVersion, v1.metadata.resourceVersion);
      assert.equal(v2.metadata.uid, v1.metadata.uid);
      assert.equal((v2.spec as { natOutgoing: boolean }).natOutgoing, false);
      // stale writer loses
      await assert.rejects(ds.update({ ...v1, spec: { ...(v1.spec as object), natOutgoing: true } }), ConflictError);
      // missing resourceVersion is not a blind overwrite
      await assert.rejects(ds.update({ ...v2, metadata: { name: 'cas' } }), (e: unknown) => e instanceof ConflictError || (e instanceof Error && /resourceVersion/.test(e.message)));
      const now = await ds.get('IPPool', 'cas');
      assert.deepEqual(now, v2);
      const v3 = await ds.update(now);
      assert.ok(Number(v3.metadata.resourceVersion) > Number(v2.metadata.resourceVersion));
    });

    withStore('concurrent CAS updates: exactly one of two racing writers wins', async ({ ds }) => {
      const v1 = await ds.create(pool('race', '10.21.0.0/16'));
      const results = await Promise.allSettled([
        ds.update({ ...v1, metadata: { ...v1.metadata, labels: { w: '1' } } }),
        ds.update({ ...v1, metadata: { ...v1.metadata, labels: { w: '2' } } }),
      ]);
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      const rejected = results.find((r) => r.status === 'rejected');
      assert.ok(rejected && rejected.status === 'rejected' && rejected.reason instanceof ConflictError);
    });

    withStore('delete honours the resourceVersion precondition and returns the object', async ({ ds }) => {
      const v1 = await ds.create(pool('del', '10.30.0.0/16'));
      const v2 = await ds.update({ ...v1, metadata: { ...v1.metadata, labels: { x: 'y' } } });
      await assert.rejects(ds.delete('IPPool', 'del', { resourceVersion: v1.metadata.resourceVersion }), ConflictError);
      assert.equal((await ds.get('IPPool', 'del')).metadata.resourceVersion, v2.metadata.resourceVersion);
      const gone = await ds.delete('IPPool', 'del', { resourceVersion: v2.metadata.resourceVersion });
      assert.equal(gone.metadata.name, 'del');
      assert.deepEqual(gone.metadata.labels, { x: 'y' });
      await assert.rejects(ds.get('IPPool', 'del'), NotFoundError);
      await ds.create(pool('del2', '10.31.0.0/16'));
      assert.equal((await ds.delete('IPPool', 'del2')).metadata.name, 'del2');
      assert.deepEqual((await ds.list('IPPool')).items, []);
    });

    withStore('watch without revision: existing objects as ADDED, SYNCED, then every change once and in order', async ({ ds }) => {
      await ds.create(pool('w1', '10.40.0.0/16'));
      const w2 = await ds.create(pool('w2', '10.41.0.0/16'));
      await ds.create({ ...pool('other', '10.49.0.0/16'), kind: 'BGPPeer', spec: { peerIP: '10.0.0.1', asNumber: 64512 } });
      const log = new EventLog().start(ds, 'IPPool');
      try {
        await log.waitForCount('SYNCED', 1);
        assert.deepEqual(log.summary().slice(0, 3).sort(), ['ADDED w1', 'ADDED w2', 'SYNCED'].sort());
        assert.equal(log.summary()[2], 'SYNCED');
        const w3 = await ds.create(pool('w3', '10.42.0.0/16'));
        const w2b = await ds.update({ ...w2, metadata: { ...w2.metadata, labels: { a: 'b' } } });
        await ds.delete('IPPool', 'w1');
        await ds.update({ ...w3, metadata: { ...w3.metadata, labels: { c: 'd' } } });
        await log.waitForCount('MODIFIED', 2);
        assert.deepEqual(log.summary().slice(3), ['ADDED w3', 'MODIFIED w2', 'DELETED w1', 'MODIFIED w3']);
        const mod = log.events.find((e) => e.type === 'MODIFIED');
        assert.ok(mod && mod.type === 'MODIFIED');
        assert.equal(mod.object.metadata.resourceVersion, w2b.metadata.resourceVersion);
        assert.deepEqual(mod.object.metadata.labels, { a: 'b' });
        const del = log.events.find((e) => e.type === 'DELETED');
        assert.ok(del && del.type === 'DELETED' && del.object.metadata.name === 'w1');
        assert.deepEqual(replay(log.events), await stateOf(ds, 'IPPool'));
      } finally {
        await log.stop();
      }
    });

    withStore('watch from a list revision delivers exactly the later changes', async ({ ds }) => {
      const a = await ds.create(pool('r1', '10.50.0.0/16'));
      await ds.create(pool('r2', '10.51.0.0/16'));
      const listed = await ds.list('IPPool');
      await ds.update({ ...a, metadata: { ...a.metadata, labels: { v: '2' } } });
      await ds.create(pool('r3', '10.52.0.0/16'));
      await ds.delete('IPPool', 'r2');
      const log = new EventLog().start(ds, 'IPPool', { revision: listed.revision });
      try {
        await log.waitForCount('DELETED', 1);
        await ds.create(pool('r4', '10.53.0.0/16'));
        await log.waitForCount('ADDED', 2);
        assert.deepEqual(log.summary(), ['MODIFIED r1', 'ADDED r3', 'DELETED r2', 'ADDED r4']);
        const base = new Map(listed.items.map((o) => [o.metadata.name, o.metadata.resourceVersion ?? '']));
        const events = [...base].map(([n, rv]) => ({ type: 'ADDED' as const, object: { ...pool(n, ''), metadata: { name: n, resourceVersion: rv } } }));
        assert.deepEqual(replay([...events, ...log.events]), await stateOf(ds, 'IPPool'));
      } finally {
        await log.stop();
      }
    });

    withStore('watch with a label selector: objects entering/leaving the selection are ADDED/DELETED', async ({ ds }) => {
      const x = await ds.create(pool('sx', '10.60.0.0/16', { role: 'edge' }));
      const y = await ds.create(pool('sy', '10.61.0.0/16', { role: 'core' }));
      const log = new EventLog().start(ds, 'IPPool', { labelSelector: 'role=edge' });
      try {
        await log.waitForCount('SYNCED', 1);
        assert.deepEqual(log.summary(), ['ADDED sx', 'SYNCED']);
        await ds.update({ ...y, metadata: { ...y.metadata, labels: { role: 'edge' } } });
        await ds.update({ ...x, metadata: { ...x.metadata, labels: { role: 'core' } } });
        await ds.create(pool('sz', '10.62.0.0/16', { role: 'core' }));
        await ds.create(pool('sw', '10.63.0.0/16', { role: 'edge' }));
        await log.waitForCount('ADDED', 3);
        assert.deepEqual(log.summary(), ['ADDED sx', 'SYNCED', 'ADDED sy', 'DELETED sx', 'ADDED sw']);
      } finally {
        await log.stop();
      }
    });

    withStore('watch with a name prefix only sees matching names', async ({ ds }) => {
      const log = new EventLog().start(ds, 'IPPool', { namePrefix: 'keep-' });
      try {
        await log.waitForCount('SYNCED', 1);
        await ds.create(pool('drop-1', '10.64.0.0/16'));
        await ds.create(pool('keep-1', '10.65.0.0/16'));
        await ds.delete('IPPool', 'drop-1');
        await ds.delete('IPPool', 'keep-1');
        await log.waitForCount('DELETED', 1);
        assert.deepEqual(log.summary(), ['SYNCED', 'ADDED keep-1', 'DELETED keep-1']);
      } finally {
        await log.stop();
      }
    });

    withStore('stop() ends delivery', async ({ ds }) => {
      const log = new EventLog().start(ds, 'IPPool');
      await log.waitForCount('SYNCED', 1);
      await log.stop();
      await ds.create(pool('late', '10.66.0.0/16'));
      const marker = new EventLog().start(ds, 'IPPool');
      await marker.waitForCount('SYNCED', 1);
      await marker.stop();
      assert.deepEqual(log.summary(), ['SYNCED']);
    });

    withStore(
      'watch resumes after a lost connection without losing or duplicating events',
      async ({ ds, writer, faults }) => {
        const f = faults as WatchFaults;
        const a = await writer.create(pool('c1', '10.70.0.0/16'));
        const log = new EventLog().start(ds, 'IPPool');
        try {
          await log.waitForCount('SYNCED', 1);
          await writer.create(pool('c2', '10.71.0.0/16'));
          await log.waitForCount('ADDED', 2);
          await f.cutWatches();
          const a2 = await writer.update({ ...a, metadata: { ...a.metadata, labels: { n: '1' } } });
          await writer.create(pool('c3', '10.72.0.0/16'));
          await writer.delete('IPPool', 'c2');
          await writer.update({ ...a2, metadata: { ...a2.metadata, labels: { n: '2' } } });
          await f.restoreWatches();
          await writer.create(pool('c4', '10.73.0.0/16'));
          await log.waitFor((evs) => evs.some((e) => e.type === 'ADDED' && e.object.metadata.name === 'c4'), 'ADDED c4');
          assert.deepEqual(log.summary(), ['ADDED c1', 'SYNCED', 'ADDED c2', 'MODIFIED c1', 'ADDED c3', 'DELETED c2', 'MODIFIED c1', 'ADDED c4']);
          assert.deepEqual(replay(log.events), await stateOf(writer, 'IPPool'));
        } finally {
          await log.stop();
        }
      },
      { needsFaults: true },
    );

    withStore(
      'random writes with repeated connection cuts and compactions: the replayed watch equals the store',
      async ({ ds, writer, faults }) => {
        const f = faults as WatchFaults;
        let seed = 12345;
        const rnd = (n: number): number => {
          seed = (seed * 1103515245 + 12345) % 2147483648;
          return seed % n;
        };
        const log = new EventLog().start(ds, 'IPPool');
        try {
          await log.waitForCount('SYNCED', 1);
          for (let round = 0; round < 4; round++) {
            if (round > 0) await f.cutWatches();
            for (let i = 0; i < 12; i++) {
              const name = `soak-${rnd(6)}`;
              const existing = await writer.get('IPPool', name).catch(() => undefined);
              if (!existing) await writer.create(pool(name, `10.${100 + rnd(100)}.0.0/16`, { r: String(round) }));
              else if (rnd(3) === 0) await writer.delete('IPPool', name);
              else await writer.update({ ...existing, metadata: { ...existing.metadata, labels: { r: String(round), i: String(i) } } });
            }
            if (round === 2) await f.compact();
            if (round > 0) await f.restoreWatches();
            // a marker write tells us when the watcher has caught up
            await writer.create(pool(`mark-${round}`, `10.${round}.0.0/16`));
            await log.waitFor((evs) => evs.some((e) => e.type === 'ADDED' && e.object.metadata.name === `mark-${round}`), `ADDED mark-${round}`);
            assert.deepEqual(replay(log.events), await stateOf(writer, 'IPPool'), `round ${round}`);
          }
        } finally {
          await log.stop();
        }
      },
      { needsFaults: true },
    );

    withStore(
      'watch relists after compaction and emits only the differences',
      async ({ ds, writer, faults }) => {
        const f = faults as WatchFaults;
        const keep = await writer.create(pool('k-same', '10.80.0.0/16'));
        const mod = await writer.create(pool('k-mod', '10.81.0.0/16'));
        await writer.create(pool('k-del', '10.82.0.0/16'));
        const log = new EventLog().start(ds, 'IPPool');
        try {
          await log.waitForCount('SYNCED', 1);
          await f.cutWatches();
          await writer.update({ ...mod, metadata: { ...mod.metadata, labels: { m: '1' } } });
          await writer.delete('IPPool', 'k-del');
          await writer.create(pool('k-new', '10.83.0.0/16'));
          await writer.create(pool('k-tmp', '10.84.0.0/16'));
          await writer.delete('IPPool', 'k-tmp');
          await f.compact();
          await f.restoreWatches();
          await log.waitForCount('SYNCED', 2);
          const after = log.summary().slice(log.summary().indexOf('SYNCED') + 1);
          assert.deepEqual(after.sort(), ['ADDED k-new', 'DELETED k-del', 'MODIFIED k-mod', 'SYNCED'].sort());
          assert.equal(after[after.length - 1], 'SYNCED');
          assert.ok(!after.includes(`MODIFIED ${keep.metadata.name}`));
          // and the watch goes on after the relist
          await writer.create(pool('k-after', '10.85.0.0/16'));
          await log.waitFor((evs) => evs.some((e) => e.type === 'ADDED' && e.object.metadata.name === 'k-after'), 'ADDED k-after');
          assert.deepEqual(replay(log.events), await stateOf(writer, 'IPPool'));
        } finally {
          await log.stop();
        }
      },
      { needsFaults: true },
    );

    const withCommit = (title: string, fn: (ds: Datastore & { commit: NonNullable<Datastore['commit']> }, h: ContractHarness) => Promise<void>): void => {
      withStore(`commit: ${title}`, async (h) => {
        if (!supportsCommit(h.ds)) {
          // Not every backend has it (kubernetes); callers fall back to single-object writes.
          assert.equal(h.ds.commit, undefined);
          return;
        }
        await fn(h.ds, h);
      });
    };
    const opIndexOf = (e: unknown): number | undefined => (e as DatastoreError).opIndex;

    withCommit('create + update + delete + check land together in one revision', async (ds) => {
      const a = await ds.create(pool('c-a', '10.1.0.0/16'));
      const b = await ds.create(pool('c-b', '10.2.0.0/16'));
      const keep = await ds.create(pool('c-keep', '10.3.0.0/16'));
      const res = await ds.commit([
        { op: 'create', object: pool('c-new', '10.4.0.0/16') },
        { op: 'update', object: { ...a, spec: { ...(a.spec as object), natOutgoing: false } } },
        { op: 'delete', kind: 'IPPool', name: 'c-b', resourceVersion: b.metadata.resourceVersion! },
        { op: 'check', kind: 'IPPool', name: 'c-keep', resourceVersion: keep.metadata.resourceVersion! },
        { op: 'check', kind: 'IPPool', name: 'c-absent', resourceVersion: null },
      ]);
      assert.equal(res.objects.length, 5);
      const [created, updated] = res.objects;
      assert.equal(created!.metadata.resourceVersion, res.revision);
      assert.equal(updated!.metadata.resourceVersion, res.revision);
      assert.ok(created!.metadata.uid, 'create stamps uid');
      assert.equal(updated!.metadata.uid, a.metadata.uid, 'update keeps uid');
      assert.equal(res.objects[2], undefined);
      assert.deepEqual(await ds.get('IPPool', 'c-new'), created);
      assert.deepEqual(await ds.get('IPPool', 'c-a'), updated);
      assert.equal((await ds.get<Resource<string, { natOutgoing: boolean }>>('IPPool', 'c-a')).spec.natOutgoing, false);
      await assert.rejects(ds.get('IPPool', 'c-b'), NotFoundError);
      assert.deepEqual(await ds.get('IPPool', 'c-keep'), keep, 'check writes nothing');
    });

    withCommit('one failing op writes nothing and names the op (typed error + opIndex)', async (ds) => {
      const a = await ds.create(pool('f-a', '10.1.0.0/16'));
      const b = await ds.create(pool('f-b', '10.2.0.0/16'));
      const stale = { ...b };
      const b2 = await ds.update({ ...b, metadata: { ...b.metadata, labels: { v: '2' } } });
      const before = await stateOf(ds, 'IPPool');
      const tryIt = (ops: Parameters<typeof ds.commit>[0]): Promise<unknown> => ds.commit(ops);
      const upd = { op: 'update' as const, object: { ...a, metadata: { ...a.metadata, labels: { x: 'y' } } } };
      const fresh = { op: 'create' as const, object: pool('f-new', '10.9.0.0/16') };
      // stale update (CAS lost)
      await assert.rejects(tryIt([fresh, upd, { op: 'update', object: stale }]), (e) => e instanceof ConflictError && opIndexOf(e) === 2);
      // create of an existing name
      await assert.rejects(tryIt([upd, { op: 'create', object: pool('f-b', '10.2.0.0/16') }]), (e) => e instanceof AlreadyExistsError && opIndexOf(e) === 1);
      // update / delete of something gone
      await assert.rejects(tryIt([fresh, { op: 'update', object: { ...a, metadata: { ...a.metadata, name: 'f-gone' } } }]), (e) => e instanceof NotFoundError && opIndexOf(e) === 1);
      await assert.rejects(tryIt([{ op: 'delete', kind: 'IPPool', name: 'f-gone' }, upd]), (e) => e instanceof NotFoundError && opIndexOf(e) === 0);
      // delete precondition, check of a changed / an existing object
      await assert.rejects(tryIt([upd, { op: 'delete', kind: 'IPPool', name: 'f-b', resourceVersion: b.metadata.resourceVersion! }]), (e) => e instanceof ConflictError && opIndexOf(e) === 1);
      await assert.rejects(tryIt([fresh, { op: 'check', kind: 'IPPool', name: 'f-b', resourceVersion: b.metadata.resourceVersion! }]), (e) => e instanceof ConflictError && opIndexOf(e) === 1);
      await assert.rejects(tryIt([fresh, { op: 'check', kind: 'IPPool', name: 'f-a', resourceVersion: null }]), (e) => e instanceof AlreadyExistsError && opIndexOf(e) === 1);
      await assert.rejects(tryIt([upd, { op: 'check', kind: 'IPPool', name: 'f-gone', resourceVersion: '1' }]), (e) => e instanceof NotFoundError && opIndexOf(e) === 1);
      // update without resourceVersion
      await assert.rejects(tryIt([{ op: 'update', object: { ...a, metadata: { name: 'f-a' } } }]), ConflictError);
      // the same object twice is refused
      await assert.rejects(tryIt([upd, { op: 'check', kind: 'IPPool', name: 'f-a', resourceVersion: a.metadata.resourceVersion! }]), /twice/);
      assert.deepEqual(await stateOf(ds, 'IPPool'), before, 'nothing was written by any failed commit');
      // and with fresh versions the same kind of commit goes through
      await ds.commit([upd, { op: 'delete', kind: 'IPPool', name: 'f-b', resourceVersion: b2.metadata.resourceVersion! }]);
      assert.deepEqual([...(await stateOf(ds, 'IPPool')).keys()], ['f-a']);
    });

    withCommit('watchers see every change of a commit', async (ds, { writer }) => {
      const a = await writer.create(pool('w-a', '10.1.0.0/16'));
      const log = new EventLog().start(ds, 'IPPool');
      try {
        await log.waitForCount('SYNCED', 1);
        await ds.commit([
          { op: 'create', object: pool('w-b', '10.2.0.0/16') },
          { op: 'delete', kind: 'IPPool', name: 'w-a', resourceVersion: a.metadata.resourceVersion! },
        ]);
        await log.waitFor((evs) => evs.some((e) => e.type === 'DELETED'), 'DELETED w-a');
        await log.waitFor((evs) => evs.some((e) => e.type === 'ADDED' && e.object.metadata.name === 'w-b'), 'ADDED w-b');
        assert.deepEqual(replay(log.events), await stateOf(writer, 'IPPool'));
      } finally {
        await log.stop();
      }
    });
  });
}
