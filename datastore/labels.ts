/**
 * Kubernetes label selectors (the `labelSelector` of ListOptions/WatchOptions), parsed once and
 * evaluated against `metadata.labels`. Grammar as in Kubernetes:
 *
 *   selector    := requirement ( "," requirement )*      (comma = AND; empty selector = everything)
 *   requirement := "!" key | key | key ("=" | "==" | "!=") value
 *                | key ("in" | "notin") "(" value ("," value)* ")" | key (">" | "<") integer
 *
 * `!=` and `notin` also match objects that lack the key (as in Kubernetes).
 */
import { DatastoreError } from './types.js';

export class LabelSelectorError extends DatastoreError {
  constructor(selector: string, detail: string) {
    super('InvalidLabelSelector', `label selector ${JSON.stringify(selector)}: ${detail}`, {
      hint: "use Kubernetes syntax, e.g. 'a=b,c!=d,e in (x,y),!f'",
    });
  }
}

export type Requirement =
  | { op: 'exists' | 'notexists'; key: string }
  | { op: 'in' | 'notin'; key: string; values: string[] }
  | { op: 'gt' | 'lt'; key: string; value: number };

export interface LabelSelector {
  readonly source: string;
  readonly requirements: readonly Requirement[];
  matches(labels: Readonly<Record<string, string>> | undefined): boolean;
}

type Tok = { t: 'word'; v: string } | { t: 'op'; v: string };

const WORD = /[A-Za-z0-9_.\-/]/;

function tokenize(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i] as string;
    if (c === ' ' || c === '\t') {
      i++;
    } else if (WORD.test(c)) {
      let j = i;
      while (j < src.length && WORD.test(src[j] as string)) j++;
      out.push({ t: 'word', v: src.slice(i, j) });
      i = j;
    } else if (src.startsWith('==', i) || src.startsWith('!=', i)) {
      out.push({ t: 'op', v: src.slice(i, i + 2) });
      i += 2;
    } else if ('=!(),<>'.includes(c)) {
      out.push({ t: 'op', v: c });
      i++;
    } else {
      throw new LabelSelectorError(src, `unexpected character ${JSON.stringify(c)} at ${i}`);
    }
  }
  return out;
}

const KEY_RE = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const VALUE_RE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

export function parseLabelSelector(source: string): LabelSelector {
  const toks = tokenize(source);
  let p = 0;
  const fail = (detail: string): never => {
    throw new LabelSelectorError(source, detail);
  };
  const peek = (): Tok | undefined => toks[p];
  const isOp = (v: string): boolean => {
    const t = peek();
    return t !== undefined && t.t === 'op' && t.v === v;
  };
  const key = (): string => {
    const t = toks[p++];
    if (!t || t.t !== 'word') return fail('expected a label key');
    if (!KEY_RE.test(t.v)) fail(`invalid label key ${JSON.stringify(t.v)}`);
    return t.v;
  };
  const value = (): string => {
    const t = peek();
    if (!t || t.t !== 'word') return ''; // empty value (`a=`) is legal
    p++;
    if (!VALUE_RE.test(t.v) || t.v.length > 63) fail(`invalid label value ${JSON.stringify(t.v)}`);
    return t.v;
  };
  const reqs: Requirement[] = [];
  if (toks.length === 0) return compile(source, reqs);
  while (true) {
    if (isOp('!')) {
      p++;
      reqs.push({ op: 'notexists', key: key() });
    } else {
      const k = key();
      const t = peek();
      if (t === undefined || (t.t === 'op' && t.v === ',')) {
        reqs.push({ op: 'exists', key: k });
      } else if (t.t === 'op' && (t.v === '=' || t.v === '==' || t.v === '!=')) {
        p++;
        reqs.push({ op: t.v === '!=' ? 'notin' : 'in', key: k, values: [value()] });
      } else if (t.t === 'op' && (t.v === '>' || t.v === '<')) {
        p++;
        const n = toks[p++];
        if (!n || n.t !== 'word' || !/^-?\d+$/.test(n.v)) fail(`${t.v} needs an integer`);
        reqs.push({ op: t.v === '>' ? 'gt' : 'lt', key: k, value: Number((n as Tok).v) });
      } else if (t.t === 'word' && (t.v === 'in' || t.v === 'notin')) {
        p++;
        if (!isOp('(')) fail(`expected "(" after ${t.v}`);
        p++;
        const values: string[] = [];
        while (true) {
          values.push(value());
          if (isOp(',')) {
            p++;
            continue;
          }
          if (isOp(')')) {
            p++;
            break;
          }
          fail('expected "," or ")" in value set');
        }
        reqs.push({ op: t.v, key: k, values });
      } else {
        fail(`unexpected ${JSON.stringify(t.v)} after key ${JSON.stringify(k)}`);
      }
    }
    if (p >= toks.length) break;
    if (!isOp(',')) fail(`expected "," at token ${JSON.stringify(peek()?.v)}`);
    p++;
    if (p >= toks.length) fail('trailing ","');
  }
  return compile(source, reqs);
}

function matchOne(r: Requirement, labels: Readonly<Record<string, string>>): boolean {
  const has = Object.prototype.hasOwnProperty.call(labels, r.key);
  const v = labels[r.key];
  switch (r.op) {
    case 'exists':
      return has;
    case 'notexists':
      return !has;
    case 'in':
      return has && r.values.includes(v as string);
    case 'notin':
      return !has || !r.values.includes(v as string);
    case 'gt':
    case 'lt': {
      if (!has || !/^-?\d+$/.test(v as string)) return false;
      const n = Number(v);
      return r.op === 'gt' ? n > r.value : n < r.value;
    }
  }
}

function compile(source: string, requirements: Requirement[]): LabelSelector {
  return {
    source,
    requirements,
    matches(labels) {
      const l = labels ?? {};
      return requirements.every((r) => matchOne(r, l));
    },
  };
}

/** Convenience: does `labels` match the selector string (undefined/empty = everything)? */
export function matchesLabelSelector(selector: string | undefined, labels: Readonly<Record<string, string>> | undefined): boolean {
  if (selector === undefined || selector.trim() === '') return true;
  return parseLabelSelector(selector).matches(labels);
}
