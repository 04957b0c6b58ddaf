/**
 * The gateway process: settings from the environment, the parts of {@link startGateway} once a
 * server accepts the account, and a small HTTP API on `NXS_HTTP_PORT` (default 8080):
 *
 * | route | does |
 * |---|---|
 * | `GET /api/health` | 200 once started, 503 with the reason before (the image's probe checks it) |
 * | `GET /state` | node name, the server in use, the notes, the greeting, the config store's source |
 * | `PUT /notes/{key}` `{"value":…}` | sets a note, answers once a server acknowledged it |
 * | `GET /notes` | every note this gateway sees |
 * | `POST /jobs` `{"text":…}` | enqueues an echo job, answers its id |
 * | `GET /jobs/{id}` | the job's state and result (`{echo, worker}` once done) |
 * | `PUT /config/greeting` `{"text":…}` | writes the next version of the greeting |
 * | `GET /config/greeting` | the greeting this node serves, and its version |
 *
 * SIGTERM and SIGINT close the parts (the worker finishes its job, the outbox is on disk) and exit 0.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { Logger } from "@nxs-sync/core";
import { isNxsError } from "@nxs-sync/core";
import { toJobId } from "@nxs-sync/queue";
import { type Gateway, startGateway, waitForAccount } from "./gateway.js";
import { readSettings } from "./settings.js";

const line =
  (level: string) =>
  (message: string, ...rest: unknown[]): void => {
    const extra = rest.length
      ? ` ${rest.map((r) => (r instanceof Error ? r.message : String(r))).join(" ")}`
      : "";
    process.stderr.write(`${new Date().toISOString()} ${level} ${message}${extra}\n`);
  };
const logger: Logger = {
  debug: () => undefined,
  info: line("info"),
  warn: line("warn"),
  error: line("error"),
};

let settings: ReturnType<typeof readSettings>;
try {
  settings = readSettings();
} catch (e) {
  logger.error((e as Error).message);
  process.exit(2);
}

let gateway: Gateway | undefined;
let notReady = "starting";
const stopping = new AbortController();

/** Reads a JSON body of at most 64 KiB. */
async function body(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 65_536) throw new HttpError(413, "body over 64 KiB");
    chunks.push(chunk as Buffer);
  }
  try {
    const v = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as unknown;
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not an object");
    return v as Record<string, unknown>;
  } catch {
    throw new HttpError(400, "body must be a JSON object");
  }
}

/** An answer with a status other than 200. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "HttpError";
  }
}

const send = (res: ServerResponse, status: number, value: unknown): void => {
  const text = JSON.stringify(value);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
};

const str = (v: unknown, name: string): string => {
  if (typeof v !== "string") throw new HttpError(400, `${name} must be a string`);
  return v;
};

async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", "http://gateway");
  const path = url.pathname;
  if (req.method === "GET" && path === "/api/health") {
    if (gateway) return send(res, 200, { status: "ok", node: settings.name });
    return send(res, 503, { status: "starting", node: settings.name, reason: notReady });
  }
  const gw = gateway;
  if (!gw) throw new HttpError(503, `not started: ${notReady}`);
  const note = /^\/notes\/([A-Za-z0-9_.-]{1,64})$/.exec(path);
  const job = /^\/jobs\/([a-z0-9]{15})$/.exec(path);
  if (req.method === "GET" && path === "/state") {
    const greeting = gw.config.version("greeting") ? gw.config.get("greeting") : undefined;
    return send(res, 200, {
      node: settings.name,
      endpoint: gw.notesEndpoint(),
      streamLeader: gw.notesStreamLeader(),
      notes: gw.replica.doc.get().entries,
      greeting,
      configSource: gw.configSource,
    });
  }
  if (req.method === "GET" && path === "/notes") return send(res, 200, gw.replica.doc.get().entries);
  if (req.method === "PUT" && note?.[1]) {
    const value = str((await body(req)).value, "value");
    await gw.setNote(note[1], value);
    return send(res, 200, { key: note[1], value });
  }
  if (req.method === "POST" && path === "/jobs") {
    const id = await gw.enqueue(str((await body(req)).text, "text"));
    return send(res, 200, { id });
  }
  if (req.method === "GET" && job?.[1]) {
    const found = await gw.queue.getJob(toJobId(job[1]));
    if (!found) throw new HttpError(404, `no job ${job[1]}`);
    return send(res, 200, { id: found.id, state: found.state, result: found.result ?? null });
  }
  if (path === "/config/greeting") {
    if (req.method === "PUT") {
      const text = str((await body(req)).text, "text");
      const meta = await gw.config.put(
        "greeting",
        { text },
        {
          expectedVersion: gw.config.version("greeting")?.version ?? 0,
          author: settings.name,
          message: "PUT /config/greeting",
        },
      );
      return send(res, 200, { version: meta.version });
    }
    if (req.method === "GET") {
      const meta = gw.config.version("greeting");
      if (!meta) throw new HttpError(404, "no greeting yet");
      return send(res, 200, { ...gw.config.get("greeting"), version: meta.version });
    }
  }
  throw new HttpError(404, `no route ${req.method} ${path}`);
}

const server = createServer((req, res) => {
  route(req, res).catch((e: unknown) => {
    if (e instanceof HttpError) return send(res, e.status, { error: e.message });
    const code = isNxsError(e) ? e.code : "internal";
    const retryable = isNxsError(e) ? e.retryable : false;
    logger.warn(`${req.method} ${req.url}: ${code}: ${(e as Error).message}`);
    send(res, retryable ? 503 : 500, { error: (e as Error).message, code });
  });
});
server.listen(settings.port, "0.0.0.0", () =>
  logger.info(`gateway ${settings.name} listening on :${settings.port}`),
);

async function boot(): Promise<void> {
  for (;;) {
    try {
      await waitForAccount(settings, stopping.signal, (reason) => {
        notReady = reason;
        logger.warn(reason);
      });
      gateway = await startGateway(settings, logger);
      logger.info(
        `gateway ${settings.name} started (servers ${settings.endpoints.join(", ")}; config from ${gateway.configSource})`,
      );
      return;
    } catch (e) {
      if (stopping.signal.aborted) return;
      notReady = `start failed: ${(e as Error).message}`;
      logger.warn(`${notReady}; retrying in 2 s`);
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

async function shutdown(signal: string): Promise<void> {
  logger.info(`${signal}: closing`);
  stopping.abort(new Error(signal));
  server.close();
  await gateway?.close();
  process.exit(0);
}
process.once("SIGTERM", () => void shutdown("SIGTERM"));
process.once("SIGINT", () => void shutdown("SIGINT"));
void boot();
