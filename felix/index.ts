/** felix/: the dataplane reconciler. See README.md for the layering and the API. */
export * from './model.js';
export * from './calc.js';
export * from './resources.js';
export { DeltaTracker } from './delta.js';
export { RouteTable, type RouteTableOptions, type RouteTableStats } from './routes.js';
export { netlinkShim, ensureSoleAddress, type DataplaneNetlink, type RouteOp, type Unsubscribe } from './shim.js';
export * from './vxlan.js';
export * from './ipip.js';
export * from './sysctl.js';
export * from './mtu.js';
export * from './nat.js';
export { Dataplane, type DataplaneConfig, type DataplaneDeps, type DataplaneStatus } from './dataplane.js';
