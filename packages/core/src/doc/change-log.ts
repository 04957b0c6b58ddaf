import { getVersion, type VersionVector } from "../clock/version-vector.js";
import { decodeOwnChanges, encodeChanges } from "../codec/changes-codec.js";
import type { Change } from "../model/change.js";

/**
 * Changes of one origin retained in encoded form: consecutive seqs `first..last`, every one
 * applied, as the JSON text of {@link encodeChanges}. A change object costs ~150 bytes of heap per
 * op (op, path array, elements); its encoded text about ten.
 */
interface Chunk {
  readonly first: number;
  readonly last: number;
  /** HLC of the change at `last` (the head when the chunk ends the applied prefix). */
  readonly lastHlc: string;
  readonly data: string;
}

/** What is retained of one origin: sealed chunks, then the hot list of change objects. */
interface OriginLog {
  /** Ascending, contiguous, all applied; every seq in them is below `start`. */
  chunks: Chunk[];
  /** Seq of `list[0]`. */
  start: number;
  /** Hot changes: `list[k]` has seq `start + k` (holes only past a gap). */
  list: (Change | undefined)[];
  /** Ops in `list`. */
  ops: number;
  /** The next seal is tried once `list` is this long or holds this many ops (a gap backs it off). */
  sealAtLength: number;
  sealAtOps: number;
}

/** A seal is tried once the hot list holds this many changes... */
const SEAL_CHANGES = 64;
/** ...or this many ops. */
const SEAL_OPS = 1024;

/**
 * What a document has applied and still retains: the version vector (per origin, the highest
 * contiguous seq), seqs applied past a gap, and the retained changes that `changesSince` serves
 * until `compact` drops them. Recent changes are kept as objects; once an origin's applied prefix
 * holds {@link SEAL_CHANGES} changes or {@link SEAL_OPS} ops it is sealed into an encoded chunk,
 * decoded again only when `changesSince` or `compact` reaches it.
 */
export class ChangeLog {
  readonly vv = new Map<string, number>();
  /** Seqs applied past a gap (own changes made after a restart before older ones came back). */
  readonly extra = new Map<string, Set<number>>();
  readonly #log = new Map<string, OriginLog>();
  /** Per origin: seqs up to this were dropped by compaction (or came in a snapshot). */
  readonly #floor = new Map<string, number>();
  /** Per origin: the HLC of the change at the compaction floor. */
  readonly #floorHlc = new Map<string, string>();
  /**
   * Per origin: the newest HLC a frontier passed to {@link compact} covered. A floor that came in a
   * snapshot is not stable by itself (this replica may still get older changes of other origins).
   */
  readonly #stableHlc = new Map<string, string>();
  #version: VersionVector | undefined;

  /** Starts from a snapshot's version (nothing retained below it). */
  static fromVersion(
    vv: VersionVector,
    extra: Map<string, Set<number>>,
    hlcOf: (origin: string) => string | undefined,
  ): ChangeLog {
    const log = new ChangeLog();
    for (const [o, s] of Object.entries(vv)) {
      if (s <= 0) continue;
      log.vv.set(o, s);
      log.#floor.set(o, s);
      const h = hlcOf(o);
      if (h !== undefined) log.#floorHlc.set(o, h);
    }
    for (const [o, seqs] of extra) log.extra.set(o, new Set(seqs));
    return log;
  }

  /** Whether `(origin, seq)` was applied. */
  has(origin: string, seq: number): boolean {
    return seq <= (this.vv.get(origin) ?? 0) || (this.extra.get(origin)?.has(seq) ?? false);
  }

  /** The next seq expected from `origin`. */
  next(origin: string): number {
    return (this.vv.get(origin) ?? 0) + 1;
  }

  /** Records an applied change and retains it. */
  record(change: Change): void {
    const o = change.origin;
    let m = this.#log.get(o);
    if (m === undefined) {
      m = {
        chunks: [],
        start: change.seq,
        list: [],
        ops: 0,
        sealAtLength: SEAL_CHANGES,
        sealAtOps: SEAL_OPS,
      };
      this.#log.set(o, m);
    }
    if (change.seq < m.start) {
      // Older than anything hot (an own change coming back after a restart): prepend. Sealed
      // chunks hold only applied seqs up to the version, which this change is above.
      const pad: (Change | undefined)[] = new Array(m.start - change.seq).fill(undefined);
      m.list = [...pad, ...m.list];
      m.start = change.seq;
    }
    const k = change.seq - m.start;
    while (m.list.length < k) m.list.push(undefined);
    m.list[k] = change;
    m.ops += change.ops.length;
    const v = this.vv.get(o) ?? 0;
    if (change.seq === v + 1) {
      let nv = change.seq;
      const ex = this.extra.get(o);
      if (ex !== undefined) {
        while (ex.delete(nv + 1)) nv++;
        if (ex.size === 0) this.extra.delete(o);
      }
      this.vv.set(o, nv);
    } else {
      let ex = this.extra.get(o);
      if (ex === undefined) {
        ex = new Set();
        this.extra.set(o, ex);
      }
      ex.add(change.seq);
    }
    this.#version = undefined;
    if (m.list.length >= m.sealAtLength || m.ops >= m.sealAtOps) this.#seal(m, this.vv.get(o) ?? 0);
  }

