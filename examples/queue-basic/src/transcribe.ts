/**
 * The example: a transcription queue in one process. Audio travels as a blob referenced from the
 * payload; the worker reads it, calls a (fake) speech provider that rate-limits its first call
 * (RetryLaterError: no attempt spent), refuses empty audio for good (UnrecoverableJobError),
 * reports progress, and shuts down gracefully.
 */
import { type Json, type Scheduler, silentLogger } from "@nxs-sync/core";
import { createTimerScheduler } from "@nxs-sync/core/node";
import {
  blobRefSchema,
  createMemoryQueueBackend,
  createQueue,
  createWorker,
  type JobId,
  type JobState,
  RetryLaterError,
  UnrecoverableJobError,
} from "@nxs-sync/queue";
import { z } from "zod";

/** A job's payload: the audio (a blob reference) and its language. */
export const transcriptionSchema = z.object({ audio: blobRefSchema, language: z.enum(["de", "en"]) });

/** A speech provider: answers a text, or asks to be called again later (HTTP 429). */
export interface SpeechProvider {
  transcribe(
    audio: Uint8Array,
    language: string,
    signal: AbortSignal,
  ): Promise<{ readonly text: string } | { readonly retryAfterMs: number }>;
}

/** A fake provider that rate-limits its first call. */
export function createFakeProvider(retryAfterMs = 200): SpeechProvider {
  let calls = 0;
  return {
    async transcribe(audio, language, signal) {
      signal.throwIfAborted();
      calls++;
      if (calls === 1) return { retryAfterMs };
      return { text: `${audio.byteLength} bytes of ${language} speech` };
    },
  };
}

/** What the example did with each job. */
export interface ExampleSummary {
  readonly jobs: readonly {
    readonly id: JobId;
    readonly state: JobState;
    readonly result?: Json;
    readonly reason?: string;
  }[];
  readonly events: readonly string[];
}

/**
 * Runs the example: enqueues three recordings (one empty), drains them with one worker, closes.
 * @param options - `scheduler` (default real timers), `log` (default none).
 * @returns Each job's outcome and the events seen.
 */
export async function runExample(
  options: { readonly scheduler?: Scheduler; readonly log?: (line: string) => void } = {},
): Promise<ExampleSummary> {
  const scheduler = options.scheduler ?? createTimerScheduler({ unref: false });
  const log = options.log ?? (() => {});
  const backend = createMemoryQueueBackend({ scheduler, maxBlobBytes: 10 * 1024 * 1024 });
  const queue = createQueue({
    name: "transcribe",
    schema: transcriptionSchema,
    backend,
    defaults: { attempts: 3 },
  });
  const provider = createFakeProvider();

  const events: string[] = [];
  for (const type of ["active", "progress", "completed", "failed", "waiting"] as const) {
    queue.on(type, (e) => {
      events.push(`${type} ${e.id}`);
      log(`${type.padEnd(9)} ${e.id}`);
    });
  }

  const worker = createWorker(
    queue,
    async ({ payload, signal, progress }) => {
      const audio = await queue.getBlob(payload.audio);
      if (audio.byteLength === 0) throw new UnrecoverableJobError("empty recording: nothing to transcribe");
      progress({ stage: "uploaded" });
      const answer = await provider.transcribe(audio, payload.language, signal);
      if ("retryAfterMs" in answer) throw new RetryLaterError(answer.retryAfterMs);
      return { text: answer.text };
    },
    { scheduler, concurrency: 2, leaseMs: 10_000, logger: silentLogger },
  );

  const recordings = [new Uint8Array(32_000), new Uint8Array(48_000), new Uint8Array(0)];
  const payloads = await Promise.all(
    recordings.map(async (bytes, i) => ({
      payload: {
        audio: await queue.putBlob(bytes, { contentType: "audio/wav" }),
        language: i === 1 ? ("en" as const) : ("de" as const),
      },
    })),
  );
  const ids = await queue.addBulk(payloads);

  // Wait until every job is finished (completed or dead-lettered).
  await new Promise<void>((resolve) => {
    const check = async (): Promise<void> => {
      const counts = await queue.counts();
      if (counts.completed + counts.failed === ids.length) resolve();
    };
    queue.on("completed", () => void check());
    queue.on("failed", (e) => {
      if (e.final) void check();
    });
  });

  await worker.close({ timeoutMs: 5_000 });
  const jobs = await Promise.all(
    ids.map(async (id) => {
      const job = await queue.getJob(id);
      if (job === undefined) throw new Error(`job ${id} is gone`);
      return {
        id,
        state: job.state,
        ...(job.result === undefined ? {} : { result: job.result }),
        ...(job.reason === undefined ? {} : { reason: job.reason }),
      };
    }),
  );
  await queue.close();
  await backend.close?.();
  return { jobs, events };
}
