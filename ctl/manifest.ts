/**
 * Pure parsing of tabbyctl manifests: YAML or JSON, several documents separated by `---`, `List`
 * (or `<Kind>List`) envelopes expanded into their items. Every resulting document keeps its
 * 1-based position so error lines can name it; a bad document becomes an entry with `error` and
 * never stops the others from being parsed.
 */
import { parseAllDocuments } from 'yaml';
import { findKind } from '../api/kinds.js';
import type { Resource } from '../api/meta.js';
import { API_VERSION_V3 } from '../api/meta.js';

export interface ManifestDocument {
  /** 1-based position among the resources of the input (List items counted one by one). */
  index: number;
  /** The v3 kind name when it could be determined. */
  kind?: string;
  name?: string;
  /** Present when the envelope is usable (apiVersion, known kind, object shape). */
  resource?: Resource;
  /** Why the document is unusable; the CLI prints it as one line. */
  error?: string;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function oneLine(s: string): string {
  return s.split('\n')[0]?.trim() ?? s;
}

/** Check one resource envelope (apiVersion, kind, metadata.name shape); spec is validated later. */
export function checkEnvelope(raw: unknown, index: number): ManifestDocument {
  if (!isObj(raw)) return { index, error: `expected a resource object, got ${Array.isArray(raw) ? 'a list' : typeof raw}` };
  const kindRaw = raw.kind;
  const meta = raw.metadata;
  const name = isObj(meta) && typeof meta.name === 'string' ? meta.name : undefined;
  const doc: ManifestDocument = { index };
  if (name !== undefined) doc.name = name;
  if (typeof kindRaw !== 'string' || kindRaw === '') return { ...doc, error: 'kind: required' };
  const info = findKind(kindRaw);
  if (!info || info.kind !== kindRaw) {
    const hint = info ? ` (did you mean ${info.kind}?)` : '';
    return { ...doc, error: `kind: unknown resource kind ${JSON.stringify(kindRaw)}${hint}` };
  }
  doc.kind = info.kind;
  if (info.apiVersion !== API_VERSION_V3) {
    return { ...doc, error: `kind: ${info.kind} is not managed through manifests (IPAM writes it; use tabbyctl ipam)` };
  }
  if (raw.apiVersion !== API_VERSION_V3) {
    return { ...doc, error: `apiVersion: ${JSON.stringify(raw.apiVersion ?? '')} is not supported (use ${API_VERSION_V3})` };
  }
  if (meta !== undefined && !isObj(meta)) return { ...doc, error: 'metadata: must be an object' };
  if (name === undefined || name === '') return { ...doc, error: 'metadata.name: required' };
  doc.resource = raw as unknown as Resource;
  return doc;
}

function isListEnvelope(raw: unknown): raw is Obj & { items: unknown } {
  return isObj(raw) && typeof raw.kind === 'string' && raw.kind.endsWith('List') && 'items' in raw;
}

/** Parse a manifest text into its documents, in order. Empty documents (e.g. a trailing `---`) are skipped. */
export function parseManifest(text: string): ManifestDocument[] {
  const out: ManifestDocument[] = [];
  let index = 0;
  for (const d of parseAllDocuments(text)) {
    if (d.errors.length > 0) {
      index += 1;
      out.push({ index, error: `invalid YAML/JSON: ${oneLine(d.errors[0]?.message ?? 'parse error')}` });
      continue;
    }
    const raw: unknown = d.toJS();
    if (raw === null || raw === undefined) continue;
    if (isListEnvelope(raw)) {
      if (!Array.isArray(raw.items)) {
        index += 1;
        out.push({ index, error: `items: ${raw.kind} must have an items array` });
        continue;
      }
      for (const item of raw.items) {
        index += 1;
        out.push(checkEnvelope(item, index));
      }
      continue;
    }
    index += 1;
    out.push(checkEnvelope(raw, index));
  }
  return out;
}

/** How a document is named in error lines: `document 2 (IPPool "pool-b")`. */
export function describeDocument(doc: Pick<ManifestDocument, 'index' | 'kind' | 'name'>): string {
  const what = [doc.kind, doc.name === undefined ? undefined : JSON.stringify(doc.name)].filter((x) => x !== undefined).join(' ');
  return what ? `document ${doc.index} (${what})` : `document ${doc.index}`;
}

/** RFC 7386 JSON merge patch: objects merge recursively, `null` deletes, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return structuredClone(patch);
  const out: Obj = isObj(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}
