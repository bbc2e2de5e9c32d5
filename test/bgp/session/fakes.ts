/** In-memory socket and clock for deterministic Session tests. */
import { EventEmitter } from 'node:events';
import type { Clock } from '../../../bgp/session/index.js';

export class FakeSocket extends EventEmitter {
  written: Uint8Array[] = [];
  destroyed = false;
  write(b: Uint8Array): boolean {
    this.written.push(b);
    return true;
  }
  end(): void {
    this.destroyed = true;
  }
  destroy(): void {
    this.destroyed = true;
  }
}

export class FakeClock implements Clock {
  t = 0;
  timers = new Map<number, { at: number; fn: () => void }>();
  private id = 0;
  setTimeout(fn: () => void, ms: number): unknown {
    this.timers.set(++this.id, { at: this.t + ms, fn });
    return this.id;
  }
  clearTimeout(h: unknown): void {
    this.timers.delete(h as number);
  }
  now(): number {
    return this.t;
  }
}

