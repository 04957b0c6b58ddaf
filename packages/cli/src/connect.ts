import { ErrorCode, NxsError, TransportError } from "@nxs-sync/core";
import { closeSdkClient, createSdkClient, toTransportError } from "@nxs-sync/pocketbase";
import type PocketBase from "pocketbase";
import type { Credentials } from "./credentials.js";

/**
 * Checks a server URL given on the command line.
 * @param url - `--server` value.
 * @returns The URL without a trailing slash.
 * @throws NxsError `config/invalid` when it is not an http(s) URL with a host.
 */
export function checkServerUrl(url: string): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || !/^https?:$/.test(parsed.protocol) || parsed.host === "") {
    throw new NxsError(
      ErrorCode.ConfigInvalid,
      `--server ${JSON.stringify(url)}: not an http:// or https:// URL with a host (e.g. http://127.0.0.1:8090)`,
    );
  }
  return url.replace(/\/+$/, "");
}

/**
 * Logs in to a server as a superuser.
 * @param url - The server.
 * @param credentials - A superuser's email and password (never in a message).
 * @param timeoutMs - Per-request timeout.
 * @returns An SDK client holding the superuser session (close it with `closeSdkClient`).
 * @throws TransportError `transport/unauthorized` when the login is refused, `transport/unavailable`
 *   when the server does not answer; NxsError `config/invalid` for a malformed URL.
 */
export async function connectSuperuser(
  url: string,
  credentials: Credentials,
  timeoutMs: number,
): Promise<PocketBase> {
  const pb = createSdkClient(checkServerUrl(url), timeoutMs);
  // PocketBase limits guest logins per IP (`*:auth`, 2 per 3 s, once ensureSchema turned the rate
  // limits on): commands run back to back wait out the window instead of failing.
  for (let attempt = 1; ; attempt++) {
    try {
      await pb
        .collection("_superusers")
        .authWithPassword(credentials.email, credentials.password, { requestKey: null });
      return pb;
    } catch (e) {
      if ((e as { status?: number }).status === 429 && attempt < LOGIN_ATTEMPTS) {
        await sleep(1000 * attempt);
        continue;
      }
      throw loginError(pb, url, e);
    }
  }
}

const LOGIN_ATTEMPTS = 5;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function loginError(pb: PocketBase, url: string, e: unknown): Error {
  {
    closeSdkClient(pb);
    const status = (e as { status?: number }).status;
    if (status === 400 || status === 401 || status === 403) {
      return new TransportError(
        ErrorCode.TransportUnauthorized,
        `${url}: the superuser login was refused (HTTP ${status}): wrong email or password, or not a superuser of this server`,
        { status },
      );
    }
    return toTransportError(e, `log in to ${url}`);
  }
}

/**
 * Runs `fn` with a superuser client of each server, in order, closing every client after.
 * @param urls - The servers.
 * @param credentialsOf - Each server's superuser credentials.
 * @param timeoutMs - Per-request timeout.
 * @param fn - The work on one server.
 * @returns What `fn` returned per server.
 */
export async function withSuperusers<T>(
  urls: readonly string[],
  credentialsOf: (url: string) => Credentials,
  timeoutMs: number,
  fn: (pb: PocketBase, url: string, index: number) => Promise<T>,
): Promise<T[]> {
  return withAllSuperusers(urls, credentialsOf, timeoutMs, async (servers) => {
    const out: T[] = [];
    for (const [i, s] of servers.entries()) out.push(await fn(s.pb, s.url, i));
    return out;
  });
}

/**
 * Logs in to every server as a superuser, runs `fn` with all the clients at once, then closes them.
 * @param urls - The servers.
 * @param credentialsOf - Each server's superuser credentials.
 * @param timeoutMs - Per-request timeout.
 * @param fn - The work.
 * @returns What `fn` returns.
 */
export async function withAllSuperusers<T>(
  urls: readonly string[],
  credentialsOf: (url: string) => Credentials,
  timeoutMs: number,
  fn: (servers: readonly { readonly url: string; readonly pb: PocketBase }[]) => Promise<T>,
): Promise<T> {
  const clients: { url: string; pb: PocketBase }[] = [];
  try {
    for (const url of urls)
      clients.push({ url, pb: await connectSuperuser(url, credentialsOf(url), timeoutMs) });
    return await fn(clients);
  } finally {
    for (const c of clients) closeSdkClient(c.pb);
  }
}
