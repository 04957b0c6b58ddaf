import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorCode, NxsError } from "@nxs-sync/core";
import { closeSdkClient, ensureSchema } from "@nxs-sync/pocketbase";
import type PocketBase from "pocketbase";
import { fullBackup, fullRestore, logicalBackup, logicalRestore } from "../backup.js";
import { connectSuperuser } from "../connect.js";
import { type CommandEnv, pauseOrStop } from "../context.js";
import { type CredentialOptions, resolveSuperuser } from "../credentials.js";
import { CliExitCode } from "../exit-codes.js";
import { restoreFenced } from "../fence.js";
import { renderJson, renderTable } from "../output.js";
import { createProgress } from "../progress.js";
import { loadProjectRegistry } from "../registry.js";
import { verifyBackup } from "../verify.js";

/** Options of `nxs-sync backup`. */
export interface BackupOptions extends CredentialOptions {
  readonly server: string;
  readonly dir: string;
  readonly keep?: string;
  readonly logical?: boolean;
  readonly keepOnServer?: boolean;
  /** `--every MS`: back up again every MS until interrupted (scheduled backups with `--keep`). */
  readonly every?: string;
}

const keepOf = (v: string | undefined): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1)
    throw new NxsError(ErrorCode.ConfigInvalid, `--keep ${v}: not a whole number of 1 or more`);
  return n;
};

const tablesText = (tables: Record<string, { count: number; digest: string }>) =>
  Object.entries(tables).map(([t, s]) => [t, String(s.count), s.digest]);

/** `nxs-sync backup`: a verified full backup (backups API) or logical export (record API) of one server. */
export async function runBackup(env: CommandEnv, options: BackupOptions): Promise<CliExitCode> {
  if (options.every === undefined) return backupOnce(env, options);
  const every = Number(options.every);
  if (!(every > 0))
    throw new NxsError(ErrorCode.ConfigInvalid, `--every ${options.every}: not a positive number of ms`);
  for (;;) {
    // One failed round (a server restarting) is reported and the schedule goes on.
    try {
      await backupOnce({ ...env, json: false }, options, env.json);
    } catch (e) {
      env.note(`nxs-sync: backup failed: ${(e as Error).message}`);
    }
    const stopped = await pauseOrStop(every, env.signal);
    if (stopped) return CliExitCode.Ok;
  }
}

async function backupOnce(env: CommandEnv, options: BackupOptions, jsonLines = false): Promise<CliExitCode> {
  const keep = keepOf(options.keep);
  const superuser = await resolveSuperuser(options, env.env);
  const pb = await connectSuperuser(options.server, superuser(options.server), env.timeoutMs);
  const progress = createProgress(env);
  try {
    const result =
      options.logical === true
        ? await logicalBackup(pb, {
            dir: options.dir,
            keep,
            registry: (await loadProjectRegistry({ records: env.records })).registry,
            progress,
          })
        : await fullBackup(pb, { dir: options.dir, keep, keepOnServer: options.keepOnServer, progress });
    const m = result.manifest;
    if (jsonLines)
      env.stdout.write(
        `${JSON.stringify({ ok: true, path: result.path, removed: result.removed, manifest: m })}\n`,
      );
    else if (env.json)
      env.stdout.write(renderJson({ ok: true, path: result.path, removed: result.removed, manifest: m }));
    else {
      env.stdout.write(
        `${m.kind} backup of ${m.server}: ${result.path} (${m.verified.bytes} bytes, sha256 ${m.verified.sha256.slice(0, 16)}), verified: integrity ${m.verified.integrity}\n`,
      );
      env.stdout.write(renderTable(["collection", "records", "digest"], tablesText(m.verified.tables)));
      if (m.serverMs !== undefined)
        env.stdout.write(
          `the server took ${m.serverMs} ms to write it; writes to it waited meanwhile (back up the server that is not the authority, or use --logical)\n`,
        );
      for (const r of result.removed) env.stdout.write(`removed older backup ${r} (--keep ${keep})\n`);
    }
    return CliExitCode.Ok;
  } finally {
    closeSdkClient(pb);
  }
}

