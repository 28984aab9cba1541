/**
 * Running a study for real: one JSON line per finished item appended to a results file as it
 * goes (after a header that records the study, its settings and the model), resume after a crash
 * or Ctrl-C without recomputing anything and never from another study's or model's file, sharding
 * across processes or GPUs, progress with rate and ETA, and bad rows reported and skipped.
 *
 * @module
 */
import {
  describeError,
  InfoDiffError,
  InvalidArgumentError,
  ModelLoadError,
  ModelRuntimeError,
  ResultsFileError,
} from "../errors.ts";
import type { EstimatorOptions } from "../estimators/options.ts";
import {
  ResultsFile,
  type Shard,
  type StudyDescription,
  type StudyFailure,
  type StudyRecord,
} from "./results-file.ts";
import { checkShard } from "./shard.ts";
import type { Denoiser } from "../models/denoiser.ts";
import { packCalls } from "../models/packed-calls.ts";

export type { Shard, StudyDescription, StudyFailure, StudyRecord } from "./results-file.ts";

/** Progress of a running study. */
export interface StudyProgress {
  /** items of this shard finished (computed now or found in the results file) */
  readonly done: number;
  /** items of this shard in all */
  readonly total: number;
  /** items found already finished in the results file */
  readonly resumed: number;
  /** bad rows skipped so far */
  readonly failed: number;
  /** items computed per second in this run */
  readonly rate: number;
  /** estimated seconds left (NaN before the first item) */
  readonly etaSeconds: number;
  /** id of the item just finished */
  readonly id: string;
}

/** Options of {@link runStudy}: where results go, which shard, progress, resume rules. */
export interface RunOptions {
  /** JSON-lines file to append finished items to and resume from (none: keep in memory only) */
  readonly results?: string;
  /** run only one shard of the items */
  readonly shard?: Shard;
  /** called after every item */
  readonly onProgress?: (progress: StudyProgress) => void;
  /**
   * `"matching"` (default): resume only from a file written by the same study with the same
   * settings and model (anything else is refused, saying what differs); `"any"`: reuse the rows of
   * such a file on purpose (a warning says what differs)
   */
  readonly reuse?: "matching" | "any";
  /** recompute rows that failed in an earlier run (default true: the data may have been fixed) */
  readonly retryFailed?: boolean;
  /**
   * rows evaluated at the same time, so that their model calls can be packed into full batches
   * (default: 4 for models that take one log-SNR per item, 1 for scalar-timestep models, whose
   * calls cannot mix noise levels). It changes no number: every row has its own draws.
   */
  readonly rowsInFlight?: number;
}

/** How a study calibrates itself (`calibration` of every study's options). */
export interface StudyCalibration {
  /** the calibration rows: the study's first N rows (default {@link CALIBRATION_ROWS}), or their ids */
  readonly rows?: number | readonly string[];
  /** the folder profiles are kept in (default: infodiff's cache folder, see `infodiffCacheDir`) */
  readonly store?: string;
  /** how long a shard other than 0 waits for shard 0's profile, in seconds (default one day) */
  readonly waitSeconds?: number;
}

/**
 * What every study takes (`localizationStudy`, `relationStudy`, `interventionStudy`, `pidStudy`
 * extend it): the estimator's options, applied to every row with the row's own seed (from `seed`
 * and a hash of the row), and the runner's; `onProgress` reports rows, not draws.
 */
export interface StudyOptions extends Omit<EstimatorOptions, "onProgress">, RunOptions {
  /**
   * on a model without a calibrated profile, the study calibrates itself from its first rows and
   * draws every other row from the fitted profile, stored for every shard and later run
   * (self-calibration.ts); `false` draws every row from the model's prior
   */
  readonly calibration?: false | StudyCalibration;
}

/**
 * The runner's part of a study's options (what `runStudy` takes), picked out of them.
 *
 * @example
 * ```ts
 * import { runOptions } from "./runner.ts";
 * console.assert(!("samples" in runOptions({ samples: 4, results: "r.jsonl" })));
 * ```
 */
export function runOptions(options: StudyOptions): RunOptions {
  const { results, shard, onProgress, reuse, retryFailed, rowsInFlight } = options;
  return { results, shard, onProgress, reuse, retryFailed, rowsInFlight };
}

/**
 * The model a study's rows use and the runner's options: with more than one row in flight
 * (`rowsInFlight`, default 4, or 1 on scalar-timestep models), the rows share a model whose
 * calls are packed up to the batch size ({@link packCalls}), so every call is as full as the
 * rows allow and no number changes.
 *
 * @example
 * ```ts
 * import { studyRun } from "./runner.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * const { run } = studyRun(exampleOracle(), { samples: 8 });
 * console.assert(run.rowsInFlight === 4);
 * ```
 */
