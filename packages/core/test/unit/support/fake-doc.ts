import { encodeHlc } from "../../../src/clock/hlc.js";
import type { DocId, Hlc, ReplicaId } from "../../../src/clock/ids.js";
import { getVersion, type VersionVector } from "../../../src/clock/version-vector.js";
import type { ApplyResult, RejectedChange, ReplicatedDoc } from "../../../src/doc/replicated-doc.js";
import { ErrorCode, ValidationError } from "../../../src/errors/errors.js";
import type { Change, Json, Snapshot } from "../../../src/model/change.js";
import type { RestoredState, SnapshotReceiver } from "../../../src/sync/replica.js";

/**
 * A minimal but correct ReplicatedDoc for engine tests, independent of the real document model:
 * a flat last-writer-wins map (key = path[0]) with version vector, held changes past gaps,
 * idempotent apply and snapshots. A `set` on key "__reject__" is refused (to test rejections).
 */
export interface FakeDoc extends ReplicatedDoc, SnapshotReceiver {
  set(key: string, value: Json): Change;
  get(): Readonly<Record<string, Json>>;
}

interface Cell {
  readonly value: Json;
  readonly hlc: Hlc;
}

export interface FakeDocOptions {
  readonly docId: DocId;
  readonly replicaId: ReplicaId;
  readonly now: () => number;
  readonly restored?: RestoredState;
  /** When false, the doc has no applySnapshot (to test that path). */
  readonly snapshots?: boolean;
}

export function createFakeDoc(options: FakeDocOptions): FakeDoc {
  const { docId, replicaId } = options;
  const cells = new Map<string, Cell>();
  const version: Record<string, number> = {};
  const held = new Map<string, Map<number, Change>>();
  const log: Change[] = [];
  const listeners = new Set<(c: Change) => void>();
  let lastMs = 0;
  let counter = 0;
  let lastSeq = options.restored?.last?.seq ?? 0;

  const stamp = (): Hlc => {
    const ms = options.now();
    if (ms > lastMs) {
      lastMs = ms;
      counter = 0;
    } else counter++;
    return encodeHlc({ ms: lastMs, counter, node: replicaId });
  };
  const receive = (hlc: string): void => {
    const ms = Number.parseInt(hlc.slice(0, 12), 16);
    const c = Number.parseInt(hlc.slice(12, 18), 16);
    if (ms > lastMs || (ms === lastMs && c > counter)) {
      lastMs = ms;
      counter = c;
    }
  };

  const write = (key: string, cell: Cell): void => {
    const cur = cells.get(key);
    if (cur === undefined || cur.hlc < cell.hlc) cells.set(key, cell);
  };

  const applyOne = (c: Change): void => {
    for (const op of c.ops) {
      if (op.kind === "set") write(op.path[0]!, { value: op.value, hlc: c.hlc });
    }
    receive(c.hlc);
    version[c.origin] = c.seq;
    log.push(c);
  };

  const drain = (origin: string, applied: Change[]): void => {
    const h = held.get(origin);
    while (h !== undefined) {
      const next = h.get(getVersion(version, origin) + 1);
      if (next === undefined) break;
      h.delete(next.seq);
      applyOne(next);
      applied.push(next);
    }
    if (h !== undefined && h.size === 0) held.delete(origin);
  };

  const check = (input: unknown): Change | string => {
    if (input === null || typeof input !== "object") return "not an object";
    const c = input as Change;
    if (c.doc !== docId) return `wrong doc ${String(c.doc)}`;
    if (typeof c.origin !== "string" || !Number.isSafeInteger(c.seq) || c.seq < 1) return "bad id";
    if (typeof c.hlc !== "string" || !Array.isArray(c.ops)) return "bad change";
    for (const op of c.ops) if (op.kind === "set" && op.path[0] === "__reject__") return "refused key";
    return c;
  };

  const applyRemote = (inputs: readonly unknown[]): ApplyResult => {
    const applied: Change[] = [];
    const rejected: RejectedChange[] = [];
    let duplicates = 0;
    let heldCount = 0;
    for (const input of inputs) {
      const c = check(input);
      if (typeof c === "string") {
        rejected.push({ input, error: new ValidationError(c, { code: ErrorCode.OpInvalid }) });
        continue;
      }
      const have = getVersion(version, c.origin);
      if (c.seq <= have || held.get(c.origin)?.has(c.seq)) {
        duplicates++;
        continue;
      }
      if (c.seq === have + 1) {
        applyOne(c);
        applied.push(c);
        drain(c.origin, applied);
      } else {
        let h = held.get(c.origin);
        if (h === undefined) {
          h = new Map();
          held.set(c.origin, h);
        }
        h.set(c.seq, c);
        heldCount++;
      }
    }
    return { applied, duplicates, held: heldCount, rejected };
  };

  const applySnapshot = (snapshot: Snapshot): ApplyResult => {
    const state = snapshot.state as { cells: Record<string, { value: Json; hlc: Hlc }> };
    for (const [key, cell] of Object.entries(state.cells)) {
      write(key, cell);
      receive(cell.hlc);
    }
    for (const [origin, seq] of Object.entries(snapshot.version)) {
      if (seq > getVersion(version, origin)) version[origin] = seq;
    }
    const applied: Change[] = [];
    for (const origin of [...held.keys()]) {
      const h = held.get(origin)!;
      for (const seq of [...h.keys()]) if (seq <= getVersion(version, origin)) h.delete(seq);
      drain(origin, applied);
    }
    return { applied, duplicates: 0, held: 0, rejected: [] };
  };

  const doc: FakeDoc = {
    docId,
    replicaId,
    version: () => Object.freeze({ ...version }),
    applyRemote,
    changesSince: (since: VersionVector) => log.filter((c) => c.seq > getVersion(since, c.origin)),
    gaps() {
      const out: Record<string, number> = {};
      for (const [origin, h] of held) if (h.size > 0) out[origin] = getVersion(version, origin) + 1;
      return Object.freeze(out);
    },
    heldCount() {
      let n = 0;
      for (const h of held.values()) n += h.size;
      return n;
    },
    snapshot: () => ({
      format: 1,
      doc: docId,
      version: Object.freeze({ ...version }),
      state: { cells: Object.fromEntries(cells) } as unknown as Json,
    }),
    compact() {},
    onLocalChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    applySnapshot,
    set(key, value) {
      lastSeq = Math.max(lastSeq, getVersion(version, replicaId)) + 1;
      const change: Change = {
        doc: docId,
        origin: replicaId,
        seq: lastSeq,
        hlc: stamp(),
        ops: [{ kind: "set", path: [key], value }],
      };
      applyOne(change);
      for (const l of [...listeners]) l(change);
      return change;
    },
    get: () => Object.freeze(Object.fromEntries([...cells].map(([k, c]) => [k, c.value]))),
  };

  if (options.restored?.snapshot !== undefined) applySnapshot(options.restored.snapshot);
  if (options.restored?.last !== undefined) receive(options.restored.last.hlc);
  if (options.snapshots === false) (doc as { applySnapshot?: unknown }).applySnapshot = undefined;
  return doc;
}
