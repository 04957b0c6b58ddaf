/**
 * Large payloads by reference: the zod schema of a {@link BlobRef}, to put in a queue's payload
 * schema where bytes (audio, images) travel as a blob.
 */
import { z } from "zod";
import type { BlobRef } from "./backend.js";

/**
 * The schema of a blob reference inside a payload.
 * @example
 * ```ts
 * import { z } from "zod";
 * const schema = z.object({ audio: blobRefSchema, language: z.string() });
 * const queue = createQueue({ name: "voice", schema, backend: createMemoryQueueBackend({ scheduler }) });
 * const audio = await queue.putBlob(new Uint8Array(2048), { contentType: "audio/wav" });
 * await queue.add({ audio, language: "de" });
 * // in the handler: const bytes = await queue.getBlob(payload.audio);
 * ```
 */
export const blobRefSchema: z.ZodType<BlobRef> = z.object({
  $blob: z.string().min(1),
  size: z.number().int().nonnegative(),
  contentType: z.string().optional(),
}) as z.ZodType<BlobRef>;
