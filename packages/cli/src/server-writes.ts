import type PocketBase from "pocketbase";

/** One write a command sent (or, in a dry run, would have sent) to a server. */
export interface ServerWrite {
  readonly method: string;
  readonly path: string;
  readonly body: unknown;
}

/**
 * Watches the writes made through an SDK client: every request that is not a GET is recorded and,
 * when `dryRun`, not sent (answered with its own body, as a create or update would echo it). The
 * library code a command runs (`ensureSchema`, `ensureNode`) thus runs unchanged in a dry run and
 * tells exactly what it would change.
 * @param pb - A superuser client.
 * @param dryRun - Whether to hold the writes back.
 * @returns The writes seen so far (a live array).
 */
export function recordWrites(pb: PocketBase, dryRun: boolean): ServerWrite[] {
  const writes: ServerWrite[] = [];
  const send = pb.send.bind(pb);
  pb.send = (async (path: string, options: { method?: string; body?: unknown }) => {
    const method = (options?.method ?? "GET").toUpperCase();
    if (method === "GET") return send(path, options);
    writes.push({ method, path, body: options?.body });
    if (dryRun) return { id: "", ...((options?.body as object | undefined) ?? {}) };
    return send(path, options);
  }) as PocketBase["send"];
  return writes;
}
