/**
 * The tabby-bgp configuration file (YAML or JSON), validated with ajv, turned into a SpeakerConfig.
 * EXAMPLE_CONFIG shows the shape (it is the example of issue 5; `tabby-bgp --help` prints it).
 *
 * Startup cost (bench/results/bgpfib.md): the daemon loads no parser or validator it does not
 * need — yaml only for a file that is not JSON, the Calico resource validation (api/, a second
 * ajv) only when the file has filters, and in the tabby-bgp bundle the schema is checked by
 * ajv's standalone code generated at build time instead of ajv compiling it at every start.
 */
import { readFile } from 'node:fs/promises';
import { TabbyError } from '../../lib/errors.js';
import type { SpeakerConfig } from '../speaker/config.js';
import type { BgpFilterSpec } from '../policy/filter.js';
import { API_VERSION_V3 } from '../../api/meta.js';
import { configValidator } from './config-validate.js';
import type * as ResourceValidationModule from '../../api/validate.js';

export { CONFIG_SCHEMA } from './config-schema.js';

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



interface RawFilter {
  name: string;
  exportV4?: unknown;
  importV4?: unknown;
  exportV6?: unknown;
  importV6?: unknown;
}

type ResourceValidation = typeof ResourceValidationModule;

/** A filter's rules, checked exactly like a projectcalico.org/v3 BGPFilter resource. */
function validFilterSpec(api: ResourceValidation, name: string, spec: Omit<RawFilter, 'name'>, source: string): BgpFilterSpec {
  const { validateResource, ValidationError } = api;
  try {
    const r = validateResource({ apiVersion: API_VERSION_V3, kind: 'BGPFilter', metadata: { name }, spec });
    return r.spec as BgpFilterSpec;
  } catch (err) {
    if (err instanceof ValidationError) throw new ConfigError(`${source}: filter ${JSON.stringify(name)}: ${err.problems.slice(0, 5).join('; ')}`);
    throw err;
  }
}

/** Validate a parsed document and build the daemon configuration. */
export async function parseConfig(doc: unknown, source = 'config'): Promise<DaemonConfig> {
  const validate = await configValidator();
  if (!validate(doc)) {
    const msgs = (validate.errors ?? []).slice(0, 5).map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`);
    throw new ConfigError(`${source}: ${msgs.join('; ')}`);
  }
  const d = structuredClone(doc) as unknown as Record<string, unknown>;
  const fib = (d.fib ?? {}) as { install?: boolean; protocol?: number; table?: number; metric?: number };
  const statusSocket = d.statusSocket as string | undefined;
  delete d.fib;
  delete d.statusSocket;
  const rawFilters = d.filters as RawFilter[] | undefined;
  // The Calico resource validation (its own ajv and schemas) loads only for a file with filters.
  const api = rawFilters?.length ? await import('../../api/validate.js') : undefined;
  const filters = rawFilters?.map((f) => {
    const { name, ...spec } = f;
    return { name, spec: validFilterSpec(api as ResourceValidation, name, spec, source) };
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
    doc = await parseText(text);
  } catch (err) {
    throw new ConfigError(`${file}: not valid YAML/JSON: ${(err as Error).message}`);
  }
  return parseConfig(doc, file);
}

/** JSON as is; anything else (or JSON.parse failing) through the YAML parser, loaded on demand. */
async function parseText(text: string): Promise<unknown> {
  if (text.trimStart().startsWith('{')) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      // YAML flow mappings start with '{' too; let the YAML parser decide and report.
    }
  }
  const { parse } = await import('yaml');
  return parse(text) as unknown;
}
