import { z } from "zod";
import { counter } from "../../../src/model/schema.js";

/**
 * Two versions of one document schema, for rolling-upgrade tests: v2 widens the `mode` enum of a
 * route and the top-level `level` enum, and adds an optional route `region`, an optional
 * `flags.canary` and an optional `visits` counter.
 */
export const v1 = z.object({
  routes: z.record(z.string(), z.object({ host: z.string(), mode: z.enum(["http", "https"]) })),
  flags: z.object({ maintenance: z.boolean() }),
  level: z.enum(["low", "high"]),
  hits: counter(),
});
export const v2 = z.object({
  routes: z.record(
    z.string(),
    z.object({ host: z.string(), mode: z.enum(["http", "https", "h2"]), region: z.string().optional() }),
  ),
  flags: z.object({ maintenance: z.boolean(), canary: z.boolean().optional() }),
  level: z.enum(["low", "high", "max"]),
  hits: counter(),
  visits: counter().optional(),
});
export type V1 = z.output<typeof v1>;
export type V2 = z.output<typeof v2>;
/** The initial state of both versions (every replica passes the same one). */
export const initial: V1 = { routes: {}, flags: { maintenance: false }, level: "low", hits: 0 };
