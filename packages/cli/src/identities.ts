import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { ErrorCode, NxsError } from "@nxs-sync/core";
import { NODE_ID_PATTERN, NodeRole } from "@nxs-sync/pocketbase";

/** One account of the fleet: the same id, email and password on every server. */
export interface Identity {
  readonly id: string;
  readonly name: string;
  readonly email: string;
  readonly password: string;
  readonly role: NodeRole;
  /** Set by `node disable`: `setup` leaves the account as it is (locked) until `node enable`. */
  readonly disabled?: boolean;
}

/**
 * The identities file (`--identities`, written with mode 0600): every gateway, every operator
 * (`role: "operator"` in `nodes`) and the replicator.
 * Kept by the operator: the gateways and the replicator read their credentials from it.
 */
export interface IdentitiesFile {
  readonly version: 1;
  readonly replicator: Identity;
  readonly nodes: readonly Identity[];
}

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

/** A random record id: 15 chars of [a-z0-9]. */
export function newRecordId(): string {
  return [...randomBytes(15)].map((b) => ALPHABET[b % ALPHABET.length]).join("");
}

/**
 * A new identity with a random id and password.
 * @param name - Its name (kebab-case is best: it is part of the email).
 * @param role - Gateway or replicator.
 * @returns The identity.
 */
export function generateIdentity(name: string, role: NodeRole): Identity {
  const id = newRecordId();
  const local =
    name
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, "-")
      .replace(/^-+|-+$/g, "") || "node";
  return {
    id,
    name,
    email: `${local}-${id}@${role === NodeRole.Replicator ? "replicators" : role === NodeRole.Operator ? "operators" : "nodes"}.nxs-sync.local`,
    password: randomBytes(24).toString("base64url"),
    role,
  };
}

function checkIdentity(v: unknown, role: NodeRole, where: string): Identity {
  const o = (v ?? {}) as Record<string, unknown>;
  const ok =
    typeof o.id === "string" &&
    NODE_ID_PATTERN.test(o.id) &&
    typeof o.email === "string" &&
    typeof o.password === "string" &&
    o.password.length >= 8;
  if (!ok) {
    throw new NxsError(
      ErrorCode.ConfigInvalid,
      `${where}: needs id (15 chars of [a-z0-9]), email and password (8 chars or more)`,
    );
  }
  return {
    id: o.id as string,
    email: o.email as string,
    password: o.password as string,
    name: typeof o.name === "string" ? o.name : (o.email as string),
    role,
    ...(o.disabled === true ? { disabled: true } : {}),
  };
}

/**
 * Reads an identities file.
 * @param path - The file.
 * @returns Its identities, or undefined when the file does not exist.
 * @throws NxsError `config/invalid` when it is malformed (no secret is quoted).
 */
export async function readIdentities(path: string): Promise<IdentitiesFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new NxsError(
      ErrorCode.ConfigInvalid,
      `--identities ${path}: cannot read it (${(e as NodeJS.ErrnoException).code})`,
    );
  }
  let raw: { replicator?: unknown; nodes?: unknown };
  try {
    raw = JSON.parse(text) as typeof raw;
  } catch {
    throw new NxsError(ErrorCode.ConfigInvalid, `--identities ${path}: not JSON`);
  }
  if (!Array.isArray(raw.nodes)) {
    throw new NxsError(ErrorCode.ConfigInvalid, `--identities ${path}: no "nodes" array`);
  }
  return {
    version: 1,
    replicator: checkIdentity(raw.replicator, NodeRole.Replicator, `--identities ${path}: replicator`),
    // A node is a gateway unless the file says operator (files of earlier releases name no role).
    nodes: raw.nodes.map((n, i) =>
      checkIdentity(
        n,
        (n as { role?: unknown } | null)?.role === NodeRole.Operator ? NodeRole.Operator : NodeRole.Gateway,
        `--identities ${path}: nodes[${i}]`,
      ),
    ),
  };
}

/**
 * Writes an identities file, readable by its owner only (0600).
 * @param path - The file.
 * @param file - The identities.
 */
export async function writeIdentities(path: string, file: IdentitiesFile): Promise<void> {
  await writeFile(path, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
}

/** Every identity of a file, the replicator first. */
export function allIdentities(file: IdentitiesFile): Identity[] {
  return [file.replicator, ...file.nodes];
}

/**
 * A gateway of the file by name or id.
 * @throws NxsError `config/invalid` when none has it.
 */
export function findNode(file: IdentitiesFile, nameOrId: string, path: string): Identity {
  const node = file.nodes.find((n) => n.name === nameOrId || n.id === nameOrId);
  if (node === undefined) {
    throw new NxsError(
      ErrorCode.ConfigInvalid,
      `no node ${JSON.stringify(nameOrId)} in ${path} (nodes: ${file.nodes.map((n) => n.name).join(", ") || "none"})`,
    );
  }
  return node;
}

/**
 * Reads an identities file that must exist.
 * @throws NxsError `config/invalid` when it does not.
 */
export async function requireIdentities(path: string): Promise<IdentitiesFile> {
  const file = await readIdentities(path);
  if (file === undefined) {
    throw new NxsError(
      ErrorCode.ConfigInvalid,
      `--identities ${path}: no such file (run nxs-sync setup first)`,
    );
  }
  return file;
}
