/**
 * The gateway's settings, from the environment only (Compose's env files, K3s's ConfigMap and
 * Secrets): no endpoint, account or key is written in code.
 */
import { ErrorCode, NxsError } from "@nxs-sync/core";

/** What the gateway needs to run. */
export interface GatewaySettings {
  /** PocketBase base URLs, own node's server first (`NXS_ENDPOINTS`, comma-separated). */
  readonly endpoints: readonly string[];
  /** The gateway account's record id (`NXS_NODE_ID`, 15 chars `[a-z0-9]`, from the identities file). */
  readonly nodeId: string;
  /** The gateway account (`NXS_NODE_EMAIL`, `NXS_NODE_PASSWORD`). */
  readonly email: string;
  readonly password: string;
  /** A name for logs and answers (`NXS_NODE_NAME`, default the node id). */
  readonly name: string;
  /** Where the outbox, the replica state and the config cache live (`NXS_STATE_DIR`). */
  readonly stateDir: string;
  /** HTTP port (`NXS_HTTP_PORT`, default 8080). */
  readonly port: number;
  /** The config store's environment (`NXS_CONFIG_ENV`, default `production`). */
  readonly configEnv: string;
  /**
   * The node's health metrics (`createMetrics` and the node collector, flushed every 10 s to the
   * servers; `NXS_METRICS=off` turns them off). Default on.
   */
  readonly metrics: boolean;
  /**
   * When set, the `notes` doc syncs over NATS JetStream instead of PocketBase (`NXS_NATS_SERVERS`,
   * comma-separated `nats://host:port` URLs); the queue and the config store stay on PocketBase.
   */
  readonly nats?: NatsSettings;
}

/** The NATS connection of the `notes` doc (examples/compose/compose.nats.yml). */
export interface NatsSettings {
  /** Server URLs (`NXS_NATS_SERVERS`). */
  readonly servers: readonly string[];
  /** The gateways' NATS user (`NXS_NATS_USER`, `NXS_NATS_PASSWORD`; both or neither). */
  readonly user?: string;
  readonly password?: string;
  /** Stream replicas (`NXS_NATS_REPLICAS`, default 3 with three servers or more, else 1). */
  readonly replicas: number;
}

/**
 * A variable is missing or malformed: the message names it and how to fix it (never its value).
 * `code` is `config/invalid`; not retryable.
 */
export class GatewaySettingsError extends NxsError {
  constructor(message: string) {
    super(ErrorCode.ConfigInvalid, message, { retryable: false });
    this.name = "GatewaySettingsError";
  }
}

/**
 * Reads {@link GatewaySettings} from an environment.
 * @param env - The environment (default `process.env`).
 * @returns The settings.
 * @throws GatewaySettingsError `config/invalid` naming each missing or malformed variable.
 * @example
 * ```ts
 * const settings = readSettings(); // NXS_ENDPOINTS=http://pb-primary:8090,http://pb-secondary:8090 …
 * ```
 */
export function readSettings(env: NodeJS.ProcessEnv = process.env): GatewaySettings {
  const problems: string[] = [];
  const need = (name: string): string => {
    const v = env[name]?.trim();
    if (!v) problems.push(`${name} is not set`);
    return v ?? "";
  };
  const endpoints = need("NXS_ENDPOINTS")
    .split(",")
    .map((s) => s.trim().replace(/\/+$/, ""))
    .filter((s) => s !== "");
  for (const e of endpoints) {
    if (!/^https?:\/\/[^/\s]+$/.test(e)) problems.push(`NXS_ENDPOINTS: "${e}" is not an http(s) base URL`);
  }
  const nodeId = need("NXS_NODE_ID");
  if (nodeId !== "" && !/^[a-z0-9]{15}$/.test(nodeId))
    problems.push("NXS_NODE_ID must be 15 characters of [a-z0-9] (the id in the identities file)");
  const email = need("NXS_NODE_EMAIL");
  const password = need("NXS_NODE_PASSWORD");
  const stateDir = need("NXS_STATE_DIR");
  const port = Number(env.NXS_HTTP_PORT ?? "8080");
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    problems.push("NXS_HTTP_PORT must be a port number");
  const nats = readNats(env, problems);
  const metricsFlag = (env.NXS_METRICS ?? "on").trim().toLowerCase();
  if (!["on", "off", "true", "false", "1", "0"].includes(metricsFlag))
    problems.push('NXS_METRICS must be "on" or "off"');
  if (problems.length > 0) {
    throw new GatewaySettingsError(
      `gateway settings: ${problems.join("; ")} (see examples/compose/README.md)`,
    );
  }
  return {
    endpoints,
    nodeId,
    email,
    password,
    name: env.NXS_NODE_NAME?.trim() || nodeId,
    stateDir,
    port,
    configEnv: env.NXS_CONFIG_ENV?.trim() || "production",
    metrics: ["on", "true", "1"].includes(metricsFlag),
    ...(nats === undefined ? {} : { nats }),
  };
}

/** The NATS variables, when `NXS_NATS_SERVERS` is set; problems are added to `problems`. */
function readNats(env: NodeJS.ProcessEnv, problems: string[]): NatsSettings | undefined {
  const list = env.NXS_NATS_SERVERS?.trim();
  if (!list) return undefined;
  const servers = list
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  for (const s of servers) {
    if (!/^nats:\/\/[^/\s]+$/.test(s))
      problems.push(`NXS_NATS_SERVERS: "${s}" is not a nats://host:port URL`);
  }
  const user = env.NXS_NATS_USER?.trim() || undefined;
  const password = env.NXS_NATS_PASSWORD?.trim() || undefined;
  if ((user === undefined) !== (password === undefined))
    problems.push("NXS_NATS_USER and NXS_NATS_PASSWORD are set together or not at all");
  const replicas = Number(env.NXS_NATS_REPLICAS ?? (servers.length >= 3 ? "3" : "1"));
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5)
    problems.push("NXS_NATS_REPLICAS must be an integer from 1 to 5");
  return {
    servers,
    replicas,
    ...(user === undefined ? {} : { user }),
    ...(password === undefined ? {} : { password }),
  };
}
