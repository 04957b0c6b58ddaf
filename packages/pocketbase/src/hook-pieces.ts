import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ErrorCode, isNxsError, NxsError, TransportError } from "@nxs-sync/core";
import type { PocketBaseClient } from "./client.js";
import { checkHooksVersion, NXS_HOOKS_VERSION, NXS_VERSION_PATH } from "./hooks.js";

/**
 * One file of server-side hooks (PocketBase JSVM, `*.pb.js`) that a package ships: routes and record
 * hooks it needs on every server (the queue's claim route, for example). Pieces are registered like
 * collections ({@link HookRegistry.registerHooks}), written into a server's `--hooksDir` together
 * by {@link writeHooksBundle}, and checked by clients with {@link checkHookPieces}: each piece
 * serves `GET /nxs/hooks/<name>` answering `{ name, version }` (the core bundle, the piece
 * {@link NXS_HOOK_PIECE_NAME}, keeps `GET /nxs/version`).
 */
export interface HookPiece {
  /** Kebab-case name, e.g. `queue`: the route `GET /nxs/hooks/<name>` and the registry's key. */
  readonly name: string;
  /** Version the clients of this release need; the piece's route answers it. A positive integer. */
  readonly version: number;
  /** File name in the hooks dir, ending in `.pb.js` (PocketBase loads only those), e.g. `nxs-queue.pb.js`. */
  readonly file: string;
  /** The file's text. */
  readonly source: string;
}

/** Where pieces are registered: the collection registry is one (see `createNxsCollectionRegistry`). */
export interface HookRegistry {
  /**
   * Adds hook pieces after those registered (written in that order).
   * @returns The registry.
   * @throws NxsError `config/invalid` for a malformed piece, or a name or file registered already.
   */
  registerHooks(...pieces: readonly HookPiece[]): HookRegistry;
  /** Every piece, in registration order. */
  hooks(): readonly HookPiece[];
}

/** Name of the core bundle's piece (`pb_hooks/nxs.pb.js`, checked on `GET /nxs/version`). */
export const NXS_HOOK_PIECE_NAME = "nxs";

/**
 * Path of the version route of a piece.
 * @param name - The piece's name.
 * @returns `/nxs/hooks/<name>`, or {@link NXS_VERSION_PATH} for the core bundle.
 */
export function hookPiecePath(name: string): string {
  return name === NXS_HOOK_PIECE_NAME ? NXS_VERSION_PATH : `/nxs/hooks/${name}`;
}

const KEBAB = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;
const FILE = /^[A-Za-z0-9][\w.-]*\.pb\.js$/;

/**
 * Checks one piece's shape: kebab name, positive integer version, a `*.pb.js` file name without a
 * directory; with `source`, also that its text serves its version route (read then: a piece read
 * from a file is read at {@link writeHooksBundle}, not at registration).
 * @param piece - The piece.
 * @param source - Whether to check the text too.
 * @returns The piece.
 * @throws NxsError `config/invalid` naming what is wrong and how to write it.
 */
export function checkHookPiece(piece: HookPiece, { source = false } = {}): HookPiece {
  const fail = (what: string): never => {
    throw new NxsError(ErrorCode.ConfigInvalid, `hook piece ${JSON.stringify(piece.name)}: ${what}`);
  };
  if (typeof piece.name !== "string" || !KEBAB.test(piece.name))
    fail('name must be kebab-case (lower-case letters and digits joined by "-"), e.g. "queue"');
  if (!Number.isSafeInteger(piece.version) || piece.version < 1)
    fail(`version must be a positive integer, got ${String(piece.version)}`);
  if (typeof piece.file !== "string" || !FILE.test(piece.file))
    fail(`file must be a file name ending in .pb.js (PocketBase loads only those), got ${piece.file}`);
  const path = hookPiecePath(piece.name);
  if (source && (typeof piece.source !== "string" || !piece.source.includes(`"${path}"`)))
    fail(
      `its source must serve GET ${path} answering { name, version } (clients check it): add routerAdd("GET", "${path}", (e) => e.json(200, { name: "${piece.name}", version: ${piece.version} }));`,
    );
  return piece;
}

/**
 * Appends checked pieces to a list (the registries' `registerHooks`).
 * @internal
 */
export function addHookPieces(all: HookPiece[], pieces: readonly HookPiece[]): void {
  for (const p of pieces) {
    checkHookPiece(p);
    const clash = all.find((o) => o.name === p.name || o.file === p.file);
    if (clash !== undefined) {
      throw new NxsError(
        ErrorCode.ConfigInvalid,
        `hook registry: piece ${p.name} (${p.file}) is registered already as ${clash.name} (${clash.file}): give each piece its own name and file`,
      );
    }
    all.push(p);
  }
}

/**
 * A hook piece whose source is a file, read once when first asked for.
 * @param piece - Name, version, file name in the hooks dir, and `path` of the text to read.
 * @returns The piece.
 * @throws NxsError `config/invalid` (when `source` is read) if the file cannot be read.
 */
