import {
  checkHookPieces,
  closeSdkClient,
  collectionOfRole,
  createSdkClient,
  ensureNode,
  ensureSchema,
  type HookPiece,
  toTransportError,
} from "@nxs-sync/pocketbase";
import type PocketBase from "pocketbase";
import type { Identity } from "./identities.js";
import { recordWrites } from "./server-writes.js";

/** What setup did (or would do) to one identity on one server. */
export type IdentityAction = "create" | "update" | "unchanged";

/** What setup found and changed on one server. */
export interface ServerSetup {
  readonly url: string;
  /** Collections created / updated. */
  readonly created: readonly string[];
  readonly updated: readonly string[];
  /** Settings changed (`batch`, `rateLimits`). */
  readonly settings: readonly string[];
  readonly identities: readonly { id: string; name: string; role: string; action: IdentityAction }[];
  /** Whether the server runs every hook piece of this release; else why and how to fix it. */
  readonly hooks: { readonly ok: boolean; readonly problem?: string };
  /** Warnings of ensureSchema (e.g. an auth collection open to sign-up). */
  readonly warnings: readonly string[];
  /** Number of writes sent (or, in a dry run, that would be sent). */
  readonly writes: number;
}

/** How to install the hooks, named in every hooks problem. */
export const HOOKS_INSTALL =
  "write them with `nxs-sync hooks write DIR` into that server's --hooksDir (or mount the directory it writes), then restart PocketBase";

/**
 * Whether an identity exists with its id and password (a login as it; read-only).
 * @returns `create`, `update` (exists with another password or name) or `unchanged`.
 */
export async function identityAction(
  pb: PocketBase,
  identity: Identity,
  timeoutMs: number,
): Promise<IdentityAction> {
  const collection = collectionOfRole(identity.role);
  let found: { id: string; name?: string } | undefined;
  try {
    const page = await pb.collection(collection).getList(1, 1, {
      filter: pb.filter("email = {:email}", { email: identity.email }),
      skipTotal: true,
      requestKey: null,
    });
    found = page.items[0] as { id: string; name?: string } | undefined;
  } catch (e) {
    // No collection yet (a dry run before the schema): the account would be created.
    if ((e as { status?: number }).status === 404) return "create";
    throw toTransportError(e, `look up ${identity.name} at ${pb.baseURL}`);
  }
  if (found === undefined) return "create";
  // A wrong id is refused by ensureNode (config/invalid), which names the fix.
  if (found.id !== identity.id || found.name !== identity.name) return "update";
  return (await canLogIn(pb.baseURL, identity, timeoutMs)) ? "unchanged" : "update";
}

/**
 * Whether an identity's email and password log in on a server (its own auth collection).
 * @returns False when the login is refused.
 * @throws TransportError when the server does not answer.
 */
export async function canLogIn(url: string, identity: Identity, timeoutMs: number): Promise<boolean> {
  const probe = createSdkClient(url, timeoutMs);
  try {
    await probe
      .collection(collectionOfRole(identity.role))
      .authWithPassword(identity.email, identity.password, { requestKey: null });
    return true;
  } catch (e) {
    const status = (e as { status?: number }).status;
    if (status === 400 || status === 401 || status === 403) return false;
    throw toTransportError(e, `check the password of ${identity.name} at ${url}`);
  } finally {
    closeSdkClient(probe);
  }
}

/**
 * Makes one server ready: the project's schema (ensureSchema with the registry), batch and rate
 * limits, every identity with its id, and a check of the hook pieces. Idempotent; in a dry run
 * nothing is written and the result tells what would be.
 * @param pb - A superuser client of the server.
 * @param options - The registry's collections and hook pieces, identities, dry run.
 * @returns What was (or would be) changed.
 */
export async function setupServer(
  pb: PocketBase,
  options: {
    readonly collections: Parameters<typeof ensureSchema>[1] extends infer O
      ? O extends { collections?: infer C }
        ? NonNullable<C>
        : never
      : never;
    readonly pieces: readonly HookPiece[];
    readonly identities: readonly Identity[];
    readonly dryRun: boolean;
    readonly timeoutMs: number;
  },
): Promise<ServerSetup> {
  const writes = recordWrites(pb, options.dryRun);
  const schema = await ensureSchema(pb, { collections: options.collections });
  const settings = new Set<string>();
  for (const w of writes) {
    if (w.path.endsWith("/api/settings") && w.body !== null && typeof w.body === "object") {
      for (const k of Object.keys(w.body)) settings.add(k);
    }
  }
  const identities: ServerSetup["identities"][number][] = [];
  for (const identity of options.identities) {
    if (identity.disabled === true) {
      identities.push({ id: identity.id, name: identity.name, role: identity.role, action: "unchanged" });
      continue;
    }
    const action = await identityAction(pb, identity, options.timeoutMs);
    if (action !== "unchanged") {
      if (options.dryRun) {
        if (action === "update") await ensureNode(pb, identity); // refuses a wrong id, writes nothing
      } else {
        await ensureNode(pb, identity);
      }
    }
    identities.push({ id: identity.id, name: identity.name, role: identity.role, action });
  }
  let hooks: ServerSetup["hooks"] = { ok: true };
  try {
    await checkHookPieces(
      {
        url: pb.baseURL,
        call: async (what, fn) => {
          try {
            return await fn(pb);
          } catch (e) {
            throw toTransportError(e, what);
          }
        },
      },
      options.pieces,
    );
  } catch (e) {
    const message = (e as Error).message;
    if ((e as { code?: string }).code !== "server/incompatible") throw e;
    hooks = {
      ok: false,
      problem:
        options.dryRun && schema.created.length > 0 && /collections are missing/.test(message)
          ? undefined
          : `${message} (${HOOKS_INSTALL})`,
    };
    if (hooks.problem === undefined) hooks = { ok: true };
  }
  return {
    url: pb.baseURL,
    created: schema.created,
    updated: schema.updated,
    settings: [...settings],
    identities,
    hooks,
    warnings: schema.warnings,
    writes: writes.length,
  };
}
