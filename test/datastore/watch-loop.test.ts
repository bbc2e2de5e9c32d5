/**
 * runWatchLoop (datastore/watch-loop.ts), the retry loop behind the etcd and Kubernetes watches:
 * first list seeds from the caller's revision or resyncs, relist on request, ERROR events for
 * trouble, stop by abort.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../../api/meta.js';
import { WatchState } from '../../datastore/common.js';
import type { WatchEvent } from '../../datastore/types.js';
import { runWatchLoop, type StreamEnd } from '../../datastore/watch-loop.js';

const obj = (name: string, rv: number): Resource => ({ apiVersion: 'v', kind: 'K', metadata: { name, resourceVersion: String(rv) }, spec: {} });

function harness(ends: Array<StreamEnd | Error>, revision?: string) {
  const ac = new AbortController();
  const events: string[] = [];
  const emit = (ev: WatchEvent<Resource>): void => void events.push(ev.type === 'ERROR' ? `ERROR ${ev.error.message}` : ev.type === 'SYNCED' ? 'SYNCED' : `${ev.type} ${ev.object.metadata.name}`);
  const state = new WatchState<Resource>((o) => o.metadata.name, () => true, emit);
  const calls: string[] = [];
  let lists = 0;
  const done = runWatchLoop({
    signal: ac.signal,
    state,
    revision,
    emit,
    list: async () => {
      calls.push('list');
      lists++;
      return { items: lists === 1 ? [obj('a', 5)] : [obj('a', 5), obj('b', 7)], revision: BigInt(4 + 3 * lists) };
    },
    stream: async (connected) => {
      calls.push('stream');
      const next = ends.shift();
      if (next === undefined) {
        ac.abort();
        return {};
      }
      if (next instanceof Error) throw next;
      if (!next.error) connected();
      return next;
    },
  });
  return { done, events, calls };
}

test('watch loop: resync first, relist when asked, ERROR for trouble, stop by abort', async () => {
  const h = harness([{ error: new Error('connection lost') }, { relist: true, error: new Error('compacted') }, { now: true }]);
  await h.done;
  assert.deepEqual(h.calls, ['list', 'stream', 'stream', 'list', 'stream', 'stream']);
  assert.deepEqual(h.events, ['ADDED a', 'SYNCED', 'ERROR connection lost', 'ERROR compacted', 'ADDED b', 'SYNCED']);
});

test('watch loop: a caller revision seeds (no ADDED for what it has); a throwing stream is an ERROR and retried', async () => {
  const h = harness([new Error('boom'), { now: true }], '6');
  await h.done;
  assert.deepEqual(h.calls, ['list', 'stream', 'stream', 'stream']);
  assert.deepEqual(h.events, ['ERROR boom']);
});
