import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { ErrorCode, NxsError, TransportError } from "@nxs-sync/core";
import {
  type CollectionRegistry,
  Collections,
  closeSdkClient,
  createSdkClient,
  isUniqueViolation,
  toTransportError,
} from "@nxs-sync/pocketbase";
import type PocketBase from "pocketbase";
import type { Progress } from "./progress.js";
import { digestRows, type Manifest, readLogicalBackup, verifyFullBackup } from "./verify.js";

/** Collections a logical export leaves out: accounts (PocketBase never exports a password; `setup` remakes them), per-server and short-lived records. */
const NOT_EXPORTED = new Set<string>([
  Collections.Nodes,
  Collections.Replicators,
  Collections.Leases,
  "nxs_config_origin",
]);

const stamp = (d: Date) => d.toISOString().replace(/[-:T]/g, "").replace(/\..*$/, "");

/** The collections of the registry a logical export holds (base collections, in creation order). */
export function exportedCollections(registry: CollectionRegistry): string[] {
  return registry
    .collections()
    .filter((c) => c.type === "base" && !NOT_EXPORTED.has(c.name))
    .map((c) => c.name);
}

/** Writes a manifest beside a backup, then keeps only the newest `keep` backups of that server in `dir`. */
async function finish(dir: string, manifest: Manifest, keep: number | undefined): Promise<string[]> {
  await writeFile(join(dir, `${manifest.file}.json`), `${JSON.stringify(manifest, null, 2)}\n`);
  if (keep === undefined) return [];
  const mine: Manifest[] = [];
  for (const f of await readdir(dir)) {
    if (!f.endsWith(".json")) continue;
    try {
      const m = JSON.parse(await readFile(join(dir, f), "utf8")) as Manifest;
      if (m.format === "nxs-sync-backup" && m.server === manifest.server && m.kind === manifest.kind)
        mine.push(m);
    } catch {
      // not a manifest
    }
  }
  mine.sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
  const removed: string[] = [];
  for (const old of mine.slice(keep)) {
    await rm(join(dir, old.file), { force: true });
    await rm(join(dir, `${old.file}.json`), { force: true });
    removed.push(old.file);
  }
  return removed;
}

/** What a backup made. */
export interface BackupResult {
  readonly path: string;
  readonly manifest: Manifest;
  /** Older backups of the server deleted by `--keep`. */
  readonly removed: readonly string[];
}

/**
 * A full backup through PocketBase's backups API: created on the server (writes wait while it
 * zips), downloaded into `dir`, deleted from the server (unless `keepOnServer`), verified, with a
 * manifest beside it; then `keep` applied.
 */
export async function fullBackup(
  pb: PocketBase,
  options: {
    dir: string;
    keep?: number;
    keepOnServer?: boolean;
    progress: Progress;
    now?: () => Date;
    /** Bound of the server's backup call (default 30 min). */
    createTimeoutMs?: number;
  },
): Promise<BackupResult> {
  const now = options.now ?? (() => new Date());
  const createdAt = now();
  const key = `nxs_${stamp(createdAt)}_${randomBytes(3).toString("hex")}.zip`;
  await mkdir(options.dir, { recursive: true });
  const path = join(options.dir, key);
  const started = performance.now();
  // The server answers only once the zip is written: a large database takes longer than a
  // request's usual timeout, so this one call gets its own client with a long one.
  const slow = createSdkClient(pb.baseURL, options.createTimeoutMs ?? 30 * 60_000);
  slow.authStore.save(pb.authStore.token, pb.authStore.record);
  try {
    await slow.backups.create(key, { requestKey: null });
  } catch (e) {
    throw toTransportError(e, `create backup ${key} at ${pb.baseURL}`);
  } finally {
    closeSdkClient(slow);
  }
  const serverMs = Math.round(performance.now() - started);
  try {
    const token = await pb.files.getToken({ requestKey: null });
    const res = await fetch(pb.backups.getDownloadURL(token, key));
    if (!res.ok || res.body === null) {
      throw new TransportError(
        ErrorCode.TransportRejected,
        `download backup ${key} from ${pb.baseURL}: HTTP ${res.status}`,
        { status: res.status },
      );
    }
    options.progress.start(Number(res.headers.get("content-length") ?? 0), `download ${key}`);
    const count = new Transform({
      transform(chunk: Buffer, _enc, done) {
        options.progress.increment(chunk.length);
        done(null, chunk);
      },
    });
    await pipeline(Readable.fromWeb(res.body as never), count, createWriteStream(path));
    options.progress.stop();
  } catch (e) {
    options.progress.stop();
    await rm(path, { force: true });
    throw toTransportError(e, `download backup ${key} from ${pb.baseURL}`);
  } finally {
    if (options.keepOnServer !== true)
      await pb.backups.delete(key, { requestKey: null }).catch(() => undefined);
  }
  const verified = await verifyFullBackup(path);
  const manifest: Manifest = {
    format: "nxs-sync-backup",
    kind: "full",
    server: pb.baseURL,
    file: key,
    createdAt: createdAt.toISOString(),
    serverMs,
    verified,
  };
  const removed = await finish(options.dir, manifest, options.keep);
  return { path, manifest, removed };
}

