import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Resource } from '../../api/meta.js';
import { WatchState } from '../../datastore/common.js';
import type { WatchEvent } from '../../datastore/types.js';

const obj = (name: string, rv: number, labels?: Record<string, string>): Resource => ({
  apiVersion: 'projectcalico.org/v3',
  kind: 'IPPool',
  metadata: { name, resourceVersion: String(rv), ...(labels ? { labels } : {}) },
  spec: {},
});

function harness(filter: (o: Resource) => boolean = () => true): { s: WatchState; out: string[] } {
  const out: string[] = [];
  const s = new WatchState(
    (o) => o.metadata.name,
    filter,
    (e: WatchEvent) => out.push(e.type === 'SYNCED' ? `SYNCED@${e.revision}` : e.type === 'ERROR' ? 'ERROR' : `${e.type} ${e.object.metadata.name}@${e.object.metadata.resourceVersion}`),
  );
  return { s, out };
}

test('WatchState: several keys in one revision survive a resume that replays that revision', () => {
  const { s, out } = harness();
  s.resync([], 10n);
  assert.equal(s.resumeFrom(), 11n);
  // revision 11 carries two keys (one etcd transaction); the stream breaks after the first
  s.change('a', undefined, obj('a', 11), 11n, 'ADDED');
  assert.equal(s.resumeFrom(), 11n, 'revision 11 may be partial: resume at it');
  // replay from 11: a again (dropped), then b (delivered), then 12
  s.change('a', undefined, obj('a', 11), 11n, 'ADDED');
  s.change('b', undefined, obj('b', 11), 11n, 'ADDED');
  s.change('a', obj('a', 11), obj('a', 12), 12n, 'MODIFIED');
  s.change('a', obj('a', 11), obj('a', 12), 12n, 'MODIFIED');
  s.change('b', undefined, obj('b', 9), 9n, 'ADDED'); // older than anything: dropped
  assert.deepEqual(out, ['SYNCED@10', 'ADDED a@11', 'ADDED b@11', 'MODIFIED a@12']);
  s.bookmark(20n);
  assert.equal(s.resumeFrom(), 21n);
});

test('WatchState: a resync emits only differences', () => {
  const { s, out } = harness();
  s.resync([obj('a', 1), obj('b', 2), obj('c', 3)], 3n);
  s.resync([obj('a', 1), obj('b', 5), obj('d', 6)], 7n);
  assert.deepEqual(out, ['ADDED a@1', 'ADDED b@2', 'ADDED c@3', 'SYNCED@3', 'MODIFIED b@5', 'ADDED d@6', 'DELETED c@3', 'SYNCED@7']);
});

test('WatchState: filter transitions become ADDED/DELETED; invisible changes are silent', () => {
  const { s, out } = harness((o) => o.metadata.labels?.x === '1');
  s.resync([obj('a', 1, { x: '1' }), obj('b', 2)], 2n);
  s.change('a', obj('a', 1, { x: '1' }), obj('a', 3, { x: '2' }), 3n, 'MODIFIED'); // leaves
  s.change('b', obj('b', 2), obj('b', 4, { x: '1' }), 4n, 'MODIFIED'); // enters
  s.change('c', undefined, obj('c', 5), 5n, 'ADDED'); // never visible
  s.change('c', obj('c', 5), undefined, 6n, 'DELETED');
  assert.deepEqual(out, ['ADDED a@1', 'SYNCED@2', 'DELETED a@1', 'ADDED b@4']);
});

test('WatchState: seeded from a caller revision, unchanged objects are known and newer ones pass through', () => {
  const { s, out } = harness();
  // the caller listed at 5 and holds a@2 and b@4; meanwhile b changed (rv 7) and c was created (rv 6)
  s.seed([obj('a', 2), obj('b', 7), obj('c', 6)], 5n);
  s.change('c', undefined, obj('c', 6), 6n, 'ADDED');
  s.change('b', obj('b', 4), obj('b', 7), 7n, 'MODIFIED');
  s.change('a', obj('a', 2), undefined, 8n, 'DELETED');
  s.change('d', obj('d', 1), undefined, 9n, 'DELETED'); // deleted object the caller had (not in our seed)
  assert.deepEqual(out, ['ADDED c@6', 'MODIFIED b@7', 'DELETED a@2', 'DELETED d@1']);
});
