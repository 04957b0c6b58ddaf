import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import { ErrorCode, NxsError } from "@nxs-sync/core";
import { readZip } from "./zip.js";

/** Per nxs collection of a backup: its records counted and digested. */
export type TableSums = Record<string, { readonly count: number; readonly digest: string }>;

/** What a backup's verification found. */
export interface Verified {
  /** sha256 of the whole file. */
  readonly sha256: string;
  readonly bytes: number;
  /** `ok` (SQLite `PRAGMA integrity_check`) for a full backup; `n/a` for a logical one. */
  readonly integrity: string;
  readonly tables: TableSums;
}

/**
 * `node:sqlite` at run time (Node 22.13+ without a flag, 24): loaded through
 * `process.getBuiltinModule`, which bundlers leave alone (esbuild rewrites `node:sqlite` to a
 * package named `sqlite`).
 */
function openSqlite(path: string, readOnly: boolean): DatabaseSync {
  const sqlite = process.getBuiltinModule("node:sqlite") as typeof import("node:sqlite") | undefined;
  if (sqlite === undefined) {
    throw new NxsError(ErrorCode.ConfigInvalid, "verifying a backup needs node:sqlite (Node 22.13 or newer)");
  }
  return new sqlite.DatabaseSync(path, { readOnly });
}

const bad = (message: string) => new NxsError(ErrorCode.StorageCorrupt, message);

/** A digest of rows (each as JSON), in the order given. */
export function digestRows(rows: Iterable<unknown>): { count: number; digest: string } {
  const h = createHash("sha256");
  let count = 0;
  for (const r of rows) {
    h.update(JSON.stringify(r, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString("base64") : v)));
    h.update("\n");
    count++;
  }
  return { count, digest: h.digest("hex").slice(0, 16) };
}

/**
 * Verifies a full backup (a PocketBase backup zip): it opens, `data.db` passes SQLite's integrity
 * check, and the nxs collections' records are counted and digested.
 * @param path - The zip.
 * @returns What was found.
 * @throws NxsError `storage/corrupt` naming what failed.
 */