export function studyRun(
  model: Denoiser,
  options: StudyOptions,
): { readonly model: Denoiser; readonly run: RunOptions } {
  const rowsInFlight = options.rowsInFlight ?? (model.sharedLogSnr ? 1 : 4);
  const run = { ...runOptions(options), rowsInFlight };
  checkRunOptions(run);
  const packed = rowsInFlight > 1 ? packCalls(model, options.batchSize ?? model.batchSize) : model;
  return { model: packed, run };
}

/** Outcome of {@link runStudy}: every finished item of the shard, resumed ones included. */
export interface StudyRun<R> {
  /** results of the good items, in item order */
  readonly results: readonly { readonly id: string; readonly result: R }[];
  /** bad rows, with what was wrong */
  readonly failures: readonly StudyFailure[];
  /** items found finished in the results file (not recomputed) */
  readonly resumed: number;
  /** items of this shard */
  readonly total: number;
}

/**
 * Runs `work` on every item of the shard that the results file does not already hold.
 *
 * The results file starts with a header line (format, infodiff version, the study's description:
 * settings and model identity); resuming from a file whose header differs is refused unless
 * `reuse: "any"`. The file is locked for the run (`<file>.lock`: a second writer is refused), its
 * path is checked before any work, a line cut short by a crash is removed by an atomic rewrite
 * (temporary file, fsync, rename), and a lost trailing newline is restored. Rows that failed
 * before are retried by default. Errors that describe a bad row (any {@link InfoDiffError} but a
 * model that cannot load or that computes non-finite values, and missing files) are recorded and
 * skipped; anything else stops the study, with every finished item already on disk.
 *
 * @example
 * ```ts
 * import { runStudy } from "./runner.ts";
 * const file = await Deno.makeTempFile({ suffix: ".jsonl" });
 * const first = await runStudy([1, 2, 3], (n) => `n${n}`, (n) => Promise.resolve(n * n), { results: file });
 * const again = await runStudy([1, 2, 3], (n) => `n${n}`, () => Promise.reject(new Error("not rerun")), { results: file });
 * console.assert(first.results.length === 3 && again.resumed === 3);
 * ```
 */
export async function runStudy<I, R>(
  items: readonly I[],
  idOf: (item: I) => string,
  work: (item: I) => Promise<R>,
  options: RunOptions & {
    readonly description?: StudyDescription;
    /**
     * the first `leading` items belong to shard 0 alone (a study's calibration rows), the rest are
     * dealt to the shards by position as usual
     */
    readonly leading?: number;
    /** records of items already computed before the file was opened (written if it lacks them) */
    readonly computed?: readonly StudyRecord<R>[];
  } = {},
): Promise<StudyRun<R>> {
  const shard = checkShard(options.shard ?? { index: 0, count: 1 });
  checkRunOptions(options);
  const mine = shardItems(items, shard, options.leading ?? 0);
  const ids = mine.map(idOf);
  checkUniqueIds(ids);
  const description = {
    ...(options.description ?? { study: "custom", settings: {} }),
    shard,
    items: mine.length,
  };
  const file = options.results
    ? await ResultsFile.open<R>(options.results, description, options.reuse ?? "matching")
    : undefined;
  try {
    const finished = file?.records ?? new Map<string, StudyRecord<R>>();
    const retry = options.retryFailed ?? true;
    const records = new Map<string, StudyRecord<R>>();
    let resumed = 0, failed = 0, computed = 0;
    const started = performance.now();
    const finish = (id: string, record: StudyRecord<R>, report = true) => {
      if (!record.ok) failed++;
      records.set(id, record);
      if (!report) return;
      const elapsed = (performance.now() - started) / 1000;
      const rate = computed / Math.max(elapsed, 1e-9);
      const left = mine.length - records.size;
      options.onProgress?.({
        done: records.size,
        total: mine.length,
        resumed,
        failed,
        rate,
        etaSeconds: computed > 0 ? left / rate : NaN,
        id,
      });
    };
    const todo: number[] = [];
    const computedBefore = new Map((options.computed ?? []).map((r) => [r.id, r]));
    for (const [position] of mine.entries()) {
      const id = ids[position];
      const record = finished.get(id);
      if (record && (record.ok || !retry)) {
        resumed++;
        finish(id, record);
      } else if (computedBefore.has(id)) {
        // computed before the file opened (calibration rows, reported then): kept, written now
        const before = computedBefore.get(id)!;
        computed++;
        await file?.append(before);
        finish(id, before, false);
      } else todo.push(position);
    }
    // Rows in flight share the model's calls (their items are packed by the study's model); a
    // row's record is appended as soon as it finishes, so a crash loses only rows still running.
    let next = 0, stopped: { error: unknown } | undefined;
    const worker = async () => {
      while (next < todo.length && !stopped) {
        const position = todo[next++];
        const id = ids[position];
        try {
          const record = await attempt(id, () => work(mine[position]));
          computed++;
          await file?.append(record);
          finish(id, record);
        } catch (error) {
          stopped ??= { error };
        }
      }
    };
    const inFlight = options.rowsInFlight ?? 1;
    await Promise.all(Array.from({ length: Math.min(inFlight, todo.length) }, worker));
    if (stopped) throw stopped.error;
    const all = ids.map((id) => records.get(id)!);
    return {
      results: all.flatMap((r) => r.ok ? [{ id: r.id, result: r.result }] : []),
      failures: all.flatMap((r) => r.ok ? [] : [{ id: r.id, error: r.error, kind: r.kind }]),
      resumed,
      total: mine.length,
    };
  } finally {
    await file?.close();
  }
}

