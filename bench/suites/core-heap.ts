/** Builders for the heap measurement of the core suite, one per subject (run in a child process). */

import { nxs as n } from "./core-nxs.js";
import { automerge as am, filledReplica, tinybase as tb, yjs as y } from "./core-subjects.js";

export const nxs = () => filledReplica(n, 0);
export const yjs = () => filledReplica(y, 0);
export const automerge = () => filledReplica(am, 0);
export const tinybase = () => filledReplica(tb, 0);