/**
 * A logical export of the project's collections through the record API (pages of 1000 by id: no
 * write waits for it), verified, with a manifest beside it; then `keep` applied.
 */
export async function logicalBackup(
  pb: PocketBase,
  options: { dir: string; keep?: number; registry: CollectionRegistry; progress: Progress; now?: () => Date },
): Promise<BackupResult> {
  const createdAt = (options.now ?? (() => new Date()))();
  const file = `nxs_${stamp(createdAt)}_${randomBytes(3).toString("hex")}.jsonl`;
  await mkdir(options.dir, { recursive: true });
  const path = join(options.dir, file);
  const present: { name: string; total: number }[] = [];
  try {
    for (const name of exportedCollections(options.registry)) {
      try {
        const page = await pb.collection(name).getList(1, 1, { fields: "id", requestKey: null });
        present.push({ name, total: page.totalItems });
      } catch (e) {
        if ((e as { status?: number }).status !== 404) throw e;
      }
    }
    const lines: string[] = [
      JSON.stringify({
        format: "nxs-sync-logical",
        version: 1,
        server: pb.baseURL,
        createdAt: createdAt.toISOString(),
        collections: present.map((p) => p.name),
      }),
    ];
    options.progress.start(
      present.reduce((n, p) => n + p.total, 0),
      `export ${file}`,
    );
    const tables: Record<string, { count: number; digest: string }> = {};
    for (const { name } of present) {
      const records: Record<string, unknown>[] = [];
      let last = "";
      for (;;) {
        const page = await pb.collection(name).getList(1, 1000, {
          sort: "id",
          filter: last === "" ? "" : pb.filter("id > {:last}", { last }),
          skipTotal: true,
          requestKey: null,
        });
        for (const r of page.items) {
          const { collectionId: _i, collectionName: _n, expand: _e, ...rest } = r as Record<string, unknown>;
          records.push(rest);
          lines.push(JSON.stringify({ c: name, r: rest }));
        }
        options.progress.increment(page.items.length);
        if (page.items.length < 1000) break;
        last = (page.items.at(-1) as { id: string }).id;
      }
      tables[name] = digestRows(records);
    }
    options.progress.stop();
    await writeFile(path, `${lines.join("\n")}\n`);
    const read = await readLogicalBackup(path);
    if (JSON.stringify(read.verified.tables) !== JSON.stringify(tables)) {
      throw new NxsError(
        ErrorCode.StorageCorrupt,
        `${path}: reads back with other records than were exported`,
      );
    }
    const manifest: Manifest = {
      format: "nxs-sync-backup",
      kind: "logical",
      server: pb.baseURL,
      file,
      createdAt: createdAt.toISOString(),
      verified: read.verified,
    };
    const removed = await finish(options.dir, manifest, options.keep);
    return { path, manifest, removed };
  } catch (e) {
    options.progress.stop();
    throw toTransportError(e, `logical backup of ${pb.baseURL}`);
  }
}

