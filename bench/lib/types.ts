/** One measured line of a suite: nxs-sync and its peers measured the same way, in the same process. */
export interface BenchCase {
  /** Short kebab-case name, e.g. `remote-apply`. */
  readonly metric: string;
  /** Unit of every value, e.g. `ops/s`, `ms`, `bytes`, `MiB`. */
  readonly unit: string;
  /** Whether a higher or a lower value is better. */
  readonly better: "higher" | "lower";
  /**
   * One measurement per call, keyed by subject: `nxs` (this library) and one key per peer
   * (`yjs`, `automerge`, `tinybase`, `raw`, …). The runner calls each subject `runs` times,
   * interleaving subjects so drift in machine load hits all of them alike.
   */
  readonly subjects: Readonly<Record<string, () => number | Promise<number>>>;
  /** Optional note printed under the table (what exactly is measured). */
  readonly note?: string;
  /** A subject whose first run takes longer than this runs only once (the result says so). */
  readonly budgetMs?: number;
}

/** A named benchmark suite, run by `npm run bench -- <name>`. */
export interface BenchSuite {
  readonly name: string;
  readonly description: string;
  /** Runs per subject unless `--runs` says otherwise. */
  readonly defaultRuns: number;
  /** Builds the cases (may start servers); `teardown` releases what it took. */
  setup(options: {
    readonly quick: boolean;
    /** Whether a case of this metric will run (`--only`): set-up that serves no selected case can be skipped. */
    readonly wants: (metric: string) => boolean;
  }): Promise<{
    readonly cases: readonly BenchCase[];
    readonly teardown?: () => Promise<void>;
    readonly machine?: Readonly<Record<string, string | number>>;
  }>;
}

/** One line of the JSON report. `nxs` and each peer are medians over `runs`. */
export interface BenchResult {
  readonly metric: string;
  readonly unit: string;
  readonly better: "higher" | "lower";
  readonly runs: number;
  readonly nxs: number | null;
  readonly peers: Readonly<Record<string, number>>;
  /** How many times better nxs is than the best peer (> 1: nxs wins); null without peers. */
  readonly vsBestPeer: number | null;
  readonly bestPeer: string | null;
  /** Every measured value, per subject (fewer than `runs` when a subject exceeded the time budget). */
  readonly samples: Readonly<Record<string, readonly number[]>>;
  readonly note?: string;
}

/** The JSON file every benchmark writes. */
export interface BenchReport {
  readonly suite: string;
  readonly date: string;
  readonly machine: Readonly<Record<string, string | number>>;
  readonly results: readonly BenchResult[];
}
