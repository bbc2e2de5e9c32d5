/**
 * Calico label selectors: parser and evaluator.
 *
 * Grammar (Calico's): `all()`, `global()`, `has(k)`, `k == 'v'`, `k != 'v'`, `k in {'a','b'}`,
 * `k not in {…}`, `k contains 's'`, `k starts with 's'`, `k ends with 's'`, `!e`, `e && e`, `e || e`,
 * parentheses; strings in single or double quotes. `&&` binds tighter than `||`; `!` tighter than both.
 * The empty (or blank) selector is `all()`. `k != 'v'` and `k not in {…}` also match when `k` is absent.
 */
import { TabbyError } from '../lib/errors.js';

export class SelectorError extends TabbyError {
  /** 0-based character offset into the selector where parsing failed. */
  readonly position: number;
  readonly selector: string;
  constructor(selector: string, position: number, what: string) {
    super('InvalidSelector', `invalid selector ${JSON.stringify(selector)}: ${what} at position ${position}`, {
      hint: "selectors look like `all()`, `has(k)`, `k == 'v'`, `k in {'a','b'}`, joined with && || ! and ()",
    });
    this.position = position;
    this.selector = selector;
  }
}

export type SelectorNode =
  | { op: 'all' }
  | { op: 'global' }
  | { op: 'has'; key: string }
  | { op: 'eq' | 'ne' | 'contains' | 'starts' | 'ends'; key: string; value: string }
  | { op: 'in' | 'notin'; key: string; values: string[] }
  | { op: 'not'; expr: SelectorNode }
  | { op: 'and' | 'or'; exprs: SelectorNode[] };

export interface Selector {
  readonly source: string;
  readonly ast: SelectorNode;
  /** True when the selector uses `global()` (forbidden in IPPool.nodeSelector). */
  readonly usesGlobal: boolean;
  matches(labels: Readonly<Record<string, string>>): boolean;
  /** Canonical text, e.g. `(a == "x" && has(b))`. */
  toString(): string;
}

const KEY = /[A-Za-z0-9_./-]/;

class Parser {
  private pos = 0;
  constructor(private readonly src: string) {}

  parse(): SelectorNode {
    this.ws();
    if (this.pos >= this.src.length) return { op: 'all' };
    const node = this.or();
    this.ws();
    if (this.pos < this.src.length) this.fail(`unexpected ${JSON.stringify(this.src[this.pos])}`);
    return node;
  }

  private fail(what: string): never {
    throw new SelectorError(this.src, this.pos, what);
  }

  private ws(): void {
    while (this.pos < this.src.length && /\s/.test(this.src[this.pos] ?? '')) this.pos++;
  }

  private eat(tok: string): boolean {
    this.ws();
    if (this.src.startsWith(tok, this.pos)) {
      this.pos += tok.length;
      return true;
    }
    return false;
  }

  /** A keyword must not run on into a label key (`index` is a key, not `in` + `dex`). */
  private eatWord(word: string): boolean {
    this.ws();
    if (!this.src.startsWith(word, this.pos)) return false;
    const next = this.src[this.pos + word.length];
    if (next !== undefined && KEY.test(next)) return false;
    this.pos += word.length;
    return true;
  }

  private expect(tok: string): void {
    if (!this.eat(tok)) this.fail(this.pos >= this.src.length ? `expected ${tok} but the selector ended` : `expected ${tok}`);
  }

  private or(): SelectorNode {
    const exprs = [this.and()];
    while (this.eat('||')) exprs.push(this.and());
    return exprs.length === 1 ? exprs[0]! : { op: 'or', exprs };
  }

  private and(): SelectorNode {
    const exprs = [this.unary()];
    while (this.eat('&&')) exprs.push(this.unary());
    return exprs.length === 1 ? exprs[0]! : { op: 'and', exprs };
  }

  private unary(): SelectorNode {
    this.ws();
    if (this.src[this.pos] === '!' && this.src[this.pos + 1] !== '=') {
      this.pos++;
      return { op: 'not', expr: this.unary() };
    }
    return this.primary();
  }

