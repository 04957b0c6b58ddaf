import { ErrorCode, NxsError } from "@nxs-sync/core";
import { NodeRole, writeHooksBundle } from "@nxs-sync/pocketbase";
import { withAllSuperusers, withSuperusers } from "../connect.js";
import type { CommandEnv } from "../context.js";
import { type CredentialOptions, resolveSuperuser } from "../credentials.js";
import { CliExitCode } from "../exit-codes.js";
import {
  allIdentities,
  generateIdentity,
  type IdentitiesFile,
  readIdentities,
  writeIdentities,
} from "../identities.js";
import { renderJson, renderTable } from "../output.js";
import { loadProjectRegistry } from "../registry.js";
import { syncAuthSecrets } from "../secrets.js";
import { type ServerSetup, setupServer } from "../setup.js";

/** `create nxs_changes` for a few, `create 15 collections` for many (the JSON lists them all). */
const listed = (verb: string, names: readonly string[]): string[] =>
  names.length <= 3 ? names.map((n) => `${verb} ${n}`) : [`${verb} ${names.length} collections`];

/** Options of `nxs-sync setup`. */
export interface SetupOptions extends CredentialOptions {
  readonly server: readonly string[];
  readonly dryRun?: boolean;
  readonly identities: string;
  readonly node?: readonly string[];
}

/**
 * `nxs-sync setup`: schema, settings and identities on every server, and the hooks check.
 * @returns 0 when every server is ready, 6 when a server lacks the hooks of this release.
 */
export async function runSetup(env: CommandEnv, options: SetupOptions): Promise<CliExitCode> {
  if (options.server.length === 0) {
    throw new NxsError(ErrorCode.ConfigInvalid, "setup: give at least one --server URL");
  }
  const superuser = await resolveSuperuser(options, env.env);
  const project = await loadProjectRegistry({ records: env.records });
  for (const s of project.skipped) env.note(`warning: ${s} (its collections are left out)`);
  let file = await readIdentities(options.identities);
  const generated = file === undefined;
  if (!generated && options.node !== undefined && options.node.length > 0) {
    env.note(
      `note: --node is ignored: ${options.identities} exists (add a gateway with nxs-sync node add NAME)`,
    );
  }
  if (file === undefined) {
    const names = options.node !== undefined && options.node.length > 0 ? options.node : ["node-1"];
    file = {
      version: 1,
      replicator: generateIdentity("replicator", NodeRole.Replicator),
      nodes: names.map((n) => generateIdentity(n, NodeRole.Gateway)),
    } satisfies IdentitiesFile;
  }
  const identities = allIdentities(file);
  const dryRun = options.dryRun === true;
  // Written before the servers so that a failure half-way leaves the ids to retry with.
  if (generated && !dryRun) await writeIdentities(options.identities, file);
  const results: ServerSetup[] = await withSuperusers(options.server, superuser, env.timeoutMs, (pb) =>
    setupServer(pb, {
      collections: project.registry,
      pieces: project.registry.hooks(),
      identities,
      dryRun,
      timeoutMs: env.timeoutMs,
    }),
  );
  // The token secrets of the replicated auth collections: the first server's everywhere.
  const secrets =
    env.records.length === 0 || !results.every((r) => r.hooks.ok)
      ? []
      : await withAllSuperusers(options.server, superuser, env.timeoutMs, (servers) =>
          syncAuthSecrets(servers, env.records, dryRun),
        );
  const changes =
    results.reduce((n, r) => n + r.writes, 0) + secrets.reduce((n, s) => n + s.copiedTo.length, 0);
  const ready = results.every((r) => r.hooks.ok) && secrets.every((s) => s.problems.length === 0);
  if (env.json) {
    env.stdout.write(
      renderJson({
        ok: ready,
        dryRun,
        changes,
        packages: project.packages,
        identitiesFile: options.identities,
        identitiesGenerated: generated,
        identities: identities.map(({ id, name, email, role }) => ({ id, name, email, role })),
        servers: results,
        records: env.records,
        secrets,
      }),
    );
  } else {
    const verb = dryRun ? "would " : "";
    const rows = results.map((r) => [
      r.url,
      [
        ...listed(`${verb}create`, r.created),
        ...listed(`${verb}update`, r.updated),
        ...r.settings.map((s) => `${verb}set ${s}`),
      ].join(", ") || "unchanged",
      r.identities
        .map((i) => (i.action === "unchanged" ? "" : `${verb}${i.action} ${i.name}`))
        .filter((s) => s !== "")
        .join(", ") || "unchanged",
      r.hooks.ok ? "ok" : "MISSING",
    ]);
    env.stdout.write(renderTable(["server", "schema and settings", "identities", "hooks"], rows));
    if (generated) {
      env.stdout.write(
        `${dryRun ? "would generate" : "generated"} identities${dryRun ? "" : ` (passwords in ${options.identities}, mode 0600; keep it: the gateways and the replicator log in with them)`}:\n`,
      );
      for (const i of identities)
        env.stdout.write(`  ${i.role.padEnd(10)} ${i.name.padEnd(16)} id ${i.id}  ${i.email}\n`);
    }
    env.stdout.write(
      dryRun
        ? `dry run: ${changes} change(s) would be made, nothing was written\n`
        : `${changes === 0 ? "nothing to change: every server was set up already" : `${changes} change(s) made`}\n`,
    );
    for (const r of results) for (const w of r.warnings) env.note(`warning: ${w}`);
    for (const r of results) if (!r.hooks.ok) env.note(`not ready: ${r.hooks.problem}`);
    for (const x of secrets) {
      if (x.copiedTo.length > 0)
        env.stdout.write(
          `${dryRun ? "would copy" : "copied"} the token secrets of ${x.collection} to ${x.copiedTo.join(", ")}\n`,
        );
      for (const p of x.problems) env.note(`not ready: the token secrets of ${x.collection}: ${p}`);
    }
  }
  return ready ? CliExitCode.Ok : CliExitCode.NotReady;
}

/**
 * `nxs-sync hooks write DIR`: writes the hooks bundle and every piece of the project's packages.
 * @returns 0.
 */
export async function runHooksWrite(env: CommandEnv, dir: string): Promise<CliExitCode> {
  const project = await loadProjectRegistry({ records: env.records });
  const written = await writeHooksBundle(dir, project.registry);
  if (env.json) env.stdout.write(renderJson({ ok: true, written }));
  else {
    for (const p of written) env.stdout.write(`${p}\n`);
    env.stdout.write("restart PocketBase (or let --hooksWatch restart it) to load them\n");
  }
  return CliExitCode.Ok;
}
