/**
 * OutBatch → UPDATE bytes. Attributes are encoded once per (attribute object, encoding options)
 * and a whole batch once per encoding options, so every member of an update group that shares a
 * batch object shares the bytes too.
 */
import { encodeAttributes, packUpdates, packWithdrawals, type EncodedAttributes } from '../codec/index.js';
import type { EncodeOptions } from '../codec/messages.js';
import type { OutBatch } from '../rib/adj-rib-out.js';
import type { Family, Nlri, PathAttributes } from '../types.js';

export interface OutEncoding {
  opts: EncodeOptions;
  /** Families we send path ids for (ADD-PATH send negotiated). */
  addPathSend: readonly Family[];
  /** Distinguishes encodings: as4, add-path send set, extended messages. */
  key: string;
}

export function outEncoding(as4: boolean, addPathSend: readonly Family[], extendedMessage: boolean): OutEncoding {
  return {
    opts: { as4, addPath: addPathSend, extendedMessage },
    addPathSend,
    key: `${as4 ? 4 : 2}|${[...addPathSend].sort().join(',')}|${extendedMessage ? 'x' : ''}`,
  };
}

const attrCache = new WeakMap<object, Map<string, EncodedAttributes>>();
const batchCache = new WeakMap<OutBatch, Map<string, Uint8Array[]>>();

function encodedAttrs(attrs: Readonly<PathAttributes>, family: Family, enc: OutEncoding): EncodedAttributes {
  let m = attrCache.get(attrs);
  if (!m) attrCache.set(attrs, (m = new Map()));
  const k = `${family}|${enc.key}`;
  let e = m.get(k);
  if (!e) {
    // MP families carry their next hop in MP_REACH_NLRI, not in the NEXT_HOP attribute.
    const a: PathAttributes = family === 'ipv4-unicast' ? attrs : { ...attrs, nextHop: undefined };
    e = encodeAttributes(a, enc.opts);
    m.set(k, e);
  }
  return e;
}

export function encodeBatch(batch: OutBatch, enc: OutEncoding): Uint8Array[] {
  let m = batchCache.get(batch);
  if (!m) batchCache.set(batch, (m = new Map()));
  const hit = m.get(enc.key);
  if (hit) return hit;
  const out: Uint8Array[] = [];
  const byFamily = new Map<Family, Nlri[]>();
  for (const w of batch.withdraw) {
    const l = byFamily.get(w.family) ?? [];
    l.push(enc.addPathSend.includes(w.family) ? { prefix: w.prefix, pathId: w.pathId } : { prefix: w.prefix });
    byFamily.set(w.family, l);
  }
  for (const [family, nlri] of byFamily) out.push(...packWithdrawals(family, nlri, enc.opts));
  for (const a of batch.announce) {
    const ap = enc.addPathSend.includes(a.family);
    const nlri: Nlri[] = a.nlri.map((n) => (ap ? { prefix: n.prefix, pathId: n.pathId } : { prefix: n.prefix }));
    const req: Parameters<typeof packUpdates>[0] = { family: a.family, attributes: a.attrs, nlri };
    if (a.attrs.nextHop !== undefined) req.nextHop = a.attrs.nextHop;
    out.push(...packUpdates(req, enc.opts, encodedAttrs(a.attrs, a.family, enc)));
  }
  m.set(enc.key, out);
  return out;
}