/** `nxs-sync verify FILE…`: each backup opens, passes its checks and matches its manifest. */
export async function runVerify(env: CommandEnv, files: readonly string[]): Promise<CliExitCode> {
  const results = [];
  for (const f of files) results.push({ file: f, ...(await verifyBackup(f)) });
  if (env.json)
    env.stdout.write(
      renderJson({
        ok: true,
        backups: results.map((r) => ({
          file: r.file,
          kind: r.kind,
          verified: r.verified,
          manifest: r.manifest !== undefined,
        })),
      }),
    );
  else {
    for (const r of results) {
      env.stdout.write(
        `${r.file}: ${r.kind} backup ok (integrity ${r.verified.integrity}${r.manifest === undefined ? ", no manifest to compare" : ", matches its manifest"})\n`,
      );
      env.stdout.write(renderTable(["collection", "records", "digest"], tablesText(r.verified.tables)));
    }
  }
  return CliExitCode.Ok;
}

/** The write fence's options of a full `restore` or `reseed`. */
export interface FenceOptions {
  /** `--no-fence`: restore without fencing the server (its writes since the backup are lost). */
  readonly fence?: boolean;
  /** `--no-wait`: fence only while restoring; do not wait for the replicator before or after. */
  readonly wait?: boolean;
  /** `--drain-timeout S`: longest wait for the replicator before the restore. Default 120. */
  readonly drainTimeout?: string;
  /** `--catch-up-timeout S`: longest wait for the replicator after it. Default 120. */
  readonly catchUpTimeout?: string;
}

/** Options of `nxs-sync restore`. */
export interface RestoreOptions extends CredentialOptions, FenceOptions {
  readonly server: string;
  readonly file: string;
}

const secondsOf = (flag: string, v: string | undefined, fallback: number): number => {
  if (v === undefined) return fallback * 1000;
  const n = Number(v);
  if (!(n > 0)) throw new NxsError(ErrorCode.ConfigInvalid, `${flag} ${v}: not a number of seconds above 0`);
  return n * 1000;
};

/**
 * A full restore of `pb`'s server, fenced unless `--no-fence` (see restoreFenced).
 * @returns The exit code: Ok, or ReplicationWait when the replicator did not keep up.
 */
async function fullRestoreCommand(
  env: CommandEnv,
  pb: PocketBase,
  options: FenceOptions,
  restore: () => Promise<void>,
  reconnect: () => Promise<PocketBase>,
): Promise<{ code: CliExitCode; fence: Record<string, unknown> }> {
  if (options.fence === false) {
    env.note("--no-fence: what this server acknowledged since the backup and no peer holds is lost");
    await restore();
    return { code: CliExitCode.Ok, fence: { fenced: false } };
  }
  const drainTimeoutMs = secondsOf("--drain-timeout", options.drainTimeout, 120);
  const catchUpTimeoutMs = secondsOf("--catch-up-timeout", options.catchUpTimeout, 120);
  const outcome = await restoreFenced(pb, restore, reconnect, {
    reason: `nxs-sync restore of ${pb.baseURL}`,
    drainTimeoutMs,
    catchUpTimeoutMs,
    noWait: options.wait === false,
    note: env.note,
    signal: env.signal,
  });
  switch (outcome.kind) {
    case "restored":
      return { code: CliExitCode.Ok, fence: { fenced: true, ...outcome } };
    case "not-drained":
      env.note(
        `nothing restored: no replicator round copied this server's records to its peers within ${drainTimeoutMs / 1000} s (${outcome.last}); the fence is lifted. Check the replicator (nxs-sync status), or pass --no-wait to restore anyway and lose what only this server holds`,
      );
      return { code: CliExitCode.ReplicationWait, fence: { fenced: false, ...outcome } };
    case "not-caught-up":
      env.note(
        `restored, but no replicator round brought the server up to date within ${catchUpTimeoutMs / 1000} s (${outcome.last}): it stays fenced until ${new Date(outcome.until).toISOString()} (its clients use the other server). Check the replicator, then nxs-sync fence --server ${pb.baseURL} --lift`,
      );
      return { code: CliExitCode.ReplicationWait, fence: { fenced: true, ...outcome } };
  }
}

/**
 * `nxs-sync restore`: verifies the backup first (a corrupt one is refused, exit 5, before anything
 * is sent), then a full restore (upload, restore, wait for the restart) or a logical re-import.
 */