/** Waits for `GET /api/health` to answer 200. */
async function waitHealthy(url: string, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
    } catch {
      // restarting
    }
    if (performance.now() > deadline) {
      throw new TransportError(
        ErrorCode.TransportUnavailable,
        `${url}: not healthy ${timeoutMs} ms after the restore`,
        { retryable: true },
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A full restore: uploads a verified backup zip, asks the server to restore it, and waits until the
 * server has restarted on it (its realtime stream closes at the restart, then health answers).
 * The server's superusers, collection secrets and token keys become the backup's.
 */
export async function fullRestore(
  pb: PocketBase,
  options: { path: string; progress: Progress; timeoutMs?: number },
): Promise<{ key: string }> {
  const url = pb.baseURL.replace(/\/+$/, "");
  const key = `restore_${stamp(new Date())}_${randomBytes(3).toString("hex")}.zip`;
  const bytes = await readFile(options.path);
  options.progress.start(bytes.length, `upload ${basename(options.path)}`);
  const form = new FormData();
  form.append("file", new File([bytes], key, { type: "application/zip" }));
  const up = await fetch(`${url}/api/backups/upload`, {
    method: "POST",
    headers: { Authorization: pb.authStore.token },
    body: form,
  }).catch((e: unknown) => {
    throw toTransportError(e, `upload ${options.path} to ${url}`);
  });
  options.progress.increment(bytes.length);
  options.progress.stop();
  if (!up.ok) {
    throw new TransportError(
      ErrorCode.TransportRejected,
      `upload ${options.path} to ${url}: HTTP ${up.status} ${await up.text()}`,
      { status: up.status },
    );
  }
  // The realtime stream is open before the restore and ends when the server restarts on it.
  const stream = new AbortController();
  const sse = await fetch(`${url}/api/realtime`, { signal: stream.signal });
  const reader = sse.body?.getReader();
  await reader?.read(); // PB_CONNECT
  const closed = (async () => {
    try {
      for (;;) if ((await reader?.read())?.done !== false) return;
    } catch {
      // the connection dropped: the restart
    }
  })();
  try {
    await pb.backups.restore(key, { requestKey: null });
  } catch (e) {
    stream.abort();
    throw toTransportError(e, `restore ${key} at ${url}`);
  }
  const timeoutMs = options.timeoutMs ?? 60_000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    stream.abort();
  }, timeoutMs);
  await closed;
  clearTimeout(timer);
  stream.abort();
  if (timedOut) {
    throw new TransportError(
      ErrorCode.TransportRejected,
      `restore ${key} at ${url}: the server accepted the restore but did not restart within ${timeoutMs} ms: it may have failed (see the server's log); nothing is known to have changed`,
    );
  }
  await waitHealthy(url, timeoutMs);
  return { key };
}

/**
 * A logical restore: every record of the export that the server lacks is created (with its id);
 * records the server has are left as they are, so nothing goes back (a newer job state, config
 * head or change stays).
 */
export async function logicalRestore(
  pb: PocketBase,
  options: { path: string; progress: Progress },
): Promise<{ created: Record<string, number>; kept: Record<string, number> }> {
  const { records } = await readLogicalBackup(options.path);
  const created: Record<string, number> = {};
  const kept: Record<string, number> = {};
  options.progress.start(
    [...records.values()].reduce((n, l) => n + l.length, 0),
    `import ${basename(options.path)}`,
  );
  try {
    for (const [name, list] of records) {
      created[name] = 0;
      kept[name] = 0;
      for (const r of list) {
        const { created: _c, updated: _u, ...body } = r;
        try {
          await pb.collection(name).create(body, { requestKey: null });
          created[name]++;
        } catch (e) {
          if (!isUniqueViolation(e))
            throw toTransportError(e, `import ${name} ${String(r.id)} into ${pb.baseURL}`);
          kept[name]++;
        }
        options.progress.increment();
      }
    }
  } finally {
    options.progress.stop();
  }
  return { created, kept };
}