export function hookPieceFromFile(piece: Omit<HookPiece, "source"> & { readonly path: string }): HookPiece {
  let text: string | undefined;
  return {
    name: piece.name,
    version: piece.version,
    file: piece.file,
    get source() {
      if (text === undefined) {
        try {
          text = readFileSync(piece.path, "utf8");
        } catch (cause) {
          throw new NxsError(
            ErrorCode.ConfigInvalid,
            `hook piece ${piece.name}: cannot read ${piece.path} (${(cause as Error).message})`,
            { cause },
          );
        }
      }
      return text;
    },
  };
}

/**
 * The core bundle as a piece: `pb_hooks/nxs.pb.js` of this package, version {@link NXS_HOOKS_VERSION}.
 * @returns The piece (its source is read when first asked for).
 */
export function nxsHookPiece(): HookPiece {
  return hookPieceFromFile({
    name: NXS_HOOK_PIECE_NAME,
    version: NXS_HOOKS_VERSION,
    file: "nxs.pb.js",
    // src/ and dist/ both sit beside pb_hooks/ in the package.
    path: fileURLToPath(new URL("../pb_hooks/nxs.pb.js", import.meta.url)),
  });
}

/**
 * Writes every registered piece's file into a hooks dir (created if missing): what a server's
 * `--hooksDir` must hold. Files of other names there are left alone.
 * @param dir - The hooks dir.
 * @param registry - The pieces (e.g. `createNxsCollectionRegistry().registerHooks(queueHooks)`).
 * @returns The paths written, in registration order.
 * @throws NxsError `config/invalid` (before writing anything) for a piece whose source does not
 *   serve its version route or cannot be read.
 * @example
 * ```ts
 * const registry = createNxsCollectionRegistry();
 * await writeHooksBundle("/srv/pocketbase/pb_hooks", registry); // then restart the server
 * ```
 */
export async function writeHooksBundle(
  dir: string,
  registry: Pick<HookRegistry, "hooks">,
): Promise<readonly string[]> {
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  const pieces = registry.hooks();
  for (const piece of pieces) checkHookPiece(piece, { source: true });
  for (const piece of pieces) {
    const path = join(dir, piece.file);
    await writeFile(path, piece.source);
    written.push(path);
  }
  return written;
}

/** The fix of a missing or outdated piece. */
function pieceFix(piece: HookPiece): string {
  return `write the hooks of this release into the server's --hooksDir (writeHooksBundle(dir, registry) with the registry that registers ${piece.name}, or copy its ${piece.file}) on every server and restart it; see docs/pocketbase.md#server-hooks-the-bundle-and-pieces`;
}

/**
 * Checks that a server runs each piece at the version this client needs: `GET /nxs/hooks/<name>`
 * must answer `{ name, version }` (the core bundle: `GET /nxs/version`, see `checkHooksVersion`).
 * @param client - A client of the server (authenticated or guest).
 * @param pieces - The pieces to check, e.g. `registry.hooks()`.
 * @throws TransportError `server/incompatible` naming the piece and the fix when one is missing
 *   (404) or of another version; `transport/unavailable` when the server does not answer.
 */
export async function checkHookPieces(
  client: Pick<PocketBaseClient, "url" | "call">,
  pieces: readonly HookPiece[],
): Promise<void> {
  for (const piece of pieces) {
    const path = hookPiecePath(piece.name);
    const what = `check the hook piece ${piece.name} at ${client.url}`;
    let body: unknown;
    try {
      body = await client.call(what, (pb) => pb.send(path, { method: "GET" }));
    } catch (e) {
      if (!(isNxsError(e) && e instanceof TransportError && e.status === 404)) throw e;
      if (piece.name === NXS_HOOK_PIECE_NAME) checkHooksVersion(client.url, 404, undefined);
      throw new TransportError(
        ErrorCode.ServerIncompatible,
        `${client.url}: no hook piece ${piece.name} (GET ${path} answered 404): ${pieceFix(piece)}`,
        { cause: e, status: 404 },
      );
    }
    if (piece.name === NXS_HOOK_PIECE_NAME) {
      checkHooksVersion(client.url, 200, body);
      continue;
    }
    const got = body as { name?: unknown; version?: unknown } | null;
    if (got === null || typeof got !== "object" || got.name !== piece.name) {
      throw new TransportError(
        ErrorCode.ServerIncompatible,
        `${client.url}: GET ${path} did not answer as the hook piece ${piece.name}: ${pieceFix(piece)}`,
        { status: 200 },
      );
    }
    if (got.version !== piece.version) {
      throw new TransportError(
        ErrorCode.ServerIncompatible,
        `${client.url}: the server's hook piece ${piece.name} is version ${String(got.version)}, this client needs ${piece.version}: ${pieceFix(piece)}`,
        { status: 200 },
      );
    }
  }
}
