/**
 * The tabby-bgp configuration file (YAML or JSON), validated with ajv, turned into a SpeakerConfig.
 * EXAMPLE_CONFIG shows the shape (it is the example of issue 5; `tabby-bgp --help` prints it).
 */
import { readFile } from 'node:fs/promises';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { parse as parseYaml } from 'yaml';
import { TabbyError } from '../../lib/errors.js';
import type { SpeakerConfig } from '../speaker/config.js';
import type { BgpFilterSpec } from '../policy/filter.js';
import { API_VERSION_V3 } from '../../api/meta.js';
import { ValidationError, validateResource } from '../../api/validate.js';

export const EXAMPLE_CONFIG = `routerId: 10.0.0.1
asNumber: 64512
listen: { address: 10.0.0.1, port: 179 }     # port 0 = do not listen
peers:
  - { address: 10.0.0.2, asNumber: 64512, password: s3cret, passive: false, ttlSecurity: 1,
      routeReflectorClient: false, addPaths: both, gracefulRestart: { restartTime: 120 } }
originate: [10.244.1.0/26]
fib: { install: true, protocol: 80 }
statusSocket: /run/tabby-bgp.sock
`;

export interface DaemonConfig {
  speaker: SpeakerConfig;
  fib: { install: boolean; protocol: number; table?: number; metric?: number };
  statusSocket?: string;
}

export class ConfigError extends TabbyError {
  constructor(message: string, hint = 'fix the configuration file; see `tabby-bgp --help` for the format') {
    super('BGP_CONFIG_INVALID', message, { hint });
  }
}

const community = { type: 'string', pattern: '^[0-9]+:[0-9]+(:[0-9]+)?$' };
const cidr = { type: 'string', pattern: '^[0-9a-fA-F:.]+/[0-9]{1,3}$' };
const ip = { type: 'string', anyOf: [{ format: 'ipv4' }, { format: 'ipv6' }] };
const asn = { type: 'integer', minimum: 1, maximum: 4294967295 };
/** BGPFilter rule lists are checked by the Calico resource validation (api/), see parseConfig. */
const rules = { type: 'array', items: { type: 'object' } };

export const CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['routerId', 'asNumber'],
  properties: {
    routerId: { type: 'string', format: 'ipv4' },
    asNumber: asn,
    clusterId: { type: 'string', format: 'ipv4' },
    listen: {
      type: 'object',
      additionalProperties: false,
      required: ['port'],
      properties: { address: ip, port: { type: 'integer', minimum: 0, maximum: 65535 } },
    },
    peers: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['address', 'asNumber'],
        properties: {
          address: ip,
          port: { type: 'integer', minimum: 1, maximum: 65535 },
          asNumber: asn,
          localAsNumber: asn,
          password: { type: 'string', minLength: 1, maxLength: 80 },
          passive: { type: 'boolean' },
          ttlSecurity: { type: 'integer', minimum: 1, maximum: 254 },
          multihop: { type: 'integer', minimum: 1, maximum: 255 },
          sourceAddress: ip,
          routeReflectorClient: { type: 'boolean' },
          addPaths: { enum: ['none', 'receive', 'send', 'both'] },
          gracefulRestart: {
            anyOf: [
              { const: false },
              { type: 'object', additionalProperties: false, required: ['restartTime'], properties: { restartTime: { type: 'integer', minimum: 0, maximum: 4095 } } },
            ],
          },
          holdTime: { anyOf: [{ const: 0 }, { type: 'integer', minimum: 3, maximum: 65535 }] },
          keepaliveTime: { type: 'integer', minimum: 1 },
          connectRetryTime: { type: 'integer', minimum: 1 },
          nextHopMode: { enum: ['auto', 'self', 'keep'] },
          nextHopSelf: { type: 'object', additionalProperties: false, properties: { ipv4: { type: 'string', format: 'ipv4' }, ipv6: { type: 'string', format: 'ipv6' } } },
          allowLocalAs: { type: 'integer', minimum: 0, maximum: 10 },
          maxPrefixes: { type: 'integer', minimum: 1 },
          maxPrefixRestartTime: { type: 'integer', minimum: 0, maximum: 86400 },
          families: { type: 'array', items: { enum: ['ipv4-unicast', 'ipv6-unicast'] }, minItems: 1 },
          filters: { type: 'array', items: { type: 'string' } },
          description: { type: 'string' },
        },
      },
    },
    originate: {
      type: 'array',
      items: {
        anyOf: [
          cidr,
          {
            type: 'object',
            additionalProperties: false,
            required: ['prefix'],
            properties: { prefix: cidr, communities: { type: 'array', items: community }, interface: { type: 'string' } },
          },
        ],
      },
    },
    filters: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        properties: {
          name: { type: 'string', minLength: 1 },
          exportV4: rules,
          importV4: rules,
          exportV6: rules,
          importV6: rules,
        },
      },
    },
    prefixAdvertisements: {
      type: 'array',
      items: { type: 'object', additionalProperties: false, required: ['cidr', 'communities'], properties: { cidr, communities: { type: 'array', items: community } } },
    },
    maxPaths: { type: 'integer', minimum: 1, maximum: 64 },
    routePriority: { type: 'integer', minimum: 1, maximum: 2147483646 },
    maxPendingRoutes: { type: 'integer', minimum: 1 },
    gracefulRestart: {
      type: 'object',
      additionalProperties: false,
      properties: { restarting: { type: 'boolean' }, deferralTime: { type: 'integer', minimum: 0, maximum: 3600 } },
    },
    fib: {
      type: 'object',
      additionalProperties: false,
      properties: {
        install: { type: 'boolean' },
        protocol: { type: 'integer', minimum: 1, maximum: 255 },
        table: { type: 'integer', minimum: 1 },
        metric: { type: 'integer', minimum: 0 },
      },
    },
    statusSocket: { type: 'string', minLength: 1 },
  },
} as const;

