import type { FileHandle } from "node:fs/promises";
import { mkdir, open, readdir, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import type { Hlc } from "../clock/ids.js";
import { ErrorCode, isNxsError, NxsError, StorageError } from "../errors/errors.js";
import type { Change, Snapshot } from "../model/change.js";
import type { Storage, StoredState } from "../sync/storage.js";

/** Options of {@link createFileStorage}. */
export interface FileStorageOptions {
  /** The directory of this document's files (created if missing). One process per directory. */
  readonly dir: string;
  /**
   * Rewrite the outbox file once it holds at least this many acknowledged records and more
   * acknowledged than live ones (default 64).
   */
  readonly compactAfter?: number;
}

const OUTBOX = "outbox.log";
const SNAPSHOT = "snapshot.json";
const TMP = ".tmp";

type OutboxRecord =
  | { readonly t: "c"; readonly c: Change }
  | { readonly t: "a"; readonly s: number }
  | { readonly t: "l"; readonly s: number; readonly h: Hlc };

const hex = (n: number): string => n.toString(16).padStart(8, "0");

/** One line: 8 hex digits of the CRC-32 of the JSON, a space, the JSON, a newline. */
function encodeLine(value: unknown): string {
  const json = JSON.stringify(value);
  return `${hex(crc32(json))} ${json}\n`;
}

function decodeLine(line: string, where: string): unknown {
  const json = line.slice(9);
  if (line[8] !== " " || !/^[0-9a-f]{8}$/.test(line.slice(0, 8)) || hex(crc32(json)) !== line.slice(0, 8)) {
    throw corrupt(`${where}: checksum mismatch`);
  }
  try {
    return JSON.parse(json);
  } catch (error) {
    throw corrupt(`${where}: bad JSON`, error);
  }
}

const corrupt = (message: string, cause?: unknown): StorageError =>
  new StorageError(
    ErrorCode.StorageCorrupt,
    `file storage: ${message}`,
    cause === undefined ? {} : { cause },
  );

const io = (what: string, cause: unknown): NxsError =>
  isNxsError(cause)
    ? cause
    : new StorageError(ErrorCode.StorageIo, `file storage: ${what}: ${String(cause)}`, { cause });

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object";

function isChange(v: unknown): v is Change {
  return (
    isObject(v) &&
    typeof v.doc === "string" &&
    typeof v.origin === "string" &&
    Number.isSafeInteger(v.seq) &&
    (v.seq as number) > 0 &&
    typeof v.hlc === "string" &&
    Array.isArray(v.ops)
  );
}

function toRecord(v: unknown, where: string): OutboxRecord {
  if (isObject(v)) {
    if (v.t === "c" && isChange(v.c)) return v as OutboxRecord;
    if (v.t === "a" && Number.isSafeInteger(v.s)) return v as OutboxRecord;
    if (v.t === "l" && Number.isSafeInteger(v.s) && typeof v.h === "string") return v as OutboxRecord;
  }
  throw corrupt(`${where}: not an outbox record`);
}

function isSnapshot(v: unknown): v is Snapshot {
  return isObject(v) && v.format === 1 && typeof v.doc === "string" && isObject(v.version) && "state" in v;
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    if ((error as { code?: unknown }).code === "ENOENT") return undefined;
    throw error;
  }
}

