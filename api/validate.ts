/**
 * Validation: ajv over the schemas in schemas.ts (the same ones published in crds/), then the rules a
 * schema cannot say (masked CIDRs, link-local overlap, encapsulation, block sizes, selectors, …).
 * Every problem names the field and the rule, e.g.
 * `spec.cidr: 10.0.0.1/16 is not a network address (did you mean 10.0.0.0/16?)`.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import formatsModule from 'ajv-formats';
import { TabbyError } from '../lib/errors.js';
import { applyDefaults } from './defaults.js';
import { KINDS, type KindInfo } from './kinds.js';
import { API_VERSION_CRD_V1, API_VERSION_V3, type Resource } from './meta.js';
import { canonicalCidr, cidrsOverlap, isMasked, parseCidr, parseIP, parsePeerIP, type ParsedCidr } from './net.js';
// parsePeerIP lives in net.ts (no ajv) so that tabby-node can use it without loading the validator.
export { parsePeerIP } from './net.js';
import { schemaFor, type Schema } from './schemas.js';
import { parseSelector, SelectorError } from './selector.js';
import type { AnyResource, IPPool } from './types.js';

export class ValidationError extends TabbyError {
  /** One line per problem, each starting with the field path. */
  readonly problems: string[];
  constructor(subject: string, problems: string[]) {
    super('Invalid', `${subject}: ${problems.join('; ')}`, { hint: 'fix the named fields and try again' });
    this.problems = problems;
  }
}

// ---- ajv set-up ---------------------------------------------------------------------------------

const addFormats = ((formatsModule as unknown as { default?: unknown }).default ?? formatsModule) as (a: Ajv, f: string[]) => Ajv;
const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictTypes: false });
addFormats(ajv, ['date-time', 'int64', 'int32']);
ajv.addFormat('cidr', { type: 'string', validate: (s: string) => parseCidr(s) !== undefined });
ajv.addFormat('ip', { type: 'string', validate: (s: string) => parseIP(s) !== undefined });
ajv.addKeyword({ keyword: 'x-kubernetes-int-or-string', schemaType: 'boolean' });

const NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DURATION_PATTERN = '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))*$';
const MAC_PATTERN = '^([0-9a-fA-F]{2})(:[0-9a-fA-F]{2}){5}$';

const metadataSchema: Schema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    namespace: { type: 'string' },
    labels: { type: 'object', additionalProperties: { type: 'string' } },
    annotations: { type: 'object', additionalProperties: { type: 'string' } },
    resourceVersion: { type: 'string' },
    uid: { type: 'string' },
  },
  required: ['name'],
  // Kubernetes metadata carries many more fields (generation, managedFields, …): keep them.
  additionalProperties: true,
};

/** ajv is strict about unknown fields (as calicoctl): close every object that lists its properties. */
function closed(s: Schema): Schema {
  const out: Schema = { ...s };
  if (s.properties) {
    out.properties = Object.fromEntries(Object.entries(s.properties).map(([k, v]) => [k, closed(v)]));
    if (s.additionalProperties === undefined) out.additionalProperties = false;
  }
  if (typeof s.additionalProperties === 'object') out.additionalProperties = closed(s.additionalProperties);
  if (s.items) out.items = closed(s.items);
  if (s.anyOf) out.anyOf = s.anyOf.map(closed);
  return out;
}

const validators = new Map<string, ValidateFunction>();
function validatorFor(kind: string): ValidateFunction {
  let v = validators.get(kind);
  if (!v) {
    const s = schemaFor(kind);
    const envelope: Schema = {
      type: 'object',
      properties: {
        apiVersion: { type: 'string' },
        kind: { type: 'string' },
        metadata: metadataSchema,
        spec: closed(s.spec),
        ...(s.status ? { status: closed(s.status) } : {}),
      },
      required: ['apiVersion', 'kind', 'metadata', 'spec'],
      additionalProperties: false,
    };
    v = ajv.compile(envelope);
    validators.set(kind, v);
  }
  return v;
}

