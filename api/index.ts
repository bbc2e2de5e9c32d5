/** The public surface of the resource model. */
export type { ObjectMeta, Resource } from './meta.js';
export { API_VERSION_CRD_V1, API_VERSION_V3, CRD_GROUP } from './meta.js';
export { KINDS, findKind, kindInfo, type KindInfo } from './kinds.js';
export type * from './types.js';
export {
  applyDefaults,
  effectiveMaxBlocksPerHost,
  BGPCONFIG_DEFAULTS,
  CALICO_NODE_STATUS_DEFAULTS,
  DEFAULT_AS_NUMBER,
  DEFAULT_BGP_PORT,
  DEFAULT_BLOCK_SIZE_V4,
  DEFAULT_BLOCK_SIZE_V6,
  DEFAULT_MAX_BLOCKS_PER_HOST,
  FELIX_DEFAULTS,
  IPAMCONFIG_DEFAULTS,
  IPPOOL_DEFAULTS,
} from './defaults.js';
export { ValidationError, validatePoolOverlap, validateResource, validateUpdate, parsePeerIP } from './validate.js';
export { parseSelector, SelectorError, type Selector, type SelectorNode } from './selector.js';
export { affinityName, blockCidrFromName, blockName, handleObjectName, NameError, workloadEndpointName } from './names.js';
export { schemaFor, objectSchema, type KindSchemas, type Schema } from './schemas.js';
export { crdFileName, crdObject, renderCrds } from './crd.js';
export {
  canonicalCidr,
  cidrContains,
  cidrsOverlap,
  ipToString,
  isMasked,
  networkOf,
  parseCidr,
  parseIP,
  type IPAddress,
  type ParsedCidr,
} from './net.js';
export { columnsFor, tableRows, type Column, type ColumnContext, type ColumnSet } from './columns.js';
