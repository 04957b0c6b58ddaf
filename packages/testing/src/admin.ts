import PocketBase, { type AuthRecord } from "pocketbase";
import { HarnessError } from "./errors.js";
import { installEventSource } from "./event-source.js";
import { type BatchSettings, DEFAULT_BATCH_SETTINGS, type Superuser } from "./types.js";

/** A superuser session obtained once at start and shared by every `client()`. */
export interface SuperuserSession {
  token: string;
  record: AuthRecord;
}

/**
 * Polls `GET <url>/api/health` until it answers 200.
 * @internal
 */
export async function waitForHealth(
  url: string,
  timeoutMs: number,
  isDead: () => string | undefined,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let last = "no answer";
  for (;;) {
    const dead = isDead();
    if (dead) throw new Error(dead);
    try {
      const res = await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(2_000) });
      if (res.ok) return;
      last = `HTTP ${res.status}`;
    } catch (error) {
      last = (error as Error).cause ? String((error as Error).cause) : (error as Error).message;
    }
    if (performance.now() > deadline)
      throw new Error(`${url}/api/health did not answer 200 within ${timeoutMs} ms (${last})`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Authenticates as the superuser and applies the batch settings.
 * @internal
 */
export async function prepareServer(
  url: string,
  superuser: Superuser,
  batch: Partial<BatchSettings> | false | undefined,
): Promise<SuperuserSession> {
  const pb = new PocketBase(url);
  pb.autoCancellation(false);
  try {
    const auth = await pb.collection("_superusers").authWithPassword(superuser.email, superuser.password);
    if (batch !== false) await pb.settings.update({ batch: { ...DEFAULT_BATCH_SETTINGS, ...batch } });
    return { token: auth.token, record: auth.record };
  } catch (error) {
    throw new HarnessError(
      "harness/request-failed",
      `superuser setup on ${url} failed: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
}

/**
 * A new SDK client authenticated with `session`, `autoCancellation(false)`, EventSource polyfilled.
 * @internal
 */
export function sessionClient(url: string, session: SuperuserSession): PocketBase {
  installEventSource();
  const pb = new PocketBase(url);
  pb.autoCancellation(false);
  pb.authStore.save(session.token, session.record);
  return pb;
}

/** A random password that satisfies PocketBase's superuser rules (>= 10 chars). @internal */
export function randomPassword(): string {
  return `pw-${crypto.randomUUID()}`;
}

/** A short random id for names. @internal */
export function shortId(): string {
  return crypto.randomUUID().replaceAll("-", "").slice(0, 8);
}
