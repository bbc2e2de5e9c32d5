/**
 * The retry loop every watch transport shares (etcd-watch.ts for both etcd transports,
 * kubernetes.ts): list (seed from the caller's revision the first time, else resync), stream, and
 * when the stream ends decide — relist or resume, at once or after a backoff — with an ERROR event
 * for trouble; stop by aborting the signal. The transport supplies only list() and stream().
 */
import type { Resource } from '../api/meta.js';
import { backoffDelay, rev, sleep, type WatchState } from './common.js';
import type { WatchEvent } from './types.js';

/** How one stream ended. */
export interface StreamEnd {
  /** List again before the next stream (compaction, 410 Gone, a server-side cancel). */
  relist?: boolean;
  /** Reported as an ERROR event. */
  error?: Error;
  /** Go on without the backoff (a normal server-side timeout, a first 410). */
  now?: boolean;
}

export interface WatchLoop<T extends Resource> {
  signal: AbortSignal;
  state: WatchState<T>;
  /** The caller's starting revision (WatchOptions.revision): seed instead of resync on the first list. */
  revision: string | undefined;
  emit(ev: WatchEvent<T>): void;
  list(): Promise<{ items: T[]; revision: bigint }>;
  /** One stream from state.resumeFrom(); `connected()` resets the backoff. Never rejects for a lost stream. */
  stream(connected: () => void): Promise<StreamEnd>;
}

/** Run until the signal aborts (the returned promise then resolves). */
export async function runWatchLoop<T extends Resource>(w: WatchLoop<T>): Promise<void> {
  let attempt = 0;
  const connected = (): void => {
    attempt = 0;
  };
  let needList = true;
  let started = false;
  while (!w.signal.aborted) {
    try {
      if (needList) {
        const { items, revision } = await w.list();
        if (w.signal.aborted) return;
        if (!started && w.revision !== undefined) w.state.seed(items, rev(w.revision));
        else w.state.resync(items, revision);
        started = true;
        needList = false;
      }
      const end = await w.stream(connected);
      if (w.signal.aborted) return;
      if (end.relist) needList = true;
      if (end.error) w.emit({ type: 'ERROR', error: end.error });
      if (end.now) continue;
    } catch (err) {
      if (w.signal.aborted) return;
      w.emit({ type: 'ERROR', error: err instanceof Error ? err : new Error(String(err)) });
    }
    await sleep(backoffDelay(attempt++), w.signal);
  }
}
