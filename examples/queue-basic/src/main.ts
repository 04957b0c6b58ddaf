/** Runs the example with real timers and prints what happened: `npm start -w examples/queue-basic`. */
import { runExample } from "./transcribe.js";

const summary = await runExample({ log: (line) => console.log(line) });
for (const job of summary.jobs) {
  console.log(
    `${job.id}: ${job.state}${job.result === undefined ? "" : ` ${JSON.stringify(job.result)}`}${job.reason === undefined ? "" : ` (${job.reason})`}`,
  );
}
