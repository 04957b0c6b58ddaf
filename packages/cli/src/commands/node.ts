import { randomBytes } from "node:crypto";
import { ErrorCode, NxsError } from "@nxs-sync/core";
import { Collections, collectionOfRole, ensureNode, NodeRole, toTransportError } from "@nxs-sync/pocketbase";
import type PocketBase from "pocketbase";
import { withSuperusers } from "../connect.js";
import type { CommandEnv } from "../context.js";
import { type CredentialOptions, resolveSuperuser } from "../credentials.js";
import { CliExitCode } from "../exit-codes.js";
import {
  findNode,
  generateIdentity,
  type IdentitiesFile,
  type Identity,
  readIdentities,
  requireIdentities,
  writeIdentities,
} from "../identities.js";
import { renderJson, renderTable } from "../output.js";
import { canLogIn, identityAction } from "../setup.js";

/** Options of `nxs-sync node …`. */
export interface NodeOptions extends CredentialOptions {
  readonly server: readonly string[];
  readonly identities: string;
  /** `rotate --password`: a new password too (written to the identities file). */
  readonly password?: boolean;
  /** `add --role`: `gateway` (default) or `operator` (a read-only person: the metrics dashboard). */
  readonly role?: string;
}

/** A membership change. */
export type NodeAction = "add" | "remove" | "disable" | "enable" | "rotate";

/** A new token key: 50 chars of [a-zA-Z0-9], the form PocketBase generates. */
function newTokenKey(): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  return [...randomBytes(50)].map((b) => alphabet[b % alphabet.length]).join("");
}

/** The node's record on a server, or undefined. */
async function findRecord(pb: PocketBase, node: Identity): Promise<{ id: string } | undefined> {
  try {
    return await pb.collection(collectionOfRole(node.role)).getOne(node.id, { requestKey: null });
  } catch (e) {
    if ((e as { status?: number }).status === 404) return undefined;
    throw toTransportError(e, `look up node ${node.name} at ${pb.baseURL}`);
  }
}

/** One PATCH of a node's record as a superuser. */
async function patch(
  pb: PocketBase,
  node: Identity,
  body: Record<string, unknown>,
  what: string,
): Promise<void> {
  try {
    await pb.collection(collectionOfRole(node.role)).update(node.id, body, { requestKey: null });
  } catch (e) {
    throw toTransportError(e, `${what} node ${node.name} at ${pb.baseURL}`);
  }
}

/**
 * `nxs-sync node add|remove|disable|enable|rotate NAME`: a membership change on every server, the
 * identities file kept in step. Idempotent (rotate excepted: each run is a new key).
 * @returns 0.
 */
