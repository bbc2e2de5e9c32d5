/**
 * Columnar storage for the common IPv4 route: one path, path id 0, the received attributes.
 *
 * A million such routes as objects cost ~200 bytes each (path, destination, prefix text, map
 * slot) and keep the garbage collector busy copying and marking them. Here each is a slot of an
 * open-addressing hash table over typed arrays — address, length, attribute-set id, source id,
 * flags (stale): 12 bytes a slot, 2–4 slots a route — and objects exist only while something reads them.
 *
 *   (addr, len) ──hash──► slot ──► addr[] len[] attr[] src[] flags[]
 *                                        │      └──► RefTable<PathSource>
 *                                        └──► RefTable<PathAttributes>
 *
 * Deleted slots become tombstones (probing goes on past them); the table is rebuilt when live
 * slots plus tombstones pass 3/4 of it (or live ones fall under 1/16), at a capacity of at least
 * twice the live slots. A rebuild moves slots, so iteration checks `generation` (see
 * LocRib.destinations()).
 */

const EMPTY = 0xff;
const TOMB = 0xfe;
const MIN_CAPACITY = 1024;

/** Objects by a small integer id, reference counted so ids are reused. */
export class RefTable<T extends object> {
  private readonly items: Array<T | undefined> = [];
  private readonly refs: number[] = [];
  private readonly ids = new Map<T, number>();
  private readonly free: number[] = [];
  private lastItem: T | undefined;
  private lastId = -1;

  constructor(private readonly limit = 2 ** 31) {}

  /** The id of `item` (one more reference), or -1 when `limit` ids are in use. */
  acquire(item: T): number {
    let id = item === this.lastItem ? this.lastId : this.ids.get(item);
    if (id === undefined) {
      id = this.free.pop() ?? this.items.length;
      if (id >= this.limit) return -1;
      this.items[id] = item;
      this.refs[id] = 0;
      this.ids.set(item, id);
    }
    this.refs[id]!++;
    this.lastItem = item;
    this.lastId = id;
    return id;
  }

  release(id: number): void {
    const n = (this.refs[id] ?? 0) - 1;
    this.refs[id] = n;
    if (n > 0) return;
    const item = this.items[id];
    if (item === undefined) return;
    this.ids.delete(item);
    this.items[id] = undefined;
    this.free.push(id);
    if (item === this.lastItem) {
      this.lastItem = undefined;
      this.lastId = -1;
    }
  }

  get(id: number): T {
    const item = this.items[id];
    if (item === undefined) throw new Error(`RefTable: no item ${id}`);
    return item;
  }

  /** Ids in use. */
  get size(): number {
    return this.ids.size;
  }
}

/** The power of two ≥ `n` (at least MIN_CAPACITY). */
function capacityFor(n: number): number {
  let cap = MIN_CAPACITY;
  while (cap < n) cap *= 2;
  return cap;
}

export class V4Table {
  private addr: Uint32Array;
  private len: Uint8Array;
  private attrCol: Int32Array;
  private srcCol: Uint16Array;
  /** Bit 0: the path is stale (graceful restart). */
  private flagCol: Uint8Array;
  private mask: number;
  private live = 0;
  private tombs = 0;
  /** Bumped on every rebuild (slots move). */
  generation = 0;

  constructor(capacity = MIN_CAPACITY) {
    const cap = capacityFor(capacity);
    this.mask = cap - 1;
    this.addr = new Uint32Array(cap);
    this.len = new Uint8Array(cap).fill(EMPTY);
    this.attrCol = new Int32Array(cap);
    this.srcCol = new Uint16Array(cap);
    this.flagCol = new Uint8Array(cap);
  }

  get size(): number {
    return this.live;
  }

  /** Slots (live, empty or tombstone): iterate 0..capacity-1 with isLive(). */
  get capacity(): number {
    return this.mask + 1;
  }

  private home(addr: number, len: number): number {
    let h = Math.imul(addr ^ Math.imul(len + 1, 0x85ebca77), 0x9e3779b1);
    h ^= h >>> 16;
    return h & this.mask;
  }

  /** The slot of (addr, len), or -1. */
  find(addr: number, len: number): number {
    const lens = this.len;
    const addrs = this.addr;
    const mask = this.mask;
    for (let i = this.home(addr, len); ; i = (i + 1) & mask) {
      const l = lens[i]!;
      if (l === EMPTY) return -1;
      if (l === len && addrs[i] === addr) return i;
    }
  }

  /** Add (addr, len), which must not be present; returns its slot. */
  insert(addr: number, len: number, attr: number, src: number, flags = 0): number {
    if ((this.live + this.tombs + 1) * 4 > this.capacity * 3) this.rebuild();
    const lens = this.len;
    const mask = this.mask;
    let i = this.home(addr, len);
    while (lens[i]! < TOMB) i = (i + 1) & mask;
    if (lens[i] === TOMB) this.tombs--;
    lens[i] = len;
    this.addr[i] = addr;
    this.attrCol[i] = attr;
    this.srcCol[i] = src;
    this.flagCol[i] = flags;
    this.live++;
    return i;
  }

  remove(slot: number): void {
    if (this.len[slot]! >= TOMB) return;
    // A tombstone is needed only when a probe sequence may continue past this slot.
    const next = (slot + 1) & this.mask;
    if (this.len[next] === EMPTY) {
      this.len[slot] = EMPTY;
      // Earlier tombstones right before an empty slot end no sequence either.
      let j = (slot - 1) & this.mask;
      while (this.len[j] === TOMB) {
        this.len[j] = EMPTY;
        this.tombs--;
        j = (j - 1) & this.mask;
      }
    } else {
      this.len[slot] = TOMB;
      this.tombs++;
    }
    this.live--;
    if (this.capacity > MIN_CAPACITY && this.live * 16 < this.capacity) this.rebuild();
  }

  isLive(slot: number): boolean {
    return this.len[slot]! < TOMB;
  }

  addrAt(slot: number): number {
    return this.addr[slot]!;
  }
  lenAt(slot: number): number {
    return this.len[slot]!;
  }
  attrAt(slot: number): number {
    return this.attrCol[slot]!;
  }
  srcAt(slot: number): number {
    return this.srcCol[slot]!;
  }
  flagsAt(slot: number): number {
    return this.flagCol[slot]!;
  }
  set(slot: number, attr: number, src: number, flags = 0): void {
    this.attrCol[slot] = attr;
    this.srcCol[slot] = src;
    this.flagCol[slot] = flags;
  }
  setFlags(slot: number, flags: number): void {
    this.flagCol[slot] = flags;
  }

  /** Rebuild at the size the live slots need (no tombstones left). */
  private rebuild(): void {
    const { addr, len, attrCol, srcCol, flagCol } = this;
    const fresh = new V4Table((this.live + 1) * 2);
    this.mask = fresh.mask;
    this.addr = fresh.addr;
    this.len = fresh.len;
    this.attrCol = fresh.attrCol;
    this.srcCol = fresh.srcCol;
    this.flagCol = fresh.flagCol;
    this.live = 0;
    this.tombs = 0;
    this.generation++;
    for (let i = 0; i < len.length; i++) if (len[i]! < TOMB) this.insert(addr[i]!, len[i]!, attrCol[i]!, srcCol[i]!, flagCol[i]!);
  }
}