// ---- ajv errors → field messages ------------------------------------------------------------------

function fieldPath(pointer: string, extra?: string): string {
  const segs = pointer.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra !== undefined) segs.push(extra);
  let out = '';
  for (const s of segs) {
    if (/^\d+$/.test(s)) out += `[${s}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(s)) out += out ? `.${s}` : s;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out || '(object)';
}

function show(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : String(v);
}

const FORMAT_TEXT: Record<string, string> = {
  cidr: 'a CIDR like 10.244.0.0/16',
  ip: 'an IP address',
  'date-time': 'an RFC 3339 timestamp',
  int64: 'a 64-bit integer',
  int32: 'a 32-bit integer',
};

function describe(e: ErrorObject): string | undefined {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return `${fieldPath(e.instancePath, String(p.missingProperty))}: is required`;
    case 'additionalProperties': {
      const field = String(p.additionalProperty);
      const known = Object.keys((e.parentSchema as Schema | undefined)?.properties ?? {});
      const near = known.find((k) => k.toLowerCase() === field.toLowerCase());
      return `${fieldPath(e.instancePath, field)}: unknown field${near ? ` (did you mean ${near}?)` : ''}`;
    }
    case 'enum':
      return `${fieldPath(e.instancePath)}: ${show(e.data)} is not one of ${(p.allowedValues as unknown[]).map((x) => (x === '' ? '""' : String(x))).join(', ')}`;
    case 'type': {
      const t = String(p.type);
      const article = t === 'integer' || t === 'object' || t === 'array' ? 'an' : 'a';
      return `${fieldPath(e.instancePath)}: must be ${article} ${t} (got ${show(e.data)})`;
    }
    case 'format':
      return `${fieldPath(e.instancePath)}: ${show(e.data)} is not ${FORMAT_TEXT[String(p.format)] ?? `in format ${String(p.format)}`}`;
    case 'pattern': {
      const what = p.pattern === DURATION_PATTERN ? 'a duration like 90s or 1m30s' : p.pattern === MAC_PATTERN ? 'a MAC address like ee:ee:ee:ee:ee:ee' : `matching ${String(p.pattern)}`;
      return `${fieldPath(e.instancePath)}: ${show(e.data)} is not ${what}`;
    }
    case 'minimum':
      return `${fieldPath(e.instancePath)}: ${show(e.data)} is below the minimum ${String(p.limit)}`;
    case 'maximum':
      return `${fieldPath(e.instancePath)}: ${show(e.data)} is above the maximum ${String(p.limit)}`;
    case 'maxLength':
      return `${fieldPath(e.instancePath)}: ${show(e.data)} is longer than ${String(p.limit)} characters`;
    case 'minLength':
      return `${fieldPath(e.instancePath)}: must be at least ${String(p.limit)} characters`;
    case 'anyOf':
      return `${fieldPath(e.instancePath)}: must be an integer or a string (got ${show(e.data)})`;
    default:
      return `${fieldPath(e.instancePath)}: ${e.message ?? e.keyword}`;
  }
}

function schemaProblems(kind: string, obj: unknown): string[] {
  const v = validatorFor(kind);
  if (v(obj)) return [];
  const out: string[] = [];
  for (const e of v.errors ?? []) {
    if (e.schemaPath.includes('/anyOf/')) continue; // reported once by the anyOf error itself
    const m = describe(e);
    if (m && !out.includes(m)) out.push(m);
  }
  return out;
}

// ---- rules beyond the schema ------------------------------------------------------------------------

type Spec = Record<string, unknown>;
const LINK_LOCAL = [parseCidr('169.254.0.0/16')!, parseCidr('fe80::/10')!];

/** Parse a CIDR field that passed the schema; report it when not masked. */
function maskedCidr(field: string, value: unknown, problems: string[]): ParsedCidr | undefined {
  if (typeof value !== 'string') return undefined;
  const c = parseCidr(value);
  if (!c) return undefined; // the schema already said so
  if (!isMasked(c)) problems.push(`${field}: ${value} is not a network address (did you mean ${canonicalCidr(c)}?)`);
  return c;
}

function selectorField(field: string, value: unknown, problems: string[], opts: { noGlobal?: boolean } = {}): void {
  if (typeof value !== 'string') return;
  try {
    const sel = parseSelector(value);
    if (opts.noGlobal && sel.usesGlobal) problems.push(`${field}: global() is not allowed here`);
  } catch (err) {
    if (!(err instanceof SelectorError)) throw err;
    problems.push(`${field}: ${err.message}`);
  }
}

function checkIPPool(spec: Spec, problems: string[]): void {
  const c = maskedCidr('spec.cidr', spec.cidr, problems);
  const ipip = spec.ipipMode ?? 'Never';
  const vxlan = spec.vxlanMode ?? 'Never';
  if (c) {
    for (const ll of LINK_LOCAL) {
      if (cidrsOverlap(c, ll)) problems.push(`spec.cidr: ${String(spec.cidr)} overlaps the link-local range ${canonicalCidr(ll)}`);
    }
    const bs = spec.blockSize;
    if (typeof bs === 'number' && Number.isInteger(bs)) {
      const [lo, hi] = c.family === 4 ? [20, 32] : [116, 128];
      if (bs < lo || bs > hi) problems.push(`spec.blockSize: ${bs} is out of range for an IPv${c.family} pool (${lo}..${hi})`);
      else if (c.prefix > bs) problems.push(`spec.blockSize: /${bs} blocks do not fit in the /${c.prefix} pool (blockSize must be at least the pool prefix length ${c.prefix})`);
    }
    if (c.family === 6 && ipip !== 'Never') problems.push(`spec.ipipMode: IPIP is not supported on IPv6 pools (set ipipMode Never or use vxlanMode)`);
  }
  if (ipip !== 'Never' && vxlan !== 'Never') {
    problems.push(`spec.ipipMode: IPIP and VXLAN cannot both be enabled (ipipMode ${String(ipip)}, vxlanMode ${String(vxlan)}); set one of them to Never`);
  }
  selectorField('spec.nodeSelector', spec.nodeSelector, problems, { noGlobal: true });
  selectorField('spec.namespaceSelector', spec.namespaceSelector, problems);
  const uses = Array.isArray(spec.allowedUses) ? (spec.allowedUses as unknown[]) : [];
  if (new Set(uses).size !== uses.length) problems.push(`spec.allowedUses: lists a use twice`);
  if (uses.includes('LoadBalancer')) {
    if (uses.length > 1) problems.push(`spec.allowedUses: LoadBalancer cannot be combined with Workload or Tunnel`);
    if (ipip !== 'Never' || vxlan !== 'Never') problems.push(`spec.allowedUses: a LoadBalancer pool cannot use IPIP or VXLAN`);
    if (spec.nodeSelector !== undefined && spec.nodeSelector !== 'all()') problems.push(`spec.nodeSelector: must be all() on a LoadBalancer pool`);
  }
}

function checkIPAMBlock(spec: Spec, problems: string[]): void {
  const c = maskedCidr('spec.cidr', spec.cidr, problems);
  const allocs = spec.allocations;
  if (c && Array.isArray(allocs)) {
    const hostBits = (c.family === 4 ? 32 : 128) - c.prefix;
    const size = hostBits <= 20 ? 2 ** hostBits : undefined;
    if (size === undefined) problems.push(`spec.cidr: a /${c.prefix} block is too large (at most ${2 ** 20} addresses)`);
    else if (allocs.length !== size) problems.push(`spec.allocations: has ${allocs.length} entries but a /${c.prefix} block has ${size} addresses`);
  }
  const nAttrs = Array.isArray(spec.attributes) ? spec.attributes.length : 0;
  if (Array.isArray(allocs)) {
    allocs.forEach((a, i) => {
      if (typeof a === 'number' && (a < 0 || a >= nAttrs)) problems.push(`spec.allocations[${i}]: ${a} is not an index into attributes (${nAttrs} entries)`);
    });
  }
}

function checkBlockAffinity(spec: Spec, problems: string[]): void {
  maskedCidr('spec.cidr', spec.cidr, problems);
  if (typeof spec.deleted === 'string' && spec.deleted !== 'true' && spec.deleted !== 'false') {
    problems.push(`spec.deleted: ${JSON.stringify(spec.deleted)} must be "true" or "false" (a string in crd.projectcalico.org/v1)`);
  }
  if (typeof spec.type === 'string' && !['', 'host', 'virtual'].includes(spec.type)) {
    problems.push(`spec.type: ${JSON.stringify(spec.type)} is not one of host, virtual`);
  }
}

function checkIPAMHandle(spec: Spec, problems: string[]): void {
  const block = spec.block;
  if (block && typeof block === 'object') {
    for (const k of Object.keys(block)) {
      if (!parseCidr(k)) problems.push(`spec.block[${JSON.stringify(k)}]: key is not a block CIDR`);
    }
  }
}

function checkIPAMConfiguration(r: Resource, spec: Spec, problems: string[]): void {
  if (r.metadata.name !== 'default') problems.push(`metadata.name: IPAMConfiguration is a singleton and must be named "default"`);
  if (spec.strictAffinity === true && spec.autoAllocateBlocks === false) {
    problems.push(`spec.autoAllocateBlocks: cannot be false while strictAffinity is true (nodes could get no addresses at all)`);
  }
}

function checkBGPConfiguration(spec: Spec, problems: string[]): void {
  for (const f of ['serviceClusterIPs', 'serviceExternalIPs', 'serviceLoadBalancerIPs'] as const) {
    const list = spec[f];
    if (Array.isArray(list)) list.forEach((x: unknown, i) => maskedCidr(`spec.${f}[${i}].cidr`, (x as Spec | null)?.cidr, problems));
  }
  const ads = spec.prefixAdvertisements;
  if (Array.isArray(ads)) ads.forEach((x: unknown, i) => maskedCidr(`spec.prefixAdvertisements[${i}].cidr`, (x as Spec | null)?.cidr, problems));
}


function checkBGPPeer(spec: Spec, problems: string[]): void {
  if (spec.node !== undefined && spec.nodeSelector !== undefined) problems.push(`spec.nodeSelector: cannot be combined with spec.node (pick one)`);
  if (spec.peerIP !== undefined && spec.peerSelector !== undefined) problems.push(`spec.peerSelector: cannot be combined with spec.peerIP (pick one)`);
  if (typeof spec.peerIP === 'string' && !parsePeerIP(spec.peerIP)) {
    problems.push(`spec.peerIP: ${JSON.stringify(spec.peerIP)} is not an IP, IP:port or [IPv6]:port`);
  }
  selectorField('spec.nodeSelector', spec.nodeSelector, problems);
  selectorField('spec.peerSelector', spec.peerSelector, problems);
  selectorField('spec.localWorkloadSelector', spec.localWorkloadSelector, problems);
}

/** The cross-field rules Calico's BGPFilter CRD states in CEL, plus the family of each CIDR. */
function checkBGPFilter(spec: Spec, problems: string[]): void {
  for (const list of ['exportV4', 'importV4', 'exportV6', 'importV6'] as const) {
    const rules = spec[list];
    if (!Array.isArray(rules)) continue;
    const want = list.endsWith('V4') ? 4 : 6;
    rules.forEach((x: unknown, i) => {
      if (!x || typeof x !== 'object') return;
      const r = x as Spec;
      const at = `spec.${list}[${i}]`;
      const hasCidr = typeof r.cidr === 'string' && r.cidr !== '';
      const hasOp = typeof r.matchOperator === 'string' && r.matchOperator !== '';
      if (hasCidr !== hasOp) problems.push(`${at}: cidr and matchOperator must both be set or both be empty`);
      if (r.prefixLength !== undefined && !hasCidr) problems.push(`${at}.prefixLength: cidr is required when prefixLength is set`);
      const c = hasCidr ? parseCidr(r.cidr as string) : undefined;
      if (c && c.family !== want) problems.push(`${at}.cidr: ${String(r.cidr)} is not an IPv${want} CIDR (${list} takes IPv${want})`);
      if (typeof r.interface === 'string' && !/^[a-zA-Z0-9_.*-]{1,15}$/.test(r.interface)) {
        problems.push(`${at}.interface: ${JSON.stringify(r.interface)} is not an interface name or glob (letters, digits, "_.-" and "*", at most 15)`);
      }
      const ops = r.operations;
      if (Array.isArray(ops) && ops.length > 0 && r.action !== 'Accept') problems.push(`${at}.operations: operations may only be used with action Accept`);
      if (Array.isArray(ops)) {
        ops.forEach((o: unknown, j) => {
          const set = o && typeof o === 'object' ? Object.keys(o).filter((k) => (o as Spec)[k] !== undefined && (o as Spec)[k] !== null) : [];
          if (set.length !== 1) problems.push(`${at}.operations[${j}]: exactly one operation must be set (addCommunity, prependASPath or setPriority)`);
        });
      }
    });
  }
}

function checkFelix(spec: Spec, problems: string[]): void {
  const r = spec.natPortRange;
  if (typeof r === 'string' || typeof r === 'number') {
    const m = /^(\d{1,5})(?::(\d{1,5}))?$/.exec(String(r));
    const lo = m ? Number(m[1]) : NaN;
    const hi = m?.[2] !== undefined ? Number(m[2]) : lo;
    if (!m || lo < 1 || hi > 65535 || lo > hi) problems.push(`spec.natPortRange: ${show(r)} is not a port or a range like 32768:65535`);
  }
}

function checkNode(spec: Spec, problems: string[]): void {
  const bgp = spec.bgp as Spec | undefined;
  if (bgp && typeof bgp === 'object') {
    const v4 = typeof bgp.ipv4Address === 'string' ? parseCidr(bgp.ipv4Address) : undefined;
    if (v4 && v4.family !== 4) problems.push(`spec.bgp.ipv4Address: ${String(bgp.ipv4Address)} is not an IPv4 address`);
    const v6 = typeof bgp.ipv6Address === 'string' ? parseCidr(bgp.ipv6Address) : undefined;
    if (v6 && v6.family !== 6) problems.push(`spec.bgp.ipv6Address: ${String(bgp.ipv6Address)} is not an IPv6 address`);
    const tun = typeof bgp.ipv4IPIPTunnelAddr === 'string' ? parseIP(bgp.ipv4IPIPTunnelAddr) : undefined;
    if (tun && tun.kind() !== 'ipv4') problems.push(`spec.bgp.ipv4IPIPTunnelAddr: must be an IPv4 address`);
  }
  const vx = typeof spec.ipv4VXLANTunnelAddr === 'string' ? parseIP(spec.ipv4VXLANTunnelAddr) : undefined;
  if (vx && vx.kind() !== 'ipv4') problems.push(`spec.ipv4VXLANTunnelAddr: must be an IPv4 address`);
}

function checkMetadata(r: Resource, info: KindInfo, problems: string[]): void {
  const { name, namespace } = r.metadata ?? {};
  if (typeof name === 'string') {
    if (name.length === 0) problems.push('metadata.name: is required');
    else if (name.length > 253) problems.push(`metadata.name: is longer than 253 characters`);
    else if (!NAME_RE.test(name)) problems.push(`metadata.name: ${JSON.stringify(name)} must be lower-case letters, digits, '-' and '.', starting and ending with a letter or digit`);
  }
  if (!info.namespaced && namespace !== undefined && namespace !== '') problems.push(`metadata.namespace: ${info.kind} is cluster-scoped; remove the namespace`);
  if (info.namespaced && typeof namespace === 'string' && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(namespace)) {
    problems.push(`metadata.namespace: ${JSON.stringify(namespace)} is not a valid namespace name`);
  }
  if (info.kind === 'ClusterInformation' && name !== 'default') problems.push(`metadata.name: ClusterInformation is a singleton and must be named "default"`);
}

function semanticProblems(r: Resource, info: KindInfo): string[] {
  const problems: string[] = [];
  checkMetadata(r, info, problems);
  const spec = (r.spec ?? {}) as Spec;
  if (typeof spec !== 'object') return problems;
  switch (info.kind) {
    case 'IPPool':
      checkIPPool(spec, problems);
      break;
    case 'IPAMBlock':
      checkIPAMBlock(spec, problems);
      break;
    case 'BlockAffinity':
      checkBlockAffinity(spec, problems);
      break;
    case 'IPAMHandle':
      checkIPAMHandle(spec, problems);
      break;
    case 'IPAMConfiguration':
      checkIPAMConfiguration(r, spec, problems);
      break;
    case 'BGPConfiguration':
      checkBGPConfiguration(spec, problems);
      break;
    case 'BGPPeer':
      checkBGPPeer(spec, problems);
      break;
    case 'BGPFilter':
      checkBGPFilter(spec, problems);
      break;
    case 'FelixConfiguration':
      checkFelix(spec, problems);
      break;
    case 'Node':
      checkNode(spec, problems);
      break;
    case 'WorkloadEndpoint': {
      const nets = spec.ipNetworks;
      if (Array.isArray(nets)) nets.forEach((n, i) => maskedCidr(`spec.ipNetworks[${i}]`, n, problems));
      break;
    }
    default:
      break;
  }
  return problems;
}

// ---- entry points -----------------------------------------------------------------------------------

const IPAM_STORAGE_KINDS = new Set(['IPAMBlock', 'BlockAffinity', 'IPAMHandle']);

function subjectOf(obj: unknown): string {
  const o = obj as { kind?: unknown; metadata?: { name?: unknown } } | null;
  const kind = typeof o?.kind === 'string' ? o.kind : 'resource';
  const name = typeof o?.metadata?.name === 'string' ? ` ${JSON.stringify(o.metadata.name)}` : '';
  return `${kind}${name} is invalid`;
}

/** Resolve kind + apiVersion; v1 storage names (IPAMConfig) are converted to their v3 kind. */
function resolveKind(o: Record<string, unknown>): { info: KindInfo; obj: Record<string, unknown> } {
  const kind = o.kind;
  const apiVersion = o.apiVersion;
  const subject = subjectOf(o);
  if (typeof kind !== 'string' || kind === '') throw new ValidationError(subject, ['kind: is required']);
  const byV3 = KINDS.find((k) => k.kind === kind);
  const byV1 = KINDS.find((k) => k.v1Kind === kind && k.kind !== kind);
  const info = byV3 ?? byV1;
  if (!info) {
    const near = KINDS.find((k) => k.kind.toLowerCase() === kind.toLowerCase() || k.aliases.includes(kind.toLowerCase()));
    throw new ValidationError(subject, [
      `kind: unknown kind ${JSON.stringify(kind)}${near ? ` (did you mean ${near.kind}?)` : ''}; known kinds: ${KINDS.map((k) => k.kind).join(', ')}`,
    ]);
  }
  if (typeof apiVersion !== 'string' || apiVersion === '') throw new ValidationError(subject, [`apiVersion: is required (use ${API_VERSION_V3})`]);
  if (byV1) {
    if (apiVersion !== API_VERSION_CRD_V1) throw new ValidationError(subject, [`kind: ${kind} is the ${API_VERSION_CRD_V1} storage name; with apiVersion ${API_VERSION_V3} use kind ${info.kind}`]);
    return { info, obj: { ...o, apiVersion: API_VERSION_V3, kind: info.kind } };
  }
  const ok = apiVersion === API_VERSION_V3 || (IPAM_STORAGE_KINDS.has(info.kind) && apiVersion === API_VERSION_CRD_V1);
  if (!ok) {
    const allowed = IPAM_STORAGE_KINDS.has(info.kind) ? `${API_VERSION_CRD_V1} or ${API_VERSION_V3}` : API_VERSION_V3;
    throw new ValidationError(subject, [`apiVersion: ${JSON.stringify(apiVersion)} is not supported for ${info.kind} (use ${allowed})`]);
  }
  return { info, obj: o };
}

/**
 * Check a decoded manifest/object and return it with defaults applied (a new object). Throws
 * ValidationError (code Invalid) listing every problem found.
 */
export function validateResource(obj: unknown): AnyResource {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    throw new ValidationError('resource is invalid', [`(object): must be an object with apiVersion, kind, metadata and spec (got ${show(obj)})`]);
  }
  const { info, obj: o } = resolveKind(obj as Record<string, unknown>);
  const r = applyDefaults(o as unknown as Resource);
  const problems = schemaProblems(info.kind, r);
  if (r.metadata && typeof r.metadata === 'object') problems.push(...semanticProblems(r, info).filter((p) => !problems.includes(p)));
  if (problems.length) throw new ValidationError(subjectOf(r), problems);
  return r as AnyResource;
}

function cidrKey(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  const c = parseCidr(v);
  return c ? canonicalCidr(c) : v;
}

/**
 * Validate `next` as a replacement of the stored `old` (same kind and name) and enforce immutable
 * fields: IPPool cidr/blockSize; IPAMBlock/BlockAffinity cidr. Returns `next` with defaults applied.
 */
export function validateUpdate(old: Resource, next: unknown): AnyResource {
  const n = validateResource(next);
  const o = applyDefaults(old);
  const problems: string[] = [];
  if (o.kind !== n.kind) problems.push(`kind: cannot change from ${o.kind} to ${n.kind}`);
  if (o.metadata?.name !== n.metadata.name) problems.push(`metadata.name: cannot change from ${JSON.stringify(o.metadata?.name)} to ${JSON.stringify(n.metadata.name)}`);
  const os = (o.spec ?? {}) as Spec;
  const ns = (n.spec ?? {}) as Spec;
  const immutable = n.kind === 'IPPool' ? ['cidr', 'blockSize'] : n.kind === 'IPAMBlock' || n.kind === 'BlockAffinity' ? ['cidr'] : [];
  for (const f of immutable) {
    const a = f === 'cidr' ? cidrKey(os[f]) : os[f];
    const b = f === 'cidr' ? cidrKey(ns[f]) : ns[f];
    if (a !== b) problems.push(`spec.${f}: is immutable (was ${String(os[f])}, now ${String(ns[f])}); create a new ${n.kind} instead`);
  }
  if (problems.length) throw new ValidationError(subjectOf(n), problems);
  return n;
}

/** Throws ValidationError when `pool` overlaps any other pool in `existing` (same-named pools are skipped). */
export function validatePoolOverlap(pool: IPPool, existing: readonly IPPool[]): void {
  const c = parseCidr(pool.spec.cidr);
  if (!c) throw new ValidationError(subjectOf(pool), [`spec.cidr: ${show(pool.spec.cidr)} is not a CIDR like 10.244.0.0/16`]);
  const problems: string[] = [];
  for (const other of existing) {
    if (other.metadata.name === pool.metadata.name) continue;
    const oc = parseCidr(other.spec.cidr);
    if (oc && cidrsOverlap(c, oc)) {
      problems.push(`spec.cidr: ${pool.spec.cidr} overlaps IPPool ${JSON.stringify(other.metadata.name)} (${other.spec.cidr}); pools must not overlap`);
    }
  }
  if (problems.length) throw new ValidationError(subjectOf(pool), problems);
}