  private primary(): SelectorNode {
    this.ws();
    if (this.eat('(')) {
      const e = this.or();
      this.expect(')');
      return e;
    }
    const start = this.pos;
    const key = this.key();
    this.ws();
    if (this.src[this.pos] === '(') {
      this.pos++;
      if (key === 'all' || key === 'global') {
        this.expect(')');
        return { op: key };
      }
      if (key === 'has') {
        const k = this.key();
        this.expect(')');
        return { op: 'has', key: k };
      }
      this.pos = start;
      this.fail(`unknown function ${JSON.stringify(key)}`);
    }
    if (this.eat('==')) return { op: 'eq', key, value: this.str() };
    if (this.eat('!=')) return { op: 'ne', key, value: this.str() };
    if (this.eatWord('in')) return { op: 'in', key, values: this.set() };
    if (this.eatWord('not')) {
      if (!this.eatWord('in')) this.fail('expected "in" after "not"');
      return { op: 'notin', key, values: this.set() };
    }
    if (this.eatWord('contains')) return { op: 'contains', key, value: this.str() };
    if (this.eatWord('starts')) {
      if (!this.eatWord('with')) this.fail('expected "with" after "starts"');
      return { op: 'starts', key, value: this.str() };
    }
    if (this.eatWord('ends')) {
      if (!this.eatWord('with')) this.fail('expected "with" after "ends"');
      return { op: 'ends', key, value: this.str() };
    }
    return this.fail(
      this.pos >= this.src.length
        ? `expected an operator after ${JSON.stringify(key)} but the selector ended`
        : `expected an operator (==, !=, in, not in, contains, starts with, ends with) after ${JSON.stringify(key)}`,
    );
  }

  private key(): string {
    this.ws();
    const start = this.pos;
    while (this.pos < this.src.length && KEY.test(this.src[this.pos] ?? '')) this.pos++;
    if (this.pos === start) {
      this.fail(this.pos >= this.src.length ? 'expected a label key but the selector ended' : `expected a label key, found ${JSON.stringify(this.src[this.pos])}`);
    }
    return this.src.slice(start, this.pos);
  }

  private str(): string {
    this.ws();
    const q = this.src[this.pos];
    if (q !== "'" && q !== '"') this.fail('expected a quoted string');
    const end = this.src.indexOf(q, this.pos + 1);
    if (end < 0) this.fail('unterminated string');
    const s = this.src.slice(this.pos + 1, end);
    this.pos = end + 1;
    return s;
  }

  private set(): string[] {
    this.expect('{');
    const values: string[] = [];
    if (this.eat('}')) return values;
    do values.push(this.str());
    while (this.eat(','));
    this.expect('}');
    return values;
  }
}

function evaluate(n: SelectorNode, labels: Readonly<Record<string, string>>): boolean {
  const get = (k: string): string | undefined => (Object.prototype.hasOwnProperty.call(labels, k) ? labels[k] : undefined);
  switch (n.op) {
    case 'all':
    case 'global':
      return true;
    case 'has':
      return get(n.key) !== undefined;
    case 'eq':
      return get(n.key) === n.value;
    case 'ne':
      return get(n.key) !== n.value;
    case 'contains':
      return get(n.key)?.includes(n.value) ?? false;
    case 'starts':
      return get(n.key)?.startsWith(n.value) ?? false;
    case 'ends':
      return get(n.key)?.endsWith(n.value) ?? false;
    case 'in': {
      const v = get(n.key);
      return v !== undefined && n.values.includes(v);
    }
    case 'notin': {
      const v = get(n.key);
      return v === undefined || !n.values.includes(v);
    }
    case 'not':
      return !evaluate(n.expr, labels);
    case 'and':
      return n.exprs.every((e) => evaluate(e, labels));
    case 'or':
      return n.exprs.some((e) => evaluate(e, labels));
  }
}

function render(n: SelectorNode): string {
  const q = (s: string): string => JSON.stringify(s);
  switch (n.op) {
    case 'all':
    case 'global':
      return `${n.op}()`;
    case 'has':
      return `has(${n.key})`;
    case 'eq':
      return `${n.key} == ${q(n.value)}`;
    case 'ne':
      return `${n.key} != ${q(n.value)}`;
    case 'contains':
      return `${n.key} contains ${q(n.value)}`;
    case 'starts':
      return `${n.key} starts with ${q(n.value)}`;
    case 'ends':
      return `${n.key} ends with ${q(n.value)}`;
    case 'in':
    case 'notin':
      return `${n.key} ${n.op === 'in' ? 'in' : 'not in'} {${n.values.map(q).join(', ')}}`;
    case 'not':
      return `!${render(n.expr)}`;
    case 'and':
    case 'or':
      return `(${n.exprs.map(render).join(n.op === 'and' ? ' && ' : ' || ')})`;
  }
}

function mentionsGlobal(n: SelectorNode): boolean {
  if (n.op === 'global') return true;
  if (n.op === 'not') return mentionsGlobal(n.expr);
  if (n.op === 'and' || n.op === 'or') return n.exprs.some(mentionsGlobal);
  return false;
}

/** Parse a Calico selector; throws SelectorError (code InvalidSelector, with `position`). */
export function parseSelector(source: string): Selector {
  const ast = new Parser(source).parse();
  return {
    source,
    ast,
    usesGlobal: mentionsGlobal(ast),
    matches: (labels) => evaluate(ast, labels),
    toString: () => render(ast),
  };
}
