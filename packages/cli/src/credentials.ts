import { readFile } from "node:fs/promises";
import { ErrorCode, NxsError } from "@nxs-sync/core";

/** An email and password (a superuser's). Never printed, never in an error message. */
export interface Credentials {
  readonly email: string;
  readonly password: string;
}

/** The credentials options every server command takes. */
export interface CredentialOptions {
  readonly superuserEmail?: string;
  readonly superuserPassword?: string;
  /** `--credentials FILE`. */
  readonly credentials?: string;
}

/**
 * A credentials file: `{ "email", "password" }` for every server, or with per-server entries
 * `{ "superuser": { email, password }, "servers": { "<url>": { email, password } } }`.
 */
interface CredentialsFile {
  readonly email?: unknown;
  readonly password?: unknown;
  readonly superuser?: { readonly email?: unknown; readonly password?: unknown };
  readonly servers?: Readonly<Record<string, { readonly email?: unknown; readonly password?: unknown }>>;
}

/** The superuser credentials of each server. */
export type SuperuserOf = (url: string) => Credentials;

const USAGE_FIX =
  "give superuser credentials: --superuser-email and --superuser-password, the environment (NXS_SUPERUSER_EMAIL, NXS_SUPERUSER_PASSWORD), or --credentials FILE";

const pair = (v: { email?: unknown; password?: unknown } | undefined): Partial<Credentials> => ({
  email: typeof v?.email === "string" && v.email !== "" ? v.email : undefined,
  password: typeof v?.password === "string" && v.password !== "" ? v.password : undefined,
});

/** A URL as a key: no trailing slash. */
export const urlKey = (url: string): string => url.replace(/\/+$/, "");

/**
 * Reads `--credentials FILE` (never echoing its content: a parse error names the file only).
 * @param path - The file.
 * @returns Its parsed content.
 * @throws NxsError `config/invalid` when it cannot be read or is not a JSON object.
 */
async function readCredentialsFile(path: string): Promise<CredentialsFile> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new NxsError(
      ErrorCode.ConfigInvalid,
      `--credentials ${path}: cannot read it (${(e as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
      throw new Error("not an object");
    return parsed as CredentialsFile;
  } catch {
    throw new NxsError(
      ErrorCode.ConfigInvalid,
      `--credentials ${path}: not a JSON object like {"email": "...", "password": "..."}`,
    );
  }
}

/**
 * Resolves the superuser credentials: flags win over the environment, which wins over the file
 * (per-server entries of the file win over its default).
 * @param options - The command's credential options.
 * @param env - The environment.
 * @returns A function giving each server's credentials.
 * @throws NxsError `config/invalid` when a server would have no email or no password (the message
 *   names where to put them, never a value).
 */
export async function resolveSuperuser(
  options: CredentialOptions,
  env: Readonly<Record<string, string | undefined>>,
): Promise<SuperuserOf> {
  const file = options.credentials === undefined ? undefined : await readCredentialsFile(options.credentials);
  const fromFile = { ...pair(file), ...stripUndefined(pair(file?.superuser)) };
  const fromEnv = pair({ email: env.NXS_SUPERUSER_EMAIL, password: env.NXS_SUPERUSER_PASSWORD });
  const fromFlags = pair({ email: options.superuserEmail, password: options.superuserPassword });
  const perServer = new Map(Object.entries(file?.servers ?? {}).map(([u, c]) => [urlKey(u), pair(c)]));
  return (url) => {
    const server = perServer.get(urlKey(url)) ?? {};
    const email = fromFlags.email ?? fromEnv.email ?? server.email ?? fromFile.email;
    const password = fromFlags.password ?? fromEnv.password ?? server.password ?? fromFile.password;
    if (email === undefined || password === undefined) {
      throw new NxsError(
        ErrorCode.ConfigInvalid,
        `no superuser ${email === undefined ? "email" : "password"} for ${url}: ${USAGE_FIX}`,
      );
    }
    return { email, password };
  };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
