import type PocketBase from "pocketbase";
import { toTransportError } from "./client.js";

/**
 * The token secrets of an auth collection (PocketBase signs each token with the record's token key
 * and one of these; the API can set them but never shows them) and its OAuth2 settings. Equal on
 * every server, a token, a reset link or a verification link made by one server works on the other.
 */
export interface AuthSecrets {
  readonly authToken: string;
  readonly fileToken: string;
  readonly verificationToken: string;
  readonly passwordResetToken: string;
  readonly emailChangeToken: string;
  /** The collection's `oauth2` options (providers with their client ids and secrets). */
  readonly oauth2: unknown;
  /**
   * The app's mail settings (PocketBase's `smtp`, and the sender's name and address): reset and
   * verification mails then go out the same way from either server. App-wide, so every auth
   * collection carries the same.
   */
  readonly mail?: {
    readonly smtp: unknown;
    readonly senderName: string;
    readonly senderAddress: string;
  };
}

const path = (col: string) => `/nxs/records/${encodeURIComponent(col)}/secrets`;

/**
 * The digest of an auth collection's secrets on one server (through the `records` piece): two
 * servers agree when their digests are equal. Editing the collection's `authRule` in the Admin UI
 * regenerates its token secret: the digests then differ (drift), and `nxs-sync setup` repairs it.
 * @param pb - A superuser's (or a replicator's) SDK client of the server.
 * @param col - The auth collection.
 * @returns The digest.
 * @throws TransportError (see `toTransportError`).
 */
export async function readSecretsDigest(pb: PocketBase, col: string): Promise<string> {
  try {
    return (await pb.send<{ digest: string }>(path(col), { method: "GET", requestKey: null })).digest;
  } catch (e) {
    throw toTransportError(e, `read the secrets digest of ${col} at ${pb.baseURL}`);
  }
}

/**
 * An auth collection's secrets on one server (through the `records` piece).
 * @param pb - A superuser's (or a replicator's) SDK client of the server.
 * @param col - The auth collection.
 * @returns The secrets and their digest.
 * @throws TransportError (see `toTransportError`).
 */
export async function readSecrets(
  pb: PocketBase,
  col: string,
): Promise<{ digest: string; secrets: AuthSecrets }> {
  try {
    return await pb.send<{ digest: string; secrets: AuthSecrets }>(`${path(col)}?full=1`, {
      method: "GET",
      requestKey: null,
    });
  } catch (e) {
    throw toTransportError(e, `read the secrets of ${col} at ${pb.baseURL}`);
  }
}

/**
 * Sets an auth collection's secrets on one server (through the `records` piece). Tokens signed with
 * the old secrets stop working there.
 * @param pb - A superuser's (or a replicator's) SDK client of the server.
 * @param col - The auth collection.
 * @param secrets - As {@link readSecrets} returned them from another server.
 * @throws TransportError (see `toTransportError`).
 */
export async function writeSecrets(pb: PocketBase, col: string, secrets: AuthSecrets): Promise<void> {
  try {
    await pb.send(path(col), { method: "POST", body: { secrets }, requestKey: null });
  } catch (e) {
    throw toTransportError(e, `write the secrets of ${col} at ${pb.baseURL}`);
  }
}
