import { fileURLToPath } from "node:url";
import { ErrorCode, TransportError } from "@nxs-sync/core";
import { ClientResponseError, type default as PocketBase } from "pocketbase";
import { toTransportError } from "./client.js";
import { type HookPiece, hookPieceFromFile } from "./hook-pieces.js";

/** Name, version and file of the write fence's hook piece (`GET /nxs/hooks/fence`). */
export const FENCE_HOOKS = { name: "fence", version: 1, file: "nxs-fence.pb.js" } as const;

/** Path of the fence's route on a server. */
export const FENCE_PATH = "/nxs/fence";

/**
 * The write fence as a hook piece (`pb_hooks/nxs-fence.pb.js` of this package): while a server is
 * fenced it refuses every write of a gateway or other account with 503 (clients go to the other
 * server), lets superusers and replicators through, and keeps the fence across a restore's
 * in-place restart. `createNxsCollectionRegistry()` registers it.
 * @returns The piece (its source is read when first asked for).
 */
export function fenceHookPiece(): HookPiece {
  return hookPieceFromFile({
    ...FENCE_HOOKS,
    // src/ and dist/ both sit beside pb_hooks/ in the package.
    path: fileURLToPath(new URL(`../pb_hooks/${FENCE_HOOKS.file}`, import.meta.url)),
  });
}

/** A server's write fence, as it answers (its own clock). */
export interface FenceState {
  /** Whether the server refuses writes now. */
  readonly fenced: boolean;
  /** Why (set by whoever fenced it), empty when not fenced. */
  readonly reason: string;
  /** Server ms when the fence lapses by itself; 0 when not fenced. */
  readonly until: number;
  /** Server ms since when it has been fenced (kept when a fence is renewed); 0 when not fenced. */
  readonly since: number;
  /** The server's ms when it answered. */
  readonly now: number;
}

async function fenceCall(
  pb: PocketBase,
  method: "GET" | "POST" | "DELETE",
  body?: Record<string, unknown>,
): Promise<FenceState> {
  const what = `${method} ${FENCE_PATH} at ${pb.baseURL}`;
  try {
    return await pb.send<FenceState>(FENCE_PATH, {
      method,
      ...(body === undefined ? {} : { body }),
      requestKey: null,
    });
  } catch (e) {
    if (e instanceof ClientResponseError && e.status === 404) {
      throw new TransportError(
        ErrorCode.ServerIncompatible,
        `${what}: the server has no write fence (the hook piece "fence", ${FENCE_HOOKS.file}): install the project's hooks with nxs-sync hooks write <the server's --hooksDir> and restart it`,
        { cause: e, status: 404 },
      );
    }
    throw toTransportError(e, what);
  }
}

/**
 * Reads a server's write fence.
 * @param pb - An SDK client authenticated as a superuser of that server.
 * @returns The fence's state.
 * @throws TransportError `server/incompatible` when the server lacks the fence piece; else as
 *   `toTransportError` maps the failure.
 */
export function readFence(pb: PocketBase): Promise<FenceState> {
  return fenceCall(pb, "GET");
}

/**
 * Fences a server (or renews its fence): it refuses every write of gateways and other accounts
 * (503) until `ttlMs` has passed or {@link liftFence}, and keeps the fence across a restore's
 * restart. Superusers and replicator accounts still write.
 * @param pb - An SDK client authenticated as a superuser of that server.
 * @param options - `reason` (shown to refused clients) and `ttlMs` (the server clamps it to
 *   1 s .. 24 h; default 10 minutes).
 * @returns The fence's state (fenced).
 * @throws As {@link readFence}.
 */
export function setFence(
  pb: PocketBase,
  options: { readonly reason: string; readonly ttlMs?: number },
): Promise<FenceState> {
  return fenceCall(pb, "POST", { reason: options.reason, ttlMs: options.ttlMs ?? 600_000 });
}

/**
 * Lifts a server's write fence (a no-op when it has none).
 * @param pb - An SDK client authenticated as a superuser of that server.
 * @returns The fence's state (not fenced).
 * @throws As {@link readFence}.
 */
export function liftFence(pb: PocketBase): Promise<FenceState> {
  return fenceCall(pb, "DELETE");
}
