/**
 * The etcd watch loop shared by both etcd transports (etcd.ts: gRPC, etcd-http.ts: JSON gateway).
 * The transport supplies two things: a range read of the watched prefix and a change stream
 * starting at a revision; everything else is here:
 *
 * - without a caller's revision: list, emit ADDED… + SYNCED (WatchState.resync), then stream from
 *   the list revision + 1; with one: list once to learn which objects the caller already has
 *   (WatchState.seed) and stream from revision + 1;
 * - a stream that ends with a lost connection is reopened from the last delivered revision + 1
 *   (WatchState.resumeFrom: no loss, duplicates dropped) after a backoff, with an ERROR event;
 * - a stream that etcd cancels (compaction: "required revision has been compacted") is followed by a
 *   relist that emits only the differences (WatchState.resync), then SYNCED;
 * - stop() ends delivery at once and closes the current stream.
 */
import type { KindInfo } from '../api/kinds.js';
import type { Resource } from '../api/meta.js';
import type { Logger } from '../lib/log.js';
import { WatchState, keyOf, listFilter, sleep } from './common.js';
import { runWatchLoop } from './watch-loop.js';
import type { WatchEvent, WatchOptions, Watcher } from './types.js';

/** One change from an etcd watch response, values already decoded by the transport. */
export interface EtcdChange<T extends Resource = Resource> {
  /** The full etcd key. */
  key: string;
  type: 'PUT' | 'DELETE';
  /** The new state (PUT). */
  cur?: T;
  /** The state before (the watch asks for prev_kv; absent when etcd no longer has it). */
  prev?: T;
  modRevision: bigint;
  createRevision: bigint;
}

/** What a transport's stream() gets to report into. */
export interface EtcdStreamContext<T extends Resource = Resource> {
  /** Revision the stream must start at (the last delivered revision + 1). */
  readonly from: bigint;
  readonly signal: AbortSignal;
  /** Revision to restart at right now (for transports that reconnect by themselves). */
  resumeFrom(): bigint;
  /** The watch was created on the server: resets the reconnect backoff. */
  connected(): void;
  change(c: EtcdChange<T>): void;
  /** Connection trouble the transport recovers from by itself: an informational ERROR event. */
  trouble(err: Error): void;
  /** How to close the current stream when stop() is called (awaited, bounded). */
  onStop(fn: (() => Promise<void>) | undefined): void;
}

/**
 * How a stream ended: `relist` when etcd cancelled the watch (compaction, or any server-side
 * cancel) — the loop relists; otherwise (lost connection) it reopens from the last revision.
 */
export interface EtcdStreamEnd {
  relist: boolean;
  error: Error;
}

export interface EtcdWatchSource<T extends Resource = Resource> {
  info: KindInfo;
  /** The store's key prefix (ETCD_KEY_PREFIX); objects of the kind live under `<keyPrefix><plural>/`. */
  keyPrefix: string;
  log: Logger;
  /** The transport's live watchers (close() stops them): the watcher is in it until stop(). */
  registry: Set<Watcher>;
  /** Range read of the watched keys: every object (unfiltered) and the header revision. */
  list(): Promise<{ items: T[]; revision: bigint }>;
  /** Open one change stream; resolve when it has ended (never reject). */
  stream(ctx: EtcdStreamContext<T>): Promise<EtcdStreamEnd>;
}

/** A watch over one kind with the contract of types.ts, on top of a transport's list + stream. */
export function etcdWatch<T extends Resource>(src: EtcdWatchSource<T>, opts: WatchOptions, onEvent: (ev: WatchEvent<T>) => void): Watcher {
  const { info } = src;
  const ac = new AbortController();
  const emit = (ev: WatchEvent<T>): void => {
    if (!ac.signal.aborted) onEvent(ev);
  };
  const state = new WatchState<T>((o) => keyOf(info, o), listFilter(info, opts), emit);
  let stopCurrent: (() => Promise<void>) | undefined;

  const kindPrefix = `${src.keyPrefix}${info.plural}/`;
  const apply = (c: EtcdChange<T>): void => {
    const shortKey = c.key.slice(kindPrefix.length);
    if (c.type === 'PUT' && c.cur) {
      state.change(shortKey, c.prev, c.cur, c.modRevision, c.createRevision === c.modRevision ? 'ADDED' : 'MODIFIED');
    } else if (c.type === 'DELETE') {
      state.change(shortKey, c.prev, undefined, c.modRevision, 'DELETED');
    }
  };

  void runWatchLoop({
    signal: ac.signal,
    state,
    revision: opts.revision,
    emit,
    list: () => src.list(),
    stream: async (connected) => {
      const end = await src.stream({
        from: state.resumeFrom(),
        signal: ac.signal,
        resumeFrom: () => state.resumeFrom(),
        connected,
        change: (c) => {
          if (!ac.signal.aborted) apply(c);
        },
        trouble: (err) => emit({ type: 'ERROR', error: err }),
        onStop: (fn) => {
          stopCurrent = fn;
        },
      });
      stopCurrent = undefined;
      // etcd cancelled the watch (usually "required revision has been compacted"): relist.
      if (end.relist && !ac.signal.aborted) src.log.info({ err: end.error.message, kind: info.kind }, 'etcd watch cancelled; relisting');
      return { relist: end.relist, error: end.error };
    },
  });

  const handle: Watcher = {
    stop: async () => {
      if (ac.signal.aborted) return;
      const close = stopCurrent;
      ac.abort();
      src.registry.delete(handle);
      if (close) {
        // Closing may wait for the server's answer; do not wait forever when it is gone.
        const bound = new AbortController();
        await Promise.race([close().catch(() => undefined), sleep(2000, bound.signal)]);
        bound.abort();
      }
    },
  };
  src.registry.add(handle);
  return handle;
}