  /** Encodes the hot list's applied prefix (up to `upTo`) into a chunk. */
  #seal(m: OriginLog, upTo: number): void {
    let k = 0;
    let ops = 0;
    while (k < m.list.length && m.start + k <= upTo) {
      const c = m.list[k];
      if (c === undefined) break;
      ops += c.ops.length;
      k++;
    }
    if (k > 0) {
      const sealed = m.list.slice(0, k) as Change[];
      m.chunks.push(chunkOf(sealed));
      m.list = m.list.slice(k);
      m.start += k;
      m.ops -= ops;
    }
    m.sealAtLength = m.list.length + SEAL_CHANGES;
    m.sealAtOps = m.ops + SEAL_OPS;
  }

  /** The HLC of the change at the contiguous head of `origin`, when known. */
  headHlc(origin: string): string | undefined {
    const v = this.vv.get(origin);
    if (v === undefined) return undefined;
    const m = this.#log.get(origin);
    if (m !== undefined) {
      const c = m.list[v - m.start];
      if (c !== undefined) return c.hlc;
      const last = m.chunks[m.chunks.length - 1];
      if (last !== undefined && last.last === v) return last.lastHlc;
    }
    return this.#floor.get(origin) === v ? this.#floorHlc.get(origin) : undefined;
  }

  /** The version vector, frozen (cached until the next record). */
  version(): VersionVector {
    if (this.#version === undefined) this.#version = Object.freeze(Object.fromEntries(this.vv));
    return this.#version;
  }

  /** The retained changes `since` lacks, ordered by HLC (per origin that is seq order). */
  changesSince(since: VersionVector): Change[] {
    const out: Change[] = [];
    for (const [o, m] of this.#log) {
      const s = getVersion(since, o);
      for (const chunk of m.chunks) {
        if (chunk.last <= s) continue;
        for (const c of decodeChunk(chunk)) if (c.seq > s) out.push(c);
      }
      for (let k = Math.max(0, s + 1 - m.start); k < m.list.length; k++) {
        const c = m.list[k];
        if (c !== undefined) out.push(c);
      }
    }
    out.sort((a, b) => (a.hlc < b.hlc ? -1 : a.hlc > b.hlc ? 1 : a.seq - b.seq));
    return out;
  }

  /**
   * Drops retained changes covered by `frontier` (clamped to what was applied).
   * @returns Per origin, the HLC of the newest change a frontier covered: stamps not after it are
   * stable. An origin whose floor (from a snapshot) is above what the frontier covers has none.
   */
  compact(frontier: VersionVector): Map<string, string> {
    for (const [o, f0] of Object.entries(frontier)) {
      const f = Math.min(f0, this.vv.get(o) ?? 0);
      const old = this.#floor.get(o) ?? 0;
      if (f < old || f === 0) continue;
      if (f > old) {
        const m = this.#log.get(o);
        const h = m === undefined ? undefined : dropThrough(m, f);
        if (h !== undefined) this.#floorHlc.set(o, h);
        this.#floor.set(o, f);
        if (m !== undefined && m.chunks.length === 0 && m.list.every((c) => c === undefined))
          this.#log.delete(o);
      }
      const h = this.#floorHlc.get(o);
      if (h !== undefined) this.#stableHlc.set(o, h);
    }
    return new Map(this.#stableHlc);
  }

  /** Whether every change of `origin` after `seq` that was applied here is still retained. */
  canServe(origin: string, seq: number): boolean {
    return seq >= (this.#floor.get(origin) ?? 0);
  }

  /** How many changes are retained. */
  size(): number {
    let n = 0;
    for (const m of this.#log.values()) {
      for (const c of m.chunks) n += c.last - c.first + 1;
      for (const c of m.list) if (c !== undefined) n++;
    }
    return n;
  }
}

function chunkOf(changes: readonly Change[]): Chunk {
  const first = changes[0] as Change;
  const last = changes[changes.length - 1] as Change;
  return {
    first: first.seq,
    last: last.seq,
    lastHlc: last.hlc,
    data: JSON.stringify(encodeChanges(changes, { format: 2 })),
  };
}

function decodeChunk(chunk: Chunk): Change[] {
  return decodeOwnChanges(JSON.parse(chunk.data));
}

/**
 * Drops the changes of one origin with seq up to `f` (chunks whole, a chunk cut at `f` re-encoded).
 * @returns The HLC of the change at seq `f`, when it was retained.
 */
function dropThrough(m: OriginLog, f: number): string | undefined {
  let hlc: string | undefined;
  const kept: Chunk[] = [];
  for (const chunk of m.chunks) {
    if (chunk.last <= f) {
      if (chunk.last === f) hlc = chunk.lastHlc;
      continue;
    }
    if (chunk.first > f) {
      kept.push(chunk);
      continue;
    }
    const changes = decodeChunk(chunk);
    hlc = changes.find((c) => c.seq === f)?.hlc;
    kept.push(chunkOf(changes.filter((c) => c.seq > f)));
  }
  m.chunks = kept;
  const inList = m.list[f - m.start];
  if (inList !== undefined) hlc = inList.hlc;
  const drop = f + 1 - m.start;
  if (drop > 0) {
    for (let k = 0; k < Math.min(drop, m.list.length); k++) m.ops -= m.list[k]?.ops.length ?? 0;
    m.list = m.list.slice(drop);
    m.start = f + 1;
  }
  return hlc;
}
