import { ErrorCode, TransportError } from "@nxs-sync/core";

/**
 * Version of the `pb_hooks` bundle (`pb_hooks/nxs.pb.js`) this client needs. The bundle reports its
 * own on `GET /nxs/version`; a unit test keeps the two equal. Bump both when the bundle changes in
 * a way clients depend on. 4: `/nxs/lease` honours the write fence of the `fence` piece
 * (`pb_hooks/nxs-fence.pb.js`), so a server being restored grants no lease a restore would lose.
 */
export const NXS_HOOKS_VERSION = 4;
/**
 * Version of the nxs-sync schema (collections and rules of `ensureSchema()` and of
 * `migrations/`). The bundle reports the schema version it was written for. 3: the
 * `nxs_change_sizes` view (pulls within a byte budget). 4: the `nxs_replicator_status` heartbeat
 * (each replicator's last round, shown by `nxs-sync status`).
 */
export const NXS_SCHEMA_VERSION = 4;
/** Path of the route the bundle serves. */
export const NXS_VERSION_PATH = "/nxs/version";

/** What `GET /nxs/version` answers. */
export interface HooksVersion {
  readonly name: string;
  readonly hooks: number;
  readonly schema: number;
  /** Whether the nxs-sync collections exist on that server. */
  readonly schemaInstalled: boolean;
}

/** The fix every "bundle missing" message names. */
export const HOOKS_FIX =
  "run `nxs-sync hooks write <the server's --hooksDir>` on its host (or mount node_modules/@nxs-sync/pocketbase/pb_hooks there, or use the nxs-sync PocketBase image) and restart it; see docs/operations.md";
/** The fix every "schema missing" message names. */
export const SCHEMA_FIX =
  "install the schema: run `nxs-sync setup --server <url> …` (or, embedded, ensureSchema(superuserClient) once, or copy node_modules/@nxs-sync/pocketbase/migrations/*.js into the server's pb_migrations and restart it); see docs/operations.md";

/**
 * Checks the answer of `GET /nxs/version` (or its absence) against this client.
 * @param url - The server base URL (for the message).
 * @param status - HTTP status of the answer.
 * @param body - Its JSON body.
 * @returns The version when it matches.
 * @throws TransportError `server/incompatible` when the bundle is missing (404), another bundle
 *   answers, its version differs, or the schema is missing.
 */
export function checkHooksVersion(url: string, status: number, body: unknown): HooksVersion {
  const fail = (what: string): never => {
    throw new TransportError(ErrorCode.ServerIncompatible, `${url}: ${what}`, { status });
  };
  if (status === 404) fail(`no nxs-sync hooks bundle (GET ${NXS_VERSION_PATH} answered 404): ${HOOKS_FIX}`);
  const v = body as Partial<HooksVersion> | null;
  if (status !== 200 || v === null || typeof v !== "object" || v.name !== "nxs-sync") {
    fail(
      `GET ${NXS_VERSION_PATH} did not answer as the nxs-sync hooks bundle (HTTP ${status}): ${HOOKS_FIX}`,
    );
  }
  const got = v as HooksVersion;
  if (got.hooks !== NXS_HOOKS_VERSION || got.schema !== NXS_SCHEMA_VERSION) {
    fail(
      `the server's nxs-sync hooks bundle is version ${got.hooks} (schema ${got.schema}), this client needs ${NXS_HOOKS_VERSION} (schema ${NXS_SCHEMA_VERSION}): install the bundle of the same @nxs-sync/pocketbase release as the clients; ${HOOKS_FIX}`,
    );
  }
  if (got.schemaInstalled === false) fail(`the nxs-sync collections are missing: ${SCHEMA_FIX}`);
  return got;
}
