/**
 * A typed queue: the producer's side. It checks payloads with the queue's zod schema at enqueue
 * (nothing of a bad batch is stored), fills the job defaults, makes ids, and reads jobs, counts
 * and events back. Workers take jobs with `createWorker(queue, handler)`.
 */
import {
  checkNumberOption,
  checkOption,
  createEmitter,
  defaultLogger,
  type Json,
  type Logger,
  NxsError,
  type Random,
  ValidationError,
} from "@nxs-sync/core";
import type { z } from "zod";
import { createAddBatcher } from "./add-batcher.js";
import type {
  BlobRef,
  FlowLimits,
  FlowRecord,
  JobCounts,
  JobEvent,
  QueueBackendCapabilities,
  ScheduleRecord,
} from "./backend.js";
import { QueueErrorCode } from "./errors.js";
import { checkJobGroup, checkWeight } from "./flow.js";
import type { BackoffOptions, JobId, JobKey, JobRecord, JobState, NewJob } from "./job.js";
import { TERMINAL_STATES } from "./job.js";
import { createCryptoRandom, newJobId, toJobId } from "./job-id.js";
import { DEFAULT_BACKOFF } from "./retry-delay.js";
import { checkJobKey, checkPriority, checkScheduleSpec } from "./scheduling.js";

/** Defaults of every job of a queue (each overridable per job). */
export interface QueueDefaults {
  /** Attempts before the job is dead-lettered (default 3). */
  readonly attempts?: number;
  /** Backoff between attempts (default exponential from 1 s, at most 1 h, with jitter). */
  readonly backoff?: BackoffOptions;
  /** Per-attempt time limit in ms, 0 for none (default 0). */
  readonly timeoutMs?: number;
}

/** The defaults of {@link QueueDefaults}. */
export const DEFAULT_JOB_OPTIONS: Required<QueueDefaults> = Object.freeze({
  attempts: 3,
  backoff: DEFAULT_BACKOFF,
  timeoutMs: 0,
});

/** The default limit of a payload's JSON: 1 MiB. Larger data goes in a blob ({@link Queue.putBlob}). */
export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;

/** Options of {@link createQueue}. */
export interface CreateQueueOptions<S extends z.ZodType> {
  /** The queue's name (jobs of one name form one queue on the backend). */
  readonly name: string;
  /** The payload's zod schema: checked at enqueue and again when a worker claims the job. */
  readonly schema: S;
  /** Where jobs are stored. */
  readonly backend: QueueBackendCapabilities;
  /** Job defaults. */
  readonly defaults?: QueueDefaults;
  /** The source of job ids (default: crypto-random). */
  readonly random?: Random;
  /** Largest payload JSON in bytes (default {@link DEFAULT_MAX_PAYLOAD_BYTES}). */
  readonly maxPayloadBytes?: number;
  /** Where a throwing event listener is reported (default: the line logger at `warn`). */
  readonly logger?: Logger;
}

/** Options of one job (defaults from the queue). */
export interface AddOptions {
  /** Your own id, for idempotent enqueue (15 chars of `[a-z0-9]`): adding an id again is a no-op. */
  readonly id?: string;
  /** Run no earlier than this many ms from now (the backend's clock). */
  readonly delayMs?: number;
  /** Run no earlier than this time (ms since the epoch); wins over `delayMs`. */
  readonly runAt?: number;
  /** Attempts before the job is dead-lettered. */
  readonly attempts?: number;
  /** Backoff between attempts. */
  readonly backoff?: BackoffOptions;
  /** Per-attempt time limit in ms (0: none). */
  readonly timeoutMs?: number;
  /** 0 to 1000, higher runs first, with aging (see `PRIORITY_STEP_MS`). Default 0. */
  readonly priority?: number;
  /** Dedupe by key: `{ key, mode: "simple" | "throttle" | "debounce" | "singleton", ttlMs }`. */
  readonly jobKey?: JobKey;
  /**
   * The flow-control group the job counts against, for example its provider (`"openai"`): the
   * group's concurrency limit, rate limit and pause apply to it ({@link Queue.setLimits}).
   */
  readonly group?: string;
  /** Its weight against rate limits, for example the tokens it will spend (default 1). */
  readonly weight?: number;
}