export async function verifyFullBackup(path: string): Promise<Verified> {
  const bytes = await readFile(path);
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  const entries = readZip(bytes, path);
  const db = entries.find((e) => e.name === "data.db");
  if (db === undefined) throw bad(`${path}: no data.db in the archive (not a PocketBase backup)`);
  const dir = await mkdtemp(join(tmpdir(), "nxs-verify-"));
  try {
    await writeFile(join(dir, "data.db"), db.read());
    const wal = entries.find((e) => e.name === "data.db-wal");
    if (wal !== undefined && wal.size > 0) await writeFile(join(dir, "data.db-wal"), wal.read());
    for (const e of entries) if (e.name !== "data.db" && e.name !== "data.db-wal") e.read(); // CRC of every file
    let sqlite: DatabaseSync;
    try {
      sqlite = openSqlite(join(dir, "data.db"), wal === undefined || wal.size === 0);
    } catch (e) {
      throw bad(`${path}: data.db does not open as SQLite (${(e as Error).message})`);
    }
    try {
      let integrity: string;
      try {
        const rows = sqlite.prepare("PRAGMA integrity_check").all() as { integrity_check: string }[];
        integrity = rows.map((r) => r.integrity_check).join("; ");
      } catch (e) {
        throw bad(`${path}: data.db fails SQLite's integrity check (${(e as Error).message})`);
      }
      if (integrity !== "ok") throw bad(`${path}: data.db fails SQLite's integrity check: ${integrity}`);
      const names = (
        sqlite
          .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'nxs\\_%' ESCAPE '\\' ORDER BY name",
          )
          .all() as { name: string }[]
      ).map((r) => r.name);
      if (!names.includes("nxs_changes"))
        throw bad(`${path}: no nxs_changes table (not a backup of an nxs-sync server)`);
      const tables: TableSums = {};
      for (const name of names) {
        tables[name] = digestRows(sqlite.prepare(`SELECT * FROM "${name}" ORDER BY id`).iterate());
      }
      return { sha256, bytes: bytes.length, integrity, tables };
    } finally {
      sqlite.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A logical export: a header line, then one `{ c: collection, r: record }` per line. */
export interface LogicalHeader {
  readonly format: "nxs-sync-logical";
  readonly version: 1;
  readonly server: string;
  readonly createdAt: string;
  readonly collections: readonly string[];
}

/**
 * Reads and verifies a logical export: every line parses, and the records are counted and digested
 * per collection.
 * @param path - The `.jsonl` file.
 * @returns The header, the records per collection (in file order) and what was found.
 * @throws NxsError `storage/corrupt` naming what failed.
 */
export async function readLogicalBackup(
  path: string,
): Promise<{ header: LogicalHeader; records: Map<string, Record<string, unknown>[]>; verified: Verified }> {
  const bytes = await readFile(path);
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  const lines = bytes
    .toString("utf8")
    .split("\n")
    .filter((l) => l !== "");
  let header: LogicalHeader;
  const records = new Map<string, Record<string, unknown>[]>();
  try {
    header = JSON.parse(lines[0] ?? "") as LogicalHeader;
    if (header.format !== "nxs-sync-logical") throw new Error("no nxs-sync-logical header");
    for (const c of header.collections) records.set(c, []);
    for (const [i, line] of lines.slice(1).entries()) {
      const { c, r } = JSON.parse(line) as { c: string; r: Record<string, unknown> };
      const list = records.get(c);
      if (list === undefined || typeof r?.id !== "string")
        throw new Error(`line ${i + 2}: not a record of a listed collection`);
      list.push(r);
    }
  } catch (e) {
    throw bad(`${path}: not a readable logical export (${(e as Error).message})`);
  }
  const tables: TableSums = {};
  for (const [c, list] of records) tables[c] = digestRows(list);
  return { header, records, verified: { sha256, bytes: bytes.length, integrity: "n/a", tables } };
}

/** The manifest written beside every backup (`<file>.json`). */
export interface Manifest {
  readonly format: "nxs-sync-backup";
  readonly kind: "full" | "logical";
  readonly server: string;
  readonly file: string;
  readonly createdAt: string;
  /** `full`: how long the server's backup call took (writes wait for it, §19 of the PocketBase notes). */
  readonly serverMs?: number;
  readonly verified: Verified;
}

/**
 * Verifies a backup file, and compares it with its manifest when there is one.
 * @param path - A `.zip` (full) or `.jsonl` (logical) backup.
 * @returns The kind and what was found.
 * @throws NxsError `storage/corrupt` when it fails, or differs from its manifest.
 */
export async function verifyBackup(
  path: string,
): Promise<{ kind: "full" | "logical"; verified: Verified; manifest?: Manifest }> {
  const kind = path.endsWith(".jsonl") ? "logical" : "full";
  let manifest: Manifest | undefined;
  try {
    manifest = JSON.parse(await readFile(`${path}.json`, "utf8")) as Manifest;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT")
      throw bad(`${path}.json: the manifest does not parse`);
  }
  let verified: Verified;
  try {
    verified = kind === "full" ? await verifyFullBackup(path) : (await readLogicalBackup(path)).verified;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT")
      throw new NxsError(ErrorCode.ConfigInvalid, `${path}: no such file`);
    throw e;
  }
  if (manifest !== undefined) {
    if (manifest.verified.sha256 !== verified.sha256) {
      throw bad(
        `${path}: its sha256 differs from the one its manifest recorded when it was written (the file changed since)`,
      );
    }
    if (JSON.stringify(manifest.verified.tables) !== JSON.stringify(verified.tables)) {
      throw bad(`${path}: its record counts or digests differ from its manifest`);
    }
  }
  return { kind, verified, ...(manifest === undefined ? {} : { manifest }) };
}
