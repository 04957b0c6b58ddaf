/**
 * The last-known-good file: the effective versions of one environment (stored form, secrets
 * sealed) and their rollout records, so a gateway boots when no server answers. Written atomically
 * (temp file in the same directory, fsync, rename, fsync of the directory); read without ever
 * throwing (a missing or corrupt file is reported, never trusted).
 */
import { randomBytes } from "node:crypto";
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { ErrorCode, StorageError } from "@nxs-sync/core";
import { z } from "zod";
import {
  ENV_PATTERN,
  type RolloutRecord,
  rolloutRecordSchema,
  type StoredVersion,
  storedVersionSchema,
} from "./version.js";

/** The format tag of a cache file. */
export const CACHE_FILE_FORMAT = "nxs-config-cache/1";

/** What a cache file holds. */
export interface CacheFileContent {
  readonly format: typeof CACHE_FILE_FORMAT;
  readonly env: string;
  /** When it was written (ms since the epoch). */
  readonly savedAt: number;
  /** The versions in use (stored form), each of `env`. */
  readonly versions: readonly StoredVersion[];
  /** The rollout records of those versions. */
  readonly rollouts: readonly RolloutRecord[];
}

/** The outcome of {@link readCacheFile}. */
export type CacheFileRead =
  | { readonly ok: true; readonly content: CacheFileContent }
  | { readonly ok: false; readonly reason: "missing" | "corrupt"; readonly detail: string };

/** The shape a cache file must have (every version and rollout record checked). */
export const cacheFileSchema = z
  .object({
    format: z.literal(CACHE_FILE_FORMAT),
    env: z.string().regex(ENV_PATTERN),
    savedAt: z.number().int().min(0),
    versions: z.array(storedVersionSchema),
    rollouts: z.array(rolloutRecordSchema),
  })
  .superRefine((file, ctx) => {
    const check = (what: "versions" | "rollouts", items: readonly { env: string }[]) =>
      items.forEach((item, i) => {
        if (item.env !== file.env) {
          ctx.addIssue({
            code: "custom",
            path: [what, i, "env"],
            message: `not the file's env "${file.env}"`,
          });
        }
      });
    check("versions", file.versions);
    check("rollouts", file.rollouts);
  });

/** fsync a directory so a rename in it is durable (some platforms cannot: then the rename stands alone). */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, "r").catch(() => undefined);
  try {
    await handle?.sync();
  } catch {
    // not supported here (e.g. some network or Windows filesystems); the rename is atomic anyway
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/**
 * Writes a cache file atomically: the content goes to a temp file in the same directory, is
 * fsync'd, then renamed over `path` (and the directory fsync'd), so a reader sees the old file or the
 * new one, never a part. Creates the directory. Concurrent writes to one path each succeed; the last
 * rename wins. The file is created with mode 0600 (it holds config, and sealed secrets).
 * @param path - The file.
 * @param content - What to write.
 * @throws StorageError `storage/io` when the directory or file cannot be written (the temp file is
 *   removed; the previous file is untouched).
 * @example
 * ```ts
 * const path = "/var/lib/gw/config.json";
 * await writeCacheFile(path, { format: CACHE_FILE_FORMAT, env: "production", savedAt: Date.now(), versions: [], rollouts: [] });
 * ```
 */
export async function writeCacheFile(path: string, content: CacheFileContent): Promise<void> {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    await mkdir(dir, { recursive: true });
    const handle = await open(temp, "wx", 0o600);
    try {
      await handle.writeFile(`${JSON.stringify(content)}\n`, "utf8");
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
    await syncDirectory(dir);
  } catch (cause) {
    await rm(temp, { force: true }).catch(() => undefined);
    throw new StorageError(
      ErrorCode.StorageIo,
      `cannot write the config cache file ${path}: ${(cause as Error).message}`,
      { cause },
    );
  }
}

/**
 * Reads a cache file, checking its format and every version and rollout record
 * ({@link cacheFileSchema}). Never throws: a file that is absent is `missing`; one that cannot be
 * read (a directory, no permission), is not JSON, is of another format, or holds a malformed record
 * is `corrupt`, with a detail that names the first problem (its path, e.g. `versions.3.id`).
 * @param path - The file.
 * @returns The content, or why there is none.
 * @example
 * ```ts
 * const read = await readCacheFile("/var/lib/gw/config.json");
 * if (read.ok) console.log(`${read.content.versions.length} versions of ${read.content.env}`);
 * else logger.warn(`cache ${read.reason}: ${read.detail}`);
 * ```
 */
export async function readCacheFile(path: string): Promise<CacheFileRead> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === "ENOENT" || code === "ENOTDIR")
      return { ok: false, reason: "missing", detail: `no file at ${path}` };
    return { ok: false, reason: "corrupt", detail: `cannot read ${path}: ${(error as Error).message}` };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    const detail = text.trim() === "" ? "the file is empty" : `not JSON: ${(error as Error).message}`;
    return { ok: false, reason: "corrupt", detail };
  }
  const parsed = cacheFileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0] as z.core.$ZodIssue;
    const where = issue.path.map(String).join(".") || "(file)";
    const more = parsed.error.issues.length > 1 ? ` (and ${parsed.error.issues.length - 1} more)` : "";
    return { ok: false, reason: "corrupt", detail: `${where}: ${issue.message}${more}` };
  }
  return { ok: true, content: parsed.data as CacheFileContent };
}
