/**
 * Keeps a current view of the cluster's Services and Endpoints for per-service advertisement
 * (node/advertise.ts serviceHostRoutes): lists them from the Kubernetes core API every `refreshMs`
 * while active (only when the BGPConfiguration advertises service IPs), and calls `onChange` when
 * the view changed. A failed list keeps the last view (an API hiccup must not withdraw routes).
 */
import type { Logger } from '../lib/log.js';
import { errorMessage } from '../lib/errors.js';
import type { EndpointsView, ServiceView } from './advertise.js';
import type { ServiceSource } from './secrets.js';

export const DEFAULT_SERVICE_REFRESH_MS = 10_000;

export interface ServiceViewOptions {
  source: ServiceSource;
  refreshMs?: number;
  onChange: () => void;
  log?: Logger;
}

export class ServiceWatcher {
  private view: { services: ServiceView[]; endpoints: EndpointsView[] } = { services: [], endpoints: [] };
  private signature = '';
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private failing = false;

  constructor(private readonly opts: ServiceViewOptions) {}

  get services(): readonly ServiceView[] {
    return this.view.services;
  }

  get endpoints(): readonly EndpointsView[] {
    return this.view.endpoints;
  }

  /** Poll while active; inactive clears the view (nothing to advertise). */
  setActive(active: boolean): void {
    if (active && !this.timer) {
      this.timer = setInterval(() => void this.refresh(), this.opts.refreshMs ?? DEFAULT_SERVICE_REFRESH_MS);
      this.timer.unref();
      void this.refresh();
    } else if (!active && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
      this.view = { services: [], endpoints: [] };
      this.signature = '';
    }
  }

  stop(): void {
    this.setActive(false);
  }

  /** List once now (tests call it instead of waiting for the timer). */
  refresh(): Promise<void> {
    this.running ??= this.list().finally(() => (this.running = undefined));
    return this.running;
  }

  private async list(): Promise<void> {
    let next: { services: ServiceView[]; endpoints: EndpointsView[] };
    try {
      next = await this.opts.source.list();
    } catch (err) {
      if (!this.failing) this.opts.log?.warn({ err: errorMessage(err) }, 'cannot list Services/Endpoints for service advertisement; keeping the last view');
      this.failing = true;
      return;
    }
    this.failing = false;
    if (!this.timer) return; // deactivated meanwhile
    const sig = JSON.stringify(next);
    if (sig === this.signature) return;
    this.signature = sig;
    this.view = next;
    this.opts.onChange();
  }
}