export async function runNode(
  env: CommandEnv,
  action: NodeAction,
  name: string,
  options: NodeOptions,
): Promise<CliExitCode> {
  if (options.server.length === 0)
    throw new NxsError(ErrorCode.ConfigInvalid, `node ${action}: give every --server URL`);
  const superuser = await resolveSuperuser(options, env.env);
  let file: IdentitiesFile;
  let node: Identity;
  if (action === "add") {
    const existing = await readIdentities(options.identities);
    if (existing === undefined) {
      throw new NxsError(
        ErrorCode.ConfigInvalid,
        `--identities ${options.identities}: no such file (run nxs-sync setup first)`,
      );
    }
    const role = options.role ?? NodeRole.Gateway;
    if (role !== NodeRole.Gateway && role !== NodeRole.Operator) {
      throw new NxsError(
        ErrorCode.ConfigInvalid,
        `node add ${name}: --role ${JSON.stringify(role)} is not one of gateway, operator (the replicator's account is made by nxs-sync setup)`,
      );
    }
    const known = existing.nodes.find((n) => n.name === name);
    if (known !== undefined && options.role !== undefined && known.role !== role) {
      throw new NxsError(
        ErrorCode.ConfigInvalid,
        `node add ${name}: ${options.identities} has ${name} with role ${known.role}, not ${role} (remove it first, or choose another name)`,
      );
    }
    node = known ?? generateIdentity(name, role);
    file = known === undefined ? { ...existing, nodes: [...existing.nodes, node] } : existing;
    // Written first: a failure half-way leaves the id to retry with.
    if (known === undefined) await writeIdentities(options.identities, file);
  } else {
    file = await requireIdentities(options.identities);
    node = findNode(file, name, options.identities);
  }
  if (action === "remove") {
    // Checked on every server before anything is deleted: a refusal leaves every server as it was.
    await withSuperusers(options.server, superuser, env.timeoutMs, async (pb, url) => {
      for (const collection of [Collections.Changes, Collections.Snapshots, Collections.Acks]) {
        let total = 0;
        try {
          total = (
            await pb.collection(collection).getList(1, 1, {
              filter: pb.filter("node = {:id}", { id: node.id }),
              fields: "id",
              requestKey: null,
            })
          ).totalItems;
        } catch (e) {
          if ((e as { status?: number }).status !== 404)
            throw toTransportError(e, `check records of ${node.name} at ${url}`);
        }
        if (total > 0) {
          throw new NxsError(
            ErrorCode.ConfigInvalid,
            `node remove ${node.name}: ${total} record(s) of ${collection} at ${url} refer to it, and the server would refuse to delete it: use nxs-sync node disable ${node.name} instead, which locks it out and keeps its records (nothing was changed)`,
          );
        }
      }
    });
  }
  if (action === "rotate") {
    // Every server must have the account before any gets a new key: a refusal changes nothing.
    await withSuperusers(options.server, superuser, env.timeoutMs, async (pb, url) => {
      if ((await findRecord(pb, node)) === undefined) {
        throw new NxsError(
          ErrorCode.ConfigInvalid,
          `node rotate ${node.name}: no such account at ${url} (run nxs-sync node add ${node.name} with every server first; nothing was changed)`,
        );
      }
    });
  }
  const tokenKey = newTokenKey();
  const password = randomBytes(24).toString("base64url");
  const results = await withSuperusers(options.server, superuser, env.timeoutMs, async (pb, url) => {
    switch (action) {
      case "add":
      case "enable": {
        const act = await identityAction(pb, node, env.timeoutMs);
        if (act !== "unchanged") await ensureNode(pb, node);
        return { url, changed: act !== "unchanged" };
      }
      case "remove": {
        if ((await findRecord(pb, node)) === undefined) return { url, changed: false };
        try {
          await pb.collection(collectionOfRole(node.role)).delete(node.id, { requestKey: null });
        } catch (e) {
          if ((e as { status?: number }).status === 400) {
            throw new NxsError(
              ErrorCode.ConfigInvalid,
              `node remove ${node.name} at ${url}: refused by the server (records it wrote refer to it): use nxs-sync node disable ${node.name} instead, which locks it out and keeps its records`,
              { cause: e },
            );
          }
          throw toTransportError(e, `remove node ${node.name} at ${url}`);
        }
        return { url, changed: true };
      }
      case "disable": {
        if ((await findRecord(pb, node)) === undefined) return { url, changed: false };
        if (!(await canLogIn(url, node, env.timeoutMs))) return { url, changed: false };
        // An unknown password and a new token key: no login, every session refused.
        await patch(pb, node, { password, passwordConfirm: password, tokenKey }, "disable");
        return { url, changed: true };
      }
      case "rotate": {
        // The same key on every server: a token the node gets later works wherever its secret does.
        const body: Record<string, unknown> = { tokenKey };
        if (options.password === true) Object.assign(body, { password, passwordConfirm: password });
        await patch(pb, node, body, "rotate");
        return { url, changed: true };
      }
    }
  });
  let next = file;
  const replace = (n: Identity) => ({ ...file, nodes: file.nodes.map((m) => (m.id === node.id ? n : m)) });
  if (action === "remove") next = { ...file, nodes: file.nodes.filter((n) => n.id !== node.id) };
  if (action === "disable") next = replace({ ...node, disabled: true });
  if (action === "enable") next = replace({ ...node, disabled: undefined });
  if (action === "rotate" && options.password === true) next = replace({ ...node, password });
  if (next !== file) await writeIdentities(options.identities, next);
  const changed = results.some((r) => r.changed);
  if (env.json) {
    env.stdout.write(
      renderJson({
        ok: true,
        action,
        node: { id: node.id, name: node.name, email: node.email },
        changed,
        servers: results,
      }),
    );
  } else {
    env.stdout.write(
      renderTable(
        ["server", `node ${action} ${node.name} (${node.id})`],
        results.map((r) => [r.url, r.changed ? "changed" : "unchanged"]),
      ),
    );
    if (action === "add")
      env.stdout.write(
        `${node.role === NodeRole.Operator ? "operator" : "node"} ${node.name}: id ${node.id}, email ${node.email}, password in ${options.identities}${node.role === NodeRole.Operator ? " (log in to /nxs/metrics/dashboard with them)" : ""}\n`,
      );
    if (action === "rotate")
      env.stdout.write(
        `new token key on every server: the node's sessions are revoked${options.password === true ? `; new password in ${options.identities}` : ""}\n`,
      );
  }
  return CliExitCode.Ok;
}
