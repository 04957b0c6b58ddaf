// A config writer as a child process (`node --import tsx pocketbase-racer.ts '<config JSON>'`), for
// the race of writers in separate processes: on each "go" from its parent it puts the round's
// version (expectedVersion = the round) with an id of its own, and reports the outcome over IPC.
import { randomBytes } from "node:crypto";
import { ConfigConflictError } from "@nxs-sync/config";
import { createPocketBaseConfigBackend } from "@nxs-sync/config/pocketbase";
import { silentLogger } from "@nxs-sync/core";

/** What the parent passes. */
export interface RacerConfig {
  readonly name: string;
  readonly endpoints: readonly string[];
  readonly auth: { readonly email: string; readonly password: string };
  readonly env: string;
  readonly key: string;
}

/** What the racer reports. */
export type RacerMessage =
  | { type: "ready"; name: string }
  | { type: "won"; name: string; round: number; id: string; version: number }
  | {
      type: "lost";
      name: string;
      round: number;
      id: string;
      code: string;
      currentId?: string;
      currentVersion?: number;
    }
  | { type: "error"; name: string; round: number; message: string };

const cfg = JSON.parse(process.argv[2] ?? "{}") as RacerConfig;
const send = (m: RacerMessage) => process.send?.(m);
const backend = createPocketBaseConfigBackend({
  endpoints: cfg.endpoints,
  auth: cfg.auth,
  logger: silentLogger,
});
const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
const newId = () => [...randomBytes(15)].map((x) => ALPHABET[x % 36]).join("");
let stamp = 0;

async function race(round: number): Promise<void> {
  const id = newId();
  try {
    const v = await backend.put({
      id,
      env: cfg.env,
      key: cfg.key,
      expectedVersion: round,
      hlc: `${String(Date.now()).padStart(15, "0")}-${String(++stamp).padStart(6, "0")}-${cfg.name}`,
      node: cfg.name,
      author: cfg.name,
      message: `round ${round}`,
      value: { round, by: cfg.name },
    });
    send({ type: "won", name: cfg.name, round, id, version: v.version });
  } catch (e) {
    if (e instanceof ConfigConflictError) {
      send({
        type: "lost",
        name: cfg.name,
        round,
        id,
        code: e.code,
        ...(e.current === undefined ? {} : { currentId: e.current.id, currentVersion: e.current.version }),
      });
    } else send({ type: "error", name: cfg.name, round, message: (e as Error).message });
  }
}

process.on("message", (m: { go?: number; stop?: boolean }) => {
  if (typeof m.go === "number") void race(m.go);
  if (m.stop === true) {
    void backend.close().then(() => process.disconnect?.());
  }
});
// Ready once the backend has checked the server (the first put then races at once).
void backend.origin().then(
  () => send({ type: "ready", name: cfg.name }),
  (e: Error) => send({ type: "error", name: cfg.name, round: -1, message: e.message }),
);
