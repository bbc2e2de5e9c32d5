/**
 * Pure output formatters for tabbyctl: calicoctl-style tables (Go tabwriter with minwidth 5,
 * padding 3, space padding; the last column is not padded), YAML (keys sorted, as calicoctl's
 * JSON→YAML conversion prints them) and JSON. Column sets come from api/columns.ts.
 */
import { stringify } from 'yaml';
import type { Resource } from '../api/meta.js';
import { API_VERSION_V3 } from '../api/meta.js';
import { columnsFor as apiColumnsFor } from '../api/columns.js';
import type { Column, ColumnContext, ColumnSet } from '../api/columns.js';

const MIN_WIDTH = 5;
const PADDING = 3;

/** Render rows under upper-case headers, left-aligned, like calicoctl's tabwriter printer. */
export function formatTable(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const all = [headers.map((h) => h.toUpperCase()), ...rows.map((r) => headers.map((_, i) => r[i] ?? ''))];
  const widths = headers.map((_, col) => {
    let w = MIN_WIDTH;
    for (const r of all) w = Math.max(w, (r[col] ?? '').length + PADDING);
    return w;
  });
  const lines = all.map((r) =>
    r
      .map((cell, col) => (col === r.length - 1 ? cell : cell.padEnd(widths[col] ?? MIN_WIDTH)))
      .join('')
      .trimEnd(),
  );
  return lines.join('\n') + '\n';
}

export type { Column, ColumnContext, ColumnSet };

type Obj = Record<string, unknown>;

function field(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Obj)[part];
  }
  return cur;
}

function col(header: string, path: string, fallback = ''): Column {
  return {
    header,
    value: (o) => {
      const v = field(o, path);
      if (v === undefined || v === null || v === '') return fallback;
      return typeof v === 'object' && !Array.isArray(v) ? JSON.stringify(v) : Array.isArray(v) ? v.join(',') : String(v);
    },
  };
}

const NAME = col('NAME', 'metadata.name');

/** Kinds calicoctl cannot list (IPAM storage, node status); tabby shows their identifying fields. */
const EXTRA: Record<string, ColumnSet> = {
  IPAMBlock: {
    default: [NAME, col('CIDR', 'spec.cidr'), col('AFFINITY', 'spec.affinity')],
    wide: [NAME, col('CIDR', 'spec.cidr'), col('AFFINITY', 'spec.affinity'), col('SEQUENCENUMBER', 'spec.sequenceNumber')],
  },
  BlockAffinity: {
    default: [NAME, col('CIDR', 'spec.cidr'), col('NODE', 'spec.node'), col('STATE', 'spec.state')],
    wide: [NAME, col('CIDR', 'spec.cidr'), col('NODE', 'spec.node'), col('STATE', 'spec.state'), col('TYPE', 'spec.type', 'host')],
  },
  IPAMHandle: {
    default: [NAME, col('HANDLEID', 'spec.handleID')],
    wide: [NAME, col('HANDLEID', 'spec.handleID'), col('BLOCKS', 'spec.block')],
  },
  CalicoNodeStatus: {
    default: [NAME, col('NODE', 'spec.node')],
    wide: [NAME, col('NODE', 'spec.node'), col('CLASSES', 'spec.classes'), col('UPDATEPERIODSECONDS', 'spec.updatePeriodSeconds')],
  },
};

/** The default and wide column sets of a kind: calicoctl's (api/columns.ts) plus tabby's extra kinds. */
export function columnsFor(kind: string): ColumnSet {
  return EXTRA[kind] ?? apiColumnsFor(kind);
}

/** Columns named in `custom-columns=A,B` picked from the kind's wide set (plus its default set). */
export function customColumns(kind: string, names: readonly string[]): Column[] {
  const set = columnsFor(kind);
  const known = [...set.wide, ...set.default];
  return names.map((n) => {
    const c = known.find((k) => k.header === n.trim().toUpperCase());
    if (!c) {
      const valid = [...new Set(known.map((k) => k.header))].join(', ');
      throw new Error(`unknown column ${JSON.stringify(n)} for ${kind} (valid: ${valid})`);
    }
    return c;
  });
}

export function formatResourceTable(objs: readonly Resource[], columns: readonly Column[], ctx: ColumnContext = {}): string {
  return formatTable(
    columns.map((c) => c.header),
    objs.map((o) => columns.map((c) => c.value(o, ctx))),
  );
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === 'object') {
    const out: Obj = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Obj)[k];
      if (x !== undefined) out[k] = sortKeys(x);
    }
    return out;
  }
  return v;
}

/** What `get -o yaml|json` prints: one object, or a list envelope. */
export type Printable = Resource | ResourceList;

export interface ResourceList {
  apiVersion: string;
  kind: string;
  metadata: { resourceVersion?: string };
  items: Resource[];
}

/** `<Kind>List` for the result of listing one kind, `List` for a mixed set (as calicoctl). */
export function listOf(items: Resource[], kind?: string, resourceVersion?: string): ResourceList {
  const metadata: ResourceList['metadata'] = {};
  if (resourceVersion !== undefined) metadata.resourceVersion = resourceVersion;
  return { apiVersion: API_VERSION_V3, kind: kind ? `${kind}List` : 'List', metadata, items };
}

/** YAML with keys sorted at every level and unindented sequences (calicoctl marshals through JSON then go-yaml). */
export function formatYaml(v: Printable): string {
  return stringify(sortKeys(v), { lineWidth: 0, indentSeq: false });
}

function envelopeOrder(v: unknown): unknown {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
  const src = v as Obj;
  const ordered: Obj = {};
  for (const k of ['kind', 'apiVersion', 'metadata', 'spec', 'status', 'items']) if (src[k] !== undefined) ordered[k] = src[k];
  for (const [k, x] of Object.entries(src)) if (!(k in ordered) && x !== undefined) ordered[k] = x;
  if (Array.isArray(ordered.items)) ordered.items = ordered.items.map(envelopeOrder);
  return ordered;
}

/** JSON in the envelope order kind, apiVersion, metadata, spec, status (Go struct order), 2-space indent. */
export function formatJson(v: Printable): string {
  return JSON.stringify(envelopeOrder(v), null, 2) + '\n';
}

/** `'IPPool'` when every resource has one kind, undefined when mixed or empty. */
export function singleKind(kinds: readonly string[]): string | undefined {
  const set = new Set(kinds);
  return set.size === 1 ? [...set][0] : undefined;
}

/** `Successfully applied 2 'IPPool' resource(s)` / `Successfully applied 3 resource(s)`. */
export function successLine(verb: string, count: number, kind: string | undefined): string {
  return kind ? `Successfully ${verb} ${count} '${kind}' resource(s)` : `Successfully ${verb} ${count} resource(s)`;
}

/**
 * The calicoctl partial-success header. "the first" only when the successes are exactly the leading
 * documents (processing is per document, so a bad middle document does not stop later ones).
 */
export function partialLine(verb: string, ok: number, total: number, kind: string | undefined, prefix: boolean): string {
  const what = kind ? `'${kind}' resources` : 'resources';
  return `Partial success: ${verb} ${prefix ? 'the first ' : ''}${ok} out of ${total} ${what}:`;
}