/** Which flow record a flow call is about. */
export interface FlowTarget {
  /** A group; `"*"` (limits only): each group without limits of its own. Absent: the whole queue. */
  readonly group?: string;
}

/** Options of {@link Queue.schedule}. */
export interface ScheduleOptions {
  /** IANA time zone of the expression (default UTC). */
  readonly tz?: string;
  /** At most this many runs in all. */
  readonly limit?: number;
  /** No run at or after this time (a Date or ms since the epoch). */
  readonly endDate?: Date | number;
  /** Attempts, backoff, timeout and priority of each run (default: the queue's). */
  readonly attempts?: number;
  readonly backoff?: BackoffOptions;
  readonly timeoutMs?: number;
  readonly priority?: number;
}

/** A job with its payload typed by the queue's schema. */
export type QueueJob<P> = Omit<JobRecord, "payload"> & { readonly payload: P };

/** The queue's events: each job event by its type. */
export type QueueEvents = { readonly [T in JobEvent["type"]]: Extract<JobEvent, { type: T }> };

/** Options of {@link Queue.clean}. */
export interface CleanOptions {
  /** Which terminal states (default all: completed, failed, cancelled). */
  readonly states?: readonly JobState[];
  /** Only jobs finished before this time (ms since the epoch, the backend's clock). */
  readonly before: number;
  /** At most this many. */
  readonly limit?: number;
}

/** A typed queue (see {@link createQueue}). */
export interface Queue<S extends z.ZodType = z.ZodType> {
  readonly name: string;
  readonly schema: S;
  readonly backend: QueueBackendCapabilities;
  /** The job defaults in force. */
  readonly defaults: Required<QueueDefaults>;
  /**
   * Enqueues one job.
   * @returns Its id (the given one, or a new one); for an add deduped by its `jobKey`, the id of
   *   the job that holds the key.
   * @throws ValidationError `schema/invalid` naming the field when the payload does not match the schema.
   * @throws NxsError `queue/too-large` when its JSON is over `maxPayloadBytes`; `queue/closed` after close.
   */
  add(payload: z.input<S>, options?: AddOptions): Promise<JobId>;
  /**
   * Enqueues many jobs in one backend call; nothing of the batch is stored when one is refused.
   * @returns Their ids, in order.
   * @throws As {@link Queue.add}, the message naming the job's index.
   */
  addBulk(
    jobs: readonly { readonly payload: z.input<S>; readonly options?: AddOptions }[],
  ): Promise<readonly JobId[]>;
  /**
   * Reads one job with its payload typed.
   * @throws NxsError `queue/invalid-payload` when the stored payload no longer matches the schema
   *   (read it raw with `queue.backend.getJob`).
   */
  getJob(id: JobId): Promise<QueueJob<z.output<S>> | undefined>;
  /** Counts the queue's jobs per state (`delayed`: waiting, not due yet). */
  counts(): Promise<JobCounts>;
  /**
   * Cancels a job (waiting: at once; active: its worker's signal fires at the next heartbeat).
   * @returns Its state after the call, or undefined for an unknown id.
   * @throws NxsError `config/invalid` when the backend has no `admin` capability.
   */
  cancel(id: JobId, reason?: string): Promise<JobState | undefined>;
  /**
   * Moves dead-lettered jobs back to waiting with a fresh attempt budget.
   * @returns How many moved.
   */
  redrive(options?: { readonly ids?: readonly JobId[]; readonly limit?: number }): Promise<number>;
  /**
   * Deletes finished jobs.
   * @returns How many were deleted.
   */
  clean(options: CleanOptions): Promise<number>;
  /**
   * Listens to one kind of job event of this queue, from any process (a hint: re-read with
   * `getJob` for the truth).
   * @returns The function that stops listening.
   */
  on<E extends keyof QueueEvents>(event: E, listener: (event: QueueEvents[E]) => void): () => void;
  /**
   * Stores bytes too large for a payload as a blob; put the returned reference in the payload
   * (schema: {@link blobRefSchema}).
   * @throws NxsError `queue/too-large` over the backend's `blobs.maxBytes`.
   */
  putBlob(bytes: Uint8Array, options?: { readonly contentType?: string }): Promise<BlobRef>;
  /**
   * Reads a blob.
   * @throws NxsError `queue/not-found` when it is gone.
   */
  getBlob(ref: BlobRef): Promise<Uint8Array>;
  /** Deletes a blob (no-op when gone). */
  deleteBlob(ref: BlobRef): Promise<void>;
  /**
   * Stores (or replaces) a cron schedule of this queue; `createCronScheduler` processes fire its
   * ticks, exactly one job per tick across the fleet.
   * @param id - The schedule's id (1-100 characters of `[A-Za-z0-9_.:-]`).
   * @param cron - A cron expression (croner: 5 fields, or 6 with seconds first).
   * @param payload - The payload of every run (checked by the schema now).
   * @returns The stored schedule.
   * @throws ValidationError `schema/invalid` for a bad payload, expression, time zone or option;
   *   NxsError `config/invalid` when the backend has no `schedules` capability.
   */
  schedule(id: string, cron: string, payload: z.input<S>, options?: ScheduleOptions): Promise<ScheduleRecord>;
  /**
   * Removes a schedule (the jobs it fired stay).
   * @returns False when there was none.
   */
  unschedule(id: string): Promise<boolean>;
  /** This queue's schedules. */
  schedules(): Promise<readonly ScheduleRecord[]>;
  /**
   * Sets the concurrency and rate limits of the whole queue, of one group (`{ group }`) or of each
   * group (`{ group: "*" }`), for every worker of the fleet at once (enforced in the backend's
   * claim); replaces the limits the target had (`{}` removes them).
   * @throws ValidationError `schema/invalid` for a bad limit; NxsError `config/invalid` when the
   *   backend has no `flow` capability.
   */
  setLimits(limits: FlowLimits, target?: FlowTarget): Promise<FlowRecord>;
  /**
   * Pauses the queue or one group on every worker: no job of it is claimed until {@link Queue.resume}
   * (or for `forMs`). Jobs already running go on.
   */
  pause(target?: FlowTarget & { readonly forMs?: number; readonly reason?: string }): Promise<FlowRecord>;
  /** Lifts a pause of the queue or of one group. */
  resume(target?: FlowTarget): Promise<FlowRecord>;
  /** The queue's flow records (limits and pauses), the queue's first. */
  flows(): Promise<readonly FlowRecord[]>;
  /** Stops the queue's event watch; later calls throw `queue/closed`. The backend stays open. */
  close(): Promise<void>;
}

