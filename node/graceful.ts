/**
 * Graceful restart (RFC 4724), restarting role of tabby-node.
 *
 * "This start is a restart" is decided from the kernel, not from a marker file: when routes with
 * felix's route protocol (80) are in the kernel at startup, a previous run left its forwarding state
 * behind (kill -9, a crash, or a clean stop — stop() keeps the routes on purpose) and pods still
 * forward on it. That is exactly what the F and R bits claim, so the kernel is the witness:
 *
 * - a marker file in TABBY_RUN_DIR would say "the last run did not stop cleanly", which misses the
 *   clean restart (routes kept, R bit still right) and lies after a reboot when the run dir is not a
 *   tmpfs (marker there, routes gone);
 * - the routes are gone after a reboot or a manual flush: then it is a first start (no R bit).
 *
 * A restarting agent announces the R bit on the sessions of its first start and holds its own
 * advertisements and End-of-RIB back (bgp/rib/graceful.ts SelectionDeferral) until it has its
 * routes: the datastore is in sync before the speaker starts (the plan's exports are known), and
 * the peers' End-of-RIBs are in — except peers that restart themselves (they wait for ours: Calico
 * #7144), and never longer than the bound (TABBY_GR_DEFERRAL_TIME, default 30 s, kept below the
 * peers' 120 s restart time so their stale copies outlive the wait).
 */
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';

/** felix's route protocol number (felix/model.ts DEFAULT_NAMES.routeProtocol). */
export const FELIX_ROUTE_PROTOCOL = 80;

export interface RestartState {
  restarting: boolean;
  /** Own-protocol routes found in the kernel at startup. */
  keptRoutes: number;
  /** One line for the log and `tabbyctl node status`. */
  detail: string;
}

/** The decision from the count of own-protocol kernel routes (pure). */
export function restartStateFrom(keptRoutes: number, protocol = FELIX_ROUTE_PROTOCOL): RestartState {
  return keptRoutes > 0
    ? { restarting: true, keptRoutes, detail: `restart: ${keptRoutes} kernel route(s) of protocol ${protocol} kept from the previous run` }
    : { restarting: false, keptRoutes: 0, detail: `first start: no kernel routes of protocol ${protocol}` };
}

/**
 * Count felix's routes in this network namespace (both families). A netlink failure is logged and
 * treated as a first start: the R bit is a claim we only make when we have seen the routes.
 */
export async function kernelRestartState(log: Logger, protocol = FELIX_ROUTE_PROTOCOL): Promise<RestartState> {
  try {
    const { Netlink } = await import('../netlink/index.js');
    const nl = Netlink.open();
    try {
      const routes = await nl.routeList({ protocol });
      return restartStateFrom(routes.length, protocol);
    } finally {
      nl.close();
    }
  } catch (err) {
    log.warn({ err: errorMessage(err) }, 'cannot list kernel routes; starting without the graceful-restart R bit');
    return { restarting: false, keptRoutes: 0, detail: `unknown (cannot list kernel routes: ${errorMessage(err)})` };
  }
}