/**
 * The items a shard runs: the first `leading` (a study's calibration rows) on shard 0 alone, the
 * rest dealt by position (item p to shard p mod n).
 *
 * @example
 * ```ts
 * import { shardItems } from "./runner.ts";
 * const items = ["c1", "c2", "a", "b", "c", "d", "e"];
 * console.assert(shardItems(items, { index: 0, count: 2 }, 2).join() === "c1,c2,a,c,e");
 * console.assert(shardItems(items, { index: 1, count: 2 }, 2).join() === "b,d");
 * console.assert(shardItems(items, { index: 1, count: 2 }).join() === "c2,b,d");
 * ```
 */
export function shardItems<I>(items: readonly I[], shard: Shard, leading = 0): I[] {
  return items.filter((_, position) =>
    position < leading ? shard.index === 0 : (position - leading) % shard.count === shard.index
  );
}

/**
 * A one-line progress report: `12/40 done (3 resumed, 1 bad) · 0.8 items/s · ETA 35 s`.
 *
 * @example
 * ```ts
 * import { formatProgress } from "./runner.ts";
 * const line = formatProgress({ done: 2, total: 4, resumed: 0, failed: 0, rate: 1, etaSeconds: 2, id: "a" });
 * console.assert(line.startsWith("2/4 done"));
 * ```
 */
export function formatProgress(p: StudyProgress): string {
  const eta = Number.isFinite(p.etaSeconds) ? `ETA ${Math.round(p.etaSeconds)} s` : "ETA —";
  return `${p.done}/${p.total} done (${p.resumed} resumed, ${p.failed} bad) · ${
    p.rate.toFixed(2)
  } items/s · ${eta}`;
}

async function attempt<R>(id: string, run: () => Promise<R>): Promise<StudyRecord<R>> {
  try {
    return { id, ok: true, result: await run() };
  } catch (error) {
    const modelFault = error instanceof ModelLoadError || error instanceof ModelRuntimeError ||
      error instanceof ResultsFileError;
    const badRow = (error instanceof InfoDiffError && !modelFault) ||
      error instanceof Deno.errors.NotFound;
    if (!badRow) throw error;
    // the causes too: a bad image's record keeps what libvips said, not only "could not decode"
    return { id, ok: false, error: describeError(error), kind: (error as Error).name };
  }
}

function checkRowsInFlight(rows: number): number {
  if (!Number.isInteger(rows) || rows < 1) {
    throw new InvalidArgumentError(`rowsInFlight must be a positive integer, got ${rows}`);
  }
  return rows;
}

function checkUniqueIds(ids: readonly string[]): void {
  const seen = new Set<string>();
  for (const id of ids) {
    if (seen.has(id)) {
      throw new InvalidArgumentError(`item id "${id}" occurs twice; expected unique ids`);
    }
    seen.add(id);
  }
}

function checkRunOptions(options: RunOptions): void {
  if (options.onProgress !== undefined && typeof options.onProgress !== "function") {
    throw new InvalidArgumentError(
      `onProgress must be a function, got ${typeof options.onProgress}`,
    );
  }
  if (options.reuse !== undefined && options.reuse !== "matching" && options.reuse !== "any") {
    throw new InvalidArgumentError(
      `reuse must be "matching" or "any", got ${JSON.stringify(options.reuse)}`,
    );
  }
  if (options.rowsInFlight !== undefined) checkRowsInFlight(options.rowsInFlight);
  if (options.results !== undefined && typeof options.results !== "string") {
    throw new InvalidArgumentError(`results must be a file path, got ${typeof options.results}`);
  }
}
