/**
 * Splits a byte stream of JSON objects (newline-delimited or simply concatenated, as gRPC-gateway
 * streaming responses are) into one object per value. Pure: feed it chunks as they arrive, in any
 * sizes; it tracks nesting and strings (JSON's structural characters are ASCII, so a UTF-8
 * sequence split across chunks cannot confuse it) and keeps an unfinished object for the next chunk.
 */
export class JsonObjectSplitter {
  private parts: Buffer[] = [];
  private depth = 0;
  private inString = false;
  private escaped = false;

  /**
   * The complete objects this chunk finishes, parsed. Throws SyntaxError on malformed JSON.
   * Inside a string it jumps to the next quote or backslash with Buffer.indexOf (memchr): etcd's
   * values are base64 strings, most of a watch event's bytes, and a byte loop in cold JS cost
   * ≈ 0.3 ms per 7 KB IPAMBlock event with its previous value (bench/RESULTS.md, session 5).
   */
  push(chunk: Buffer): unknown[] {
    const out: unknown[] = [];
    let start = 0;
    // The next backslash at or after i (-1: none left in this chunk), found once and reused.
    let backslash = -2;
    for (let i = 0; i < chunk.length; i++) {
      if (this.inString) {
        if (this.escaped) {
          this.escaped = false; // chunk[i] is the escaped character
          continue;
        }
        if (backslash !== -1 && backslash < i) backslash = chunk.indexOf(0x5c /* \ */, i);
        const quote = chunk.indexOf(0x22 /* " */, i);
        if (backslash !== -1 && (quote === -1 || backslash < quote)) {
          i = backslash;
          this.escaped = true;
          continue;
        }
        if (quote === -1) break; // the string goes on in the next chunk
        i = quote;
        this.inString = false;
        continue;
      }
      const c = chunk[i]!;
      if (this.depth === 0) {
        // between objects: whitespace (newline delimiters) is skipped
        if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
          start = i + 1;
          continue;
        }
        if (c !== 0x7b /* { */) throw new SyntaxError(`JSON stream: expected "{" at byte ${i} of a chunk, got ${JSON.stringify(String.fromCharCode(c))}`);
      }
      if (c === 0x22) this.inString = true;
      else if (c === 0x7b || c === 0x5b /* [ */) this.depth++;
      else if (c === 0x7d || c === 0x5d /* } ] */) {
        this.depth--;
        if (this.depth === 0) {
          this.parts.push(chunk.subarray(start, i + 1));
          const text = Buffer.concat(this.parts).toString('utf8');
          this.parts = [];
          start = i + 1;
          out.push(JSON.parse(text));
        }
      }
    }
    if (this.depth > 0 && start < chunk.length) this.parts.push(chunk.subarray(start));
    return out;
  }

  /** True when a partial object is buffered (the stream ended mid-object). */
  get pending(): boolean {
    return this.depth > 0 || this.parts.length > 0;
  }
}
