import { ErrorCode, NxsError } from "@nxs-sync/core";
import { type CommandEnv, pauseOrStop } from "../context.js";
import { type CredentialOptions, resolveSuperuser } from "../credentials.js";
import { CliExitCode } from "../exit-codes.js";
import { renderJson, renderTable } from "../output.js";
import { createSessions, DEFAULT_STALE_AFTER_MS, type FleetStatus, readFleetStatus } from "../status.js";

/** Options of `nxs-sync status`. */
export interface StatusOptions extends CredentialOptions {
  readonly server: readonly string[];
  readonly watch?: boolean;
  /** `--interval MS` between refreshes of `--watch`. */
  readonly interval?: string;
  /** `--stale-after S`: a replicator whose last round is older is stale (default 120). */
  readonly staleAfter?: string;
}

/** How long ago an ISO/PocketBase time was, as `12s`, `5m`, `3h`, `2d`. */
export function age(at: string | undefined, now: number): string {
  if (at === undefined) return "-";
  const t = Date.parse(at.replace(" ", "T"));
  if (Number.isNaN(t)) return "?";
  const s = Math.max(0, Math.round((now - t) / 1000));
  return s < 120
    ? `${s}s`
    : s < 7200
      ? `${Math.round(s / 60)}m`
      : s < 172_800
        ? `${Math.round(s / 3600)}h`
        : `${Math.round(s / 86_400)}d`;
}

const vectorText = (v: Record<string, number>): string =>
  Object.entries(v)
    .map(([o, s]) => `${o}:${s}`)
    .join(" ") || "-";

/**
 * The fleet as tables, like `patronictl list`: servers, docs per server, replicas, config heads.
 * @param status - What {@link readFleetStatus} read.
 * @returns The text.
 */
export function renderStatus(status: FleetStatus): string {
  const now = Date.parse(status.at);
  const out: string[] = [];
  out.push(
    renderTable(
      ["server", "reachable", "login", "hooks", "schema", "jobs w/a/c/f/x"],
      status.servers.map((s) => [
        s.url,
        s.reachable ? "yes" : "NO",
        s.error === undefined ? "ok" : s.error.code === "transport/unavailable" ? "-" : "REFUSED",
        s.hooksProblem !== undefined ? "PROBLEM" : s.hooks === undefined ? "-" : `v${s.hooks}`,
        s.schema === undefined ? "-" : `v${s.schema}`,
        s.queue === undefined
          ? "-"
          : ["waiting", "active", "completed", "failed", "cancelled"].map((k) => s.queue?.[k] ?? 0).join("/"),
      ]),
    ),
  );
  if (status.members.length > 0) {
    const readable = status.servers.filter((s) => s.error === undefined).map((s) => s.url);
    out.push(
      renderTable(
        ["account", "role", "id", ...readable],
        status.members.map((m) => [
          m.name,
          m.role,
          m.id,
          ...readable.map((u) => (m.on.includes(u) ? "yes" : "MISSING")),
        ]),
      ),
    );
  }
  if (status.docs.length > 0) {
    out.push(
      renderTable(
        ["doc", "server", "version vector", "behind", "records", "digest", "snapshot age", "frontier"],
        status.docs.flatMap((d) =>
          Object.entries(d.servers).map(([url, s]) => [
            d.doc,
            url,
            vectorText(s.vector),
            String(s.behind),
            String(s.records),
            d.diverged ? `${s.digest} !` : s.digest,
            age(s.snapshotCreated, now),
            s.snapshotCovers === undefined ? "-" : `${s.snapshotCovers} changes`,
          ]),
        ),
      ),
    );
  } else out.push("no docs yet\n");
  if (status.replicas.length > 0) {
    out.push(
      renderTable(
        ["doc", "replica", "server", "last ack", "lag"],
        status.replicas.map((r) => [r.doc, r.replica, r.server, age(r.acked, now), String(r.lag)]),
      ),
    );
  }
  const config = status.servers.flatMap((s) =>
    Object.entries(s.config ?? {}).map(([env, c]) => [env, s.url, String(c.keys), c.digest]),
  );
  if (config.length > 0) out.push(renderTable(["config env", "server", "keys", "heads digest"], config));
  const records = status.servers.flatMap((s) =>
    Object.entries(s.records ?? {}).map(([name, r]) => [
      name,
      s.url,
      r.problem === undefined ? String(r.count) : "-",
      r.problem ?? r.digest ?? "-",
      r.secrets === undefined ? "-" : r.secrets.slice(0, 12),
    ]),
  );
  if (records.length > 0)
    out.push(renderTable(["records", "server", "count", "digest", "token secrets"], records));
  if (status.replicators.length > 0) {
    out.push(
      renderTable(
        ["replicator", "id", "last round", "rounds", "sees", "last error"],
        status.replicators.map((r) => [
          r.name ?? "-",
          r.id,
          r.lastRound === undefined
            ? "never (no round recorded)"
            : `${age(r.lastRound, now)} ago${r.stale ? ` STALE (> ${Math.round(status.staleAfterMs / 1000)}s)` : ""}`,
          r.rounds === undefined ? "-" : String(r.rounds),
          r.sees === undefined
            ? "-"
            : r.sees.map((x) => (x.state === "ok" ? x.url : `${x.url} ${x.state}`)).join(" "),
          r.lastError === undefined || r.lastError === "" ? "-" : r.lastError,
        ]),
      ),
    );
  }
  if (status.health !== undefined) {
    const firing = (node: string) => status.health?.alerts.filter((a) => a.node === node).length ?? 0;
    const pct = (v: number | undefined) => (v === undefined ? "-" : `${v.toFixed(0)}%`);
    out.push(
      renderTable(
        ["node health", "last flush", "cpu", "memory", "disk", "over 75%", "alerts firing"],
        status.health.nodes.map((n) => [
          n.node,
          n.lastSeen === 0 ? "-" : `${Math.max(0, Math.round((now - n.lastSeen) / 1000))}s ago`,
          pct(n.cpuPercent),
          pct(n.memoryPercent),
          pct(n.diskPercent),
          n.overCap.length === 0 ? "-" : n.overCap.join(","),
          String(firing(n.node)),
        ]),
      ),
    );
  }
  for (const s of status.servers) {
    if (s.error !== undefined) out.push(`${s.url}: ${s.error.message}\n`);
    else if (s.hooksProblem !== undefined) out.push(`${s.url}: ${s.hooksProblem}\n`);
  }
  const diverged = status.docs.filter((d) => d.diverged).map((d) => d.doc);
  const same = (pick: (s: FleetStatus["servers"][number]) => unknown) =>
    status.servers.every(
      (s) => JSON.stringify(pick(s) ?? {}) === JSON.stringify(pick(status.servers[0]!) ?? {}),
    );
  const why = [
    ...(same((s) => s.queue) ? [] : ["jobs per state differ"]),
    ...(same((s) => s.config) ? [] : ["config heads differ"]),
    ...(same((s) => Object.fromEntries(Object.entries(s.records ?? {}).map(([n, r]) => [n, r.secrets])))
      ? []
      : ["token secrets differ: run nxs-sync setup with every server to copy them again"]),
    ...(same((s) =>
      Object.fromEntries(Object.entries(s.records ?? {}).map(([n, r]) => [n, r.digest ?? r.problem])),
    )
      ? []
      : ["replicated records differ (the replicator catches up, or is not running with --records)"]),
  ];
  out.push(
    status.converged
      ? `converged: ${status.docs.length} doc(s) equal on ${status.servers.length} server(s)\n`
      : `NOT converged${diverged.length > 0 ? `: ${diverged.join(", ")} differ or lag` : ""}${why.length > 0 ? ` (${why.join(", ")})` : ""}${status.members.some((m) => m.on.length !== status.servers.filter((s) => s.error === undefined).length) ? " (an account is missing on a server: run setup or node add with every server)" : ""}\n`,
  );
  return out.join("\n");
}