export async function runRestore(env: CommandEnv, options: RestoreOptions): Promise<CliExitCode> {
  const superuser = await resolveSuperuser(options, env.env);
  const { kind, verified } = await verifyBackup(options.file);
  const pb = await connectSuperuser(options.server, superuser(options.server), env.timeoutMs);
  const progress = createProgress(env);
  try {
    if (kind === "full") {
      const { code, fence } = await fullRestoreCommand(
        env,
        pb,
        options,
        async () => {
          await fullRestore(pb, { path: options.file, progress });
        },
        // The backup's superusers may differ from this server's: log in again with the same credentials.
        () => connectSuperuser(options.server, superuser(options.server), env.timeoutMs),
      );
      if (code !== CliExitCode.Ok && fence.kind === "not-drained") return code;
      if (env.json)
        env.stdout.write(
          renderJson({
            ok: code === CliExitCode.Ok,
            kind,
            server: options.server,
            restored: verified.tables,
            fence,
          }),
        );
      else {
        env.stdout.write(`restored ${options.file} onto ${options.server}; it restarted and answers again\n`);
        env.stdout.write(
          fence.caughtUp === true
            ? "a replicator round brought it up to date from its peers and its fence is lifted; check with nxs-sync status\n"
            : "run the replicator (or keep it running): it brings the server up to date from its peers; check with nxs-sync status\n",
        );
      }
      return code;
    } else {
      const result = await logicalRestore(pb, { path: options.file, progress });
      if (env.json) env.stdout.write(renderJson({ ok: true, kind, server: options.server, ...result }));
      else {
        env.stdout.write(
          renderTable(
            ["collection", "created", "kept (already there)"],
            Object.keys(result.created).map((c) => [c, String(result.created[c]), String(result.kept[c])]),
          ),
        );
      }
    }
    return CliExitCode.Ok;
  } finally {
    closeSdkClient(pb);
  }
}

/** Options of `nxs-sync reseed`. */
export interface ReseedOptions extends CredentialOptions, FenceOptions {
  readonly from: string;
  readonly to: string;
  readonly logical?: boolean;
}

/**
 * `nxs-sync reseed --from PEER --to SERVER`: rebuilds a lost or empty server from its peer. Full
 * (default): a verified backup of the peer restored onto it (the peer's writes wait while it zips;
 * the server gets the peer's superusers, secrets and accounts). `--logical`: the schema, then the
 * peer's records through the record API (no write waits; run `setup` with the identities file
 * first so the accounts exist).
 */
export async function runReseed(env: CommandEnv, options: ReseedOptions): Promise<CliExitCode> {
  const superuser = await resolveSuperuser(options, env.env);
  const dir = await mkdtemp(join(tmpdir(), "nxs-reseed-"));
  const peer = await connectSuperuser(options.from, superuser(options.from), env.timeoutMs);
  const progress = createProgress(env);
  try {
    const target = await connectSuperuser(options.to, superuser(options.to), env.timeoutMs);
    try {
      const project = await loadProjectRegistry({ records: env.records });
      if (options.logical === true) {
        await ensureSchema(target, { collections: project.registry });
        const backup = await logicalBackup(peer, { dir, registry: project.registry, progress });
        const result = await logicalRestore(target, { path: backup.path, progress });
        if (env.json)
          env.stdout.write(
            renderJson({ ok: true, kind: "logical", from: options.from, to: options.to, ...result }),
          );
        else
          env.stdout.write(
            `reseeded ${options.to} from ${options.from} (logical): ${Object.values(result.created).reduce((a, b) => a + b, 0)} records created\n`,
          );
      } else {
        let backup: Awaited<ReturnType<typeof fullBackup>> | undefined;
        // The peer's superusers and token keys come with its backup.
        const reconnect = () => connectSuperuser(options.to, superuser(options.from), env.timeoutMs);
        const { code, fence } = await fullRestoreCommand(
          env,
          target,
          options,
          async () => {
            // After the drain: the peer's backup holds what only this server had.
            backup = await fullBackup(peer, { dir, progress });
            await fullRestore(target, { path: backup.path, progress });
            // The config store's per-server origin must not be the peer's: its routes make a new one on first use.
            const again = await reconnect();
            try {
              const origins = await again
                .collection("nxs_config_origin")
                .getFullList({ fields: "id", requestKey: null })
                .catch(() => []);
              for (const o of origins)
                await again.collection("nxs_config_origin").delete(o.id, { requestKey: null });
            } finally {
              closeSdkClient(again);
            }
          },
          reconnect,
        );
        if (backup === undefined) return code;
        if (env.json)
          env.stdout.write(
            renderJson({
              ok: code === CliExitCode.Ok,
              kind: "full",
              from: options.from,
              to: options.to,
              tables: backup.manifest.verified.tables,
              fence,
            }),
          );
        else
          env.stdout.write(
            `reseeded ${options.to} from a verified backup of ${options.from}; its superusers and accounts are now the peer's\n`,
          );
        return code;
      }
    } finally {
      closeSdkClient(target);
    }
    return CliExitCode.Ok;
  } finally {
    closeSdkClient(peer);
    await rm(dir, { recursive: true, force: true });
  }
}