/** fsync a directory so a rename in it is durable (not supported everywhere: then a no-op). */
async function syncDir(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, "r");
    await handle.sync();
  } catch {
    // some platforms cannot fsync a directory; the rename is still atomic
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

async function writeDurably(path: string, data: string): Promise<void> {
  const handle = await open(path, "w");
  try {
    await handle.writeFile(data, "utf8");
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Creates a {@link Storage} in a directory, for `@nxs-sync/core/node`:
 * - `outbox.log`: an append-only file of checksummed lines (local changes, acknowledgement marks,
 *   the last seq/HLC). Every write is fsync'd before its promise resolves. A torn last line (a write
 *   cut by a crash: it had not resolved, so nobody relied on it) is dropped on open; any other damage
 *   is `storage/corrupt`. When most records are acknowledged the file is rewritten (temp file,
 *   fsync, rename), keeping the last seq/HLC.
 * - `snapshot.json`: one checksummed line, replaced atomically (temp file, fsync, rename, fsync of
 *   the directory).
 * @param options - The directory and the compaction threshold; see {@link FileStorageOptions}.
 * @returns A storage that opens its files on first use.
 * @throws StorageError `storage/io` (retryable) when a file cannot be read or written;
 *   `storage/corrupt` when a file does not decode. NxsError `closed` after `close()`.
 * @example
 * ```ts
 * import { createFileStorage } from "@nxs-sync/core/node";
 * const storage = createFileStorage({ dir: "/var/lib/nxs/routes" });
 * ```
 */
export function createFileStorage(options: FileStorageOptions): Storage {
  const dir = options.dir;
  const compactAfter = Math.max(1, options.compactAfter ?? 64);
  const outboxPath = join(dir, OUTBOX);
  const snapshotPath = join(dir, SNAPSHOT);

  let opened: Promise<void> | undefined;
  let handle: FileHandle | undefined;
  let closed = false;
  let tail: Promise<unknown> = Promise.resolve();

  let live: Change[] = [];
  let records = 0;
  let last: { seq: number; hlc: Hlc } | undefined;
  let snapshot: Snapshot | undefined;

  const noteLast = (seq: number, hlc: Hlc): void => {
    if (last === undefined || seq > last.seq) last = { seq, hlc };
  };

  const load = async (): Promise<void> => {
    await mkdir(dir, { recursive: true });
    for (const name of await readdir(dir)) {
      if (name.endsWith(TMP)) await rm(join(dir, name), { force: true });
    }
    const text = (await readIfExists(outboxPath)) ?? "";
    const end = text.lastIndexOf("\n") + 1;
    const lines = text.slice(0, end).split("\n");
    lines.pop();
    lines.forEach((line, i) => {
      const record = toRecord(decodeLine(line, `${OUTBOX} line ${i + 1}`), `${OUTBOX} line ${i + 1}`);
      records++;
      if (record.t === "c") {
        live.push(record.c);
        noteLast(record.c.seq, record.c.hlc);
      } else if (record.t === "a") {
        live = live.filter((c) => c.seq > record.s);
      } else {
        noteLast(record.s, record.h);
      }
    });
    handle = await open(outboxPath, "a+");
    if (end < text.length) {
      // a torn last line: cut it off so the next append starts on a clean line
      await handle.truncate(Buffer.byteLength(text.slice(0, end), "utf8"));
      await handle.sync();
    }
    const snap = await readIfExists(snapshotPath);
    if (snap !== undefined) {
      const value = decodeLine(snap.endsWith("\n") ? snap.slice(0, -1) : snap, SNAPSHOT);
      if (!isSnapshot(value)) throw corrupt(`${SNAPSHOT}: not a snapshot`);
      snapshot = value;
    }
  };

  /** Runs `op` after every earlier one, once the files are open. */
  const run = <T>(what: string, op: () => Promise<T>): Promise<T> => {
    if (closed) return Promise.reject(new NxsError(ErrorCode.Closed, "file storage is closed"));
    const next = tail.then(async () => {
      if (closed) throw new NxsError(ErrorCode.Closed, "file storage is closed");
      opened ??= load().catch(async (error) => {
        opened = undefined;
        await handle?.close().catch(() => undefined);
        handle = undefined;
        live = [];
        records = 0;
        last = undefined;
        snapshot = undefined;
        throw error;
      });
      try {
        await opened;
        return await op();
      } catch (error) {
        throw io(what, error);
      }
    });
    tail = next.catch(() => undefined);
    return next;
  };

  const compact = async (remaining: readonly Change[]): Promise<void> => {
    let data = last === undefined ? "" : encodeLine({ t: "l", s: last.seq, h: last.hlc });
    for (const c of remaining) data += encodeLine({ t: "c", c });
    await writeDurably(outboxPath + TMP, data);
    await handle?.close();
    handle = undefined;
    await rename(outboxPath + TMP, outboxPath);
    await syncDir(dir);
    handle = await open(outboxPath, "a+");
    records = remaining.length + (last === undefined ? 0 : 1);
  };

  const append = async (lines: string): Promise<void> => {
    await handle!.write(lines);
    await handle!.sync();
  };

  return {
    load: () =>
      run("load", async (): Promise<StoredState | undefined> => {
        if (snapshot === undefined && live.length === 0 && last === undefined) return undefined;
        return structuredClone({
          ...(snapshot === undefined ? {} : { snapshot }),
          outbox: live,
          ...(last === undefined ? {} : { last }),
        });
      }),
    appendOutbox: (changes) =>
      run("appendOutbox", async () => {
        if (changes.length === 0) return;
        const copies = structuredClone(changes) as Change[];
        await append(copies.map((c) => encodeLine({ t: "c", c })).join(""));
        records += copies.length;
        for (const c of copies) {
          live.push(c);
          noteLast(c.seq, c.hlc);
        }
      }),
    ackOutbox: (seq) =>
      run("ackOutbox", async () => {
        if (!live.some((c) => c.seq <= seq)) return;
        const remaining = live.filter((c) => c.seq > seq);
        const dead = records + 1 - remaining.length;
        if (dead >= compactAfter && dead > remaining.length) await compact(remaining);
        else {
          await append(encodeLine({ t: "a", s: seq }));
          records++;
        }
        live = remaining;
      }),
    saveSnapshot: (next) =>
      run("saveSnapshot", async () => {
        const copy = structuredClone(next) as Snapshot;
        await writeDurably(snapshotPath + TMP, encodeLine(copy));
        await rename(snapshotPath + TMP, snapshotPath);
        await syncDir(dir);
        snapshot = copy;
      }),
    async close() {
      if (closed) return;
      closed = true;
      await tail;
      await handle?.close().catch(() => undefined);
      handle = undefined;
    },
  };
}
