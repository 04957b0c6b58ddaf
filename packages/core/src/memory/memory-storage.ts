import type { Hlc } from "../clock/ids.js";
import { ErrorCode, NxsError } from "../errors/errors.js";
import type { Change, Snapshot } from "../model/change.js";
import type { Storage, StoredState } from "../sync/storage.js";

/** A {@link Storage} kept in memory, with a peek for tests. */
export interface MemoryStorage extends Storage {
  /** What `load()` would return now (copies), without the async hop. */
  peek(): StoredState | undefined;
  /** A new open handle over the same data (as reopening a file after a restart). */
  reopen(): MemoryStorage;
}

interface Cell {
  snapshot: Snapshot | undefined;
  outbox: Change[];
  last: { seq: number; hlc: Hlc } | undefined;
}

/**
 * Creates a {@link Storage} that keeps everything in memory. Values are deep-copied on the way in and
 * out (as a file would), so callers cannot alias stored data. It survives a replica that is dropped
 * without `stop()` as long as the same object is passed to the next one, which is how tests simulate
 * a crash; it does not survive the process.
 * @returns A fresh, empty storage. `close()` closes this handle only (later calls on it throw);
 *   `reopen()` gives a new handle over the same data.
 * @throws NxsError `closed` from every method after `close()`.
 * @example
 * ```ts
 * const storage = createMemoryStorage();
 * await storage.appendOutbox([change]);
 * (await storage.load())?.outbox.length; // 1
 * ```
 */
export function createMemoryStorage(): MemoryStorage {
  return open({ snapshot: undefined, outbox: [], last: undefined });
}

function open(cell: Cell): MemoryStorage {
  let closed = false;

  const check = (): void => {
    if (closed) throw new NxsError(ErrorCode.Closed, "memory storage is closed");
  };
  const peek = (): StoredState | undefined => {
    const { snapshot, outbox, last } = cell;
    if (snapshot === undefined && outbox.length === 0 && last === undefined) return undefined;
    return structuredClone({
      ...(snapshot === undefined ? {} : { snapshot }),
      outbox,
      ...(last === undefined ? {} : { last }),
    });
  };

  return {
    peek,
    reopen: () => open(cell),
    async load() {
      check();
      return peek();
    },
    async appendOutbox(changes) {
      check();
      // A deeply frozen change (every change a doc makes) cannot be altered by anyone: storing it
      // as is aliases nothing mutable. Anything else is copied.
      for (const change of changes.every(isDeeplyFrozen) ? changes : structuredClone(changes)) {
        cell.outbox.push(change);
        if (cell.last === undefined || change.seq > cell.last.seq) {
          cell.last = { seq: change.seq, hlc: change.hlc };
        }
      }
    },
    async ackOutbox(seq) {
      check();
      cell.outbox = cell.outbox.filter((c) => c.seq > seq);
    },
    async saveSnapshot(next) {
      check();
      cell.snapshot = structuredClone(next);
    },
    async close() {
      closed = true;
    },
  };
}

/**
 * Whether `value` is JSON-like data (plain objects, arrays, primitives) that is frozen all the way
 * down. Anything else (a function, a symbol, a Map or Date, a cycle deeper than `depth`) answers
 * false, so it goes through `structuredClone` as before (which refuses what it cannot copy).
 */
function isDeeplyFrozen(value: unknown, depth = 0): boolean {
  if (value === null) return true;
  const t = typeof value;
  if (t === "function" || t === "symbol") return false;
  if (t !== "object") return true;
  if (depth > 64 || !Object.isFrozen(value)) return false;
  if (Array.isArray(value)) {
    for (const v of value) if (!isDeeplyFrozen(v, depth + 1)) return false;
    return true;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  for (const k in value) if (!isDeeplyFrozen((value as Record<string, unknown>)[k], depth + 1)) return false;
  return true;
}