const ajv = new Ajv({ allErrors: true, strict: false });
(addFormats as unknown as (a: Ajv) => void)(ajv);
const validate = ajv.compile(CONFIG_SCHEMA);

interface RawFilter {
  name: string;
  exportV4?: unknown;
  importV4?: unknown;
  exportV6?: unknown;
  importV6?: unknown;
}

/** A filter's rules, checked exactly like a projectcalico.org/v3 BGPFilter resource. */
function validFilterSpec(name: string, spec: Omit<RawFilter, 'name'>, source: string): BgpFilterSpec {
  try {
    const r = validateResource({ apiVersion: API_VERSION_V3, kind: 'BGPFilter', metadata: { name }, spec });
    return r.spec as BgpFilterSpec;
  } catch (err) {
    if (err instanceof ValidationError) throw new ConfigError(`${source}: filter ${JSON.stringify(name)}: ${err.problems.slice(0, 5).join('; ')}`);
    throw err;
  }
}

/** Validate a parsed document and build the daemon configuration. */
export function parseConfig(doc: unknown, source = 'config'): DaemonConfig {
  if (!validate(doc)) {
    const msgs = (validate.errors ?? []).slice(0, 5).map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`);
    throw new ConfigError(`${source}: ${msgs.join('; ')}`);
  }
  const d = structuredClone(doc) as unknown as Record<string, unknown>;
  const fib = (d.fib ?? {}) as { install?: boolean; protocol?: number; table?: number; metric?: number };
  const statusSocket = d.statusSocket as string | undefined;
  delete d.fib;
  delete d.statusSocket;
  const filters = (d.filters as RawFilter[] | undefined)?.map((f) => {
    const { name, ...spec } = f;
    return { name, spec: validFilterSpec(name, spec, source) };
  });
  const speaker = { peers: [], ...d, ...(filters ? { filters } : {}) } as unknown as SpeakerConfig;
  const ids = new Set<string>();
  for (const p of speaker.peers) {
    const id = `${p.address}:${p.port ?? 179}`;
    if (ids.has(id)) throw new ConfigError(`${source}: peer ${p.address} is listed twice`);
    ids.add(id);
  }
  const names = new Set((speaker.filters ?? []).map((f) => f.name));
  for (const p of speaker.peers)
    for (const n of p.filters ?? []) if (!names.has(n)) throw new ConfigError(`${source}: peer ${p.address} uses unknown filter ${JSON.stringify(n)}`);
  const out: DaemonConfig = { speaker, fib: { install: fib.install ?? false, protocol: fib.protocol ?? 80 } };
  if (fib.table !== undefined) out.fib.table = fib.table;
  if (fib.metric !== undefined) out.fib.metric = fib.metric;
  if (statusSocket !== undefined) out.statusSocket = statusSocket;
  return out;
}

/** Read and validate a YAML or JSON file. */
export async function loadConfig(file: string): Promise<DaemonConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read ${file}: ${(err as Error).message}`, 'pass an existing file with -c');
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`${file}: not valid YAML/JSON: ${(err as Error).message}`);
  }
  return parseConfig(doc, file);
}