/** `path.to.field: message; …` of zod issues, each path under `prefix`. */
export function describeIssues(
  prefix: string,
  issues: readonly { readonly path: readonly PropertyKey[]; readonly message: string }[],
): string {
  return issues
    .map((i) => `${[prefix, ...i.path.map(String)].filter((p) => p !== "").join(".")}: ${i.message}`)
    .join("; ");
}

/**
 * Creates a typed queue over a backend.
 * @param options - Name, zod schema, backend, job defaults, id source, payload limit.
 * @returns The queue.
 * @throws NxsError `config/invalid` for an empty name or a bad default.
 * @example
 * ```ts
 * import { z } from "zod";
 * const backend = createMemoryQueueBackend({ scheduler });
 * const queue = createQueue({ name: "transcribe", schema: z.object({ url: z.string().url() }), backend });
 * const id = await queue.add({ url: "https://example.com/a.wav" }, { attempts: 5 });
 * ```
 */
export function createQueue<S extends z.ZodType>(options: CreateQueueOptions<S>): Queue<S> {
  const { name, schema, backend } = options;
  checkOption(
    typeof name === "string" && name.length > 0,
    () => "createQueue: name must be a non-empty string",
  );
  const defaults: Required<QueueDefaults> = {
    attempts:
      checkNumberOption("defaults.attempts", options.defaults?.attempts, { min: 1, integer: true }) ??
      DEFAULT_JOB_OPTIONS.attempts,
    backoff: { ...DEFAULT_JOB_OPTIONS.backoff, ...options.defaults?.backoff },
    timeoutMs:
      checkNumberOption("defaults.timeoutMs", options.defaults?.timeoutMs, { min: 0 }) ??
      DEFAULT_JOB_OPTIONS.timeoutMs,
  };
  const random = options.random ?? createCryptoRandom();
  const maxPayloadBytes =
    checkNumberOption("maxPayloadBytes", options.maxPayloadBytes, { min: 1, integer: true }) ??
    DEFAULT_MAX_PAYLOAD_BYTES;
  const logger = options.logger ?? defaultLogger;
  const encoder = new TextEncoder();
  let closed = false;
  let unwatch: (() => void) | undefined;
  const emitter = createEmitter<QueueEvents>((error, event) =>
    logger.warn(`[nxs-sync queue ${name}] a listener of "${String(event)}" threw`, error),
  );

  const checkOpen = (): void => {
    if (closed) throw new NxsError(QueueErrorCode.Closed, `queue ${name} is closed`);
  };

  const toNewJob = (payload: unknown, opts: AddOptions, where: string): NewJob => {
    const parsed = schema.safeParse(payload);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => ({ path: [...i.path], message: i.message }));
      throw new ValidationError(`queue ${name}: ${describeIssues(`${where}payload`, issues)}`, {
        cause: parsed.error,
        issues,
      });
    }
    const json = JSON.stringify(parsed.data ?? null);
    const bytes = encoder.encode(json).byteLength;
    if (bytes > maxPayloadBytes) {
      throw new NxsError(
        QueueErrorCode.TooLarge,
        `queue ${name}: ${where}payload is ${bytes} bytes of JSON, over the limit of ${maxPayloadBytes}: put large data in a blob (queue.putBlob)`,
      );
    }
    const at = (field: string) => `${where}options.${field}`;
    checkNumberOption(at("delayMs"), opts.delayMs, { min: 0 });
    checkNumberOption(at("runAt"), opts.runAt, { min: 0 });
    checkNumberOption(at("attempts"), opts.attempts, { min: 1, integer: true });
    checkNumberOption(at("timeoutMs"), opts.timeoutMs, { min: 0 });
    checkNumberOption(at("backoff.delayMs"), opts.backoff?.delayMs, { min: 0 });
    checkNumberOption(at("backoff.maxMs"), opts.backoff?.maxMs, { min: 0 });
    checkPriority(opts.priority, at("priority"));
    if (opts.priority !== undefined && opts.priority !== 0) {
      checkOption(
        backend.priorities !== undefined,
        () => `queue ${name}: the backend has no priorities capability`,
      );
    }
    if (opts.jobKey !== undefined) {
      checkJobKey(opts.jobKey, at("jobKey"));
      const mode = opts.jobKey.mode;
      checkOption(
        backend.dedupeModes?.includes(mode) === true,
        () => `queue ${name}: the backend does not dedupe in mode ${mode}`,
      );
    }
    if (opts.group !== undefined || opts.weight !== undefined) {
      checkJobGroup(opts.group, at("group"));
      checkWeight(opts.weight, at("weight"));
      checkOption(backend.flow !== undefined, () => `queue ${name}: the backend has no flow capability`);
    }
    return {
      id: opts.id === undefined ? newJobId(random) : toJobId(opts.id, at("id")),
      queue: name,
      payload: JSON.parse(json) as Json,
      ...(opts.delayMs === undefined ? {} : { delayMs: opts.delayMs }),
      ...(opts.runAt === undefined ? {} : { runAt: opts.runAt }),
      maxAttempts: opts.attempts ?? defaults.attempts,
      backoff: { ...defaults.backoff, ...opts.backoff },
      timeoutMs: opts.timeoutMs ?? defaults.timeoutMs,
      ...(opts.priority ? { priority: opts.priority } : {}),
      ...(opts.jobKey === undefined ? {} : { key: { ...opts.jobKey } }),
      ...(opts.group === undefined ? {} : { group: opts.group }),
      ...(opts.weight === undefined ? {} : { weight: opts.weight }),
    };
  };
  const adds = createAddBatcher(backend);
  const flowStore = () => {
    checkOpen();
    const f = backend.flow;
    checkOption(f !== undefined, () => `queue ${name}: the backend has no flow capability`);
    return f;
  };
  const scheduleStore = () => {
    checkOpen();
    const s = backend.schedules;
    checkOption(s !== undefined, () => `queue ${name}: the backend has no schedules capability`);
    return s;
  };

  const admin = () => {
    checkOpen();
    const a = backend.admin;
    checkOption(a !== undefined, () => `queue ${name}: the backend has no admin capability`);
    return a;
  };
  const blobs = () => {
    checkOpen();
    const b = backend.blobs;
    checkOption(b !== undefined, () => `queue ${name}: the backend has no blobs capability`);
    return b;
  };

  const startWatch = (): void => {
    if (unwatch !== undefined) return;
    unwatch = backend.watch(name, {
      onEvent: (event) => emitter.emit(event.type, event as never),
      onResync: () => {},
    });
  };

  return {
    name,
    schema,
    backend,
    defaults,
    async add(payload, opts = {}) {
      checkOpen();
      const job = toNewJob(payload, opts, "");
      // Coalesced with the adds made while an enqueue is in flight (add-batcher.ts).
      const result = await adds.add(job);
      // A deduped add answers the job that holds the key.
      return result.id;
    },
    async addBulk(jobs) {
      checkOpen();
      const batch = jobs.map((j, i) => toNewJob(j.payload, j.options ?? {}, `jobs[${i}].`));
      if (batch.length === 0) return [];
      const results = await backend.enqueue(batch);
      return batch.map((j, i) => results[i]?.id ?? j.id);
    },
    async getJob(id) {
      checkOpen();
      const job = await backend.getJob(id);
      if (job === undefined) return undefined;
      const parsed = schema.safeParse(job.payload);
      if (!parsed.success) {
        throw new NxsError(
          QueueErrorCode.InvalidPayload,
          `queue ${name}: job ${id}: ${describeIssues("payload", parsed.error.issues)}`,
          { cause: parsed.error },
        );
      }
      return { ...job, payload: parsed.data as z.output<S> };
    },
    async counts() {
      checkOpen();
      return backend.counts(name);
    },
    async cancel(id, reason = "cancelled") {
      return admin().cancel(id, reason);
    },
    async redrive(opts = {}) {
      return admin().redrive(name, opts);
    },
    async clean(opts) {
      return admin().clean(name, {
        states: opts.states ?? TERMINAL_STATES,
        before: opts.before,
        ...(opts.limit === undefined ? {} : { limit: opts.limit }),
      });
    },
    on(event, listener) {
      checkOpen();
      startWatch();
      return emitter.on(event, listener);
    },
    async putBlob(bytes, opts = {}) {
      return blobs().put(bytes, opts);
    },
    async getBlob(ref) {
      const bytes = await blobs().get(ref);
      if (bytes === undefined) {
        throw new NxsError(QueueErrorCode.NotFound, `queue ${name}: blob ${ref.$blob} is gone`);
      }
      return bytes;
    },
    async deleteBlob(ref) {
      await blobs().delete(ref);
    },
    async schedule(id, cron, payload, opts = {}) {
      const store = scheduleStore();
      const job = toNewJob(payload, { ...opts, id: "scheduletmp0000" }, "");
      const endDate = opts.endDate instanceof Date ? opts.endDate.getTime() : opts.endDate;
      const spec = {
        id,
        queue: name,
        cron,
        ...(opts.tz === undefined ? {} : { tz: opts.tz }),
        payload: job.payload,
        ...(opts.limit === undefined ? {} : { limit: opts.limit }),
        ...(endDate === undefined ? {} : { endDate }),
        job: {
          maxAttempts: job.maxAttempts,
          backoff: job.backoff,
          timeoutMs: job.timeoutMs,
          ...(job.priority === undefined ? {} : { priority: job.priority }),
        },
      };
      checkScheduleSpec(spec);
      return store.put(spec);
    },
    async unschedule(id) {
      return scheduleStore().remove(name, id);
    },
    async schedules() {
      return scheduleStore().list(name);
    },
    async setLimits(limits, target = {}) {
      return flowStore().setLimits(name, target.group ?? "", limits);
    },
    async pause(target = {}) {
      const { group, ...opts } = target;
      return flowStore().pause(name, group ?? "", opts);
    },
    async resume(target = {}) {
      return flowStore().resume(name, target.group ?? "");
    },
    async flows() {
      return flowStore().list(name);
    },
    async close() {
      closed = true;
      unwatch?.();
      unwatch = undefined;
    },
  };
}