/** The exit code of one reading: a refused login or an unreachable server first, then readiness, then divergence. */
function exitOf(status: FleetStatus): CliExitCode {
  if (status.servers.some((s) => s.error?.code === "transport/unauthorized")) return CliExitCode.AuthRefused;
  if (status.servers.some((s) => s.error !== undefined && !s.reachable)) return CliExitCode.Unreachable;
  if (status.servers.some((s) => s.error !== undefined)) return CliExitCode.Failed;
  if (status.servers.some((s) => s.hooksProblem !== undefined)) return CliExitCode.NotReady;
  // A stale replicator before divergence: it is what keeps the servers apart.
  if (status.replicators.some((r) => r.stale)) return CliExitCode.ReplicatorStale;
  return status.converged ? CliExitCode.Ok : CliExitCode.Diverged;
}

/**
 * `nxs-sync status [--watch]`: reads only. Exit 0 when converged, 7 when the servers disagree, 8
 * when a replicator's last round is older than `--stale-after`, 3/4 when a server refused the
 * login or did not answer, 6 when one lacks the hooks.
 */
export async function runStatus(env: CommandEnv, options: StatusOptions): Promise<CliExitCode> {
  if (options.server.length === 0)
    throw new NxsError(ErrorCode.ConfigInvalid, "status: give every --server URL");
  const superuser = await resolveSuperuser(options, env.env);
  for (const url of options.server) superuser(url); // every server has credentials, before reading any
  const interval = Number(options.interval ?? "2000");
  if (!(interval > 0))
    throw new NxsError(
      ErrorCode.ConfigInvalid,
      `--interval ${options.interval}: not a positive number of ms`,
    );
  const staleAfterS = Number(options.staleAfter ?? DEFAULT_STALE_AFTER_MS / 1000);
  if (!(staleAfterS > 0))
    throw new NxsError(
      ErrorCode.ConfigInvalid,
      `--stale-after ${options.staleAfter}: not a positive number of seconds`,
    );
  const sessions = createSessions();
  try {
    return await loop(env, options, interval, (urls) =>
      readFleetStatus(urls, superuser, env.timeoutMs, sessions, {
        staleAfterMs: staleAfterS * 1000,
        records: env.records,
        ...(env.now === undefined ? {} : { now: env.now }),
      }),
    );
  } finally {
    sessions.close();
  }
}

async function loop(
  env: CommandEnv,
  options: StatusOptions,
  interval: number,
  read: (urls: readonly string[]) => Promise<FleetStatus>,
): Promise<CliExitCode> {
  for (;;) {
    const status = await read(options.server);
    if (env.json)
      env.stdout.write(options.watch === true ? `${JSON.stringify(status)}\n` : renderJson(status));
    else {
      if (options.watch === true && env.stdout.isTTY === true) env.stdout.write("\x1b[2J\x1b[H");
      env.stdout.write(`${renderStatus(status)}${options.watch === true ? "\n" : ""}`);
    }
    const code = exitOf(status);
    if (options.watch !== true || env.signal.aborted) return code;
    const stopped = await pauseOrStop(interval, env.signal);
    if (stopped) return code;
  }
}
