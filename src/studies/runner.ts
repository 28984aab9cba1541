/**
 * Running a study for real: one JSON line per finished item appended to a results file as it
 * goes, resume after a crash or Ctrl-C without recomputing anything, sharding across processes
 * or GPUs, progress with rate and ETA, and bad rows reported and skipped instead of aborting.
 *
 * @module
 */
import { InfoDiffError, InvalidArgumentError, ModelLoadError } from "../errors.ts";
import type { EstimatorOptions } from "../estimators/options.ts";

/** Which part of the items this process runs: items whose position % count === index. */
export interface Shard {
  /** this shard, 0 ≤ index < count */
  readonly index: number;
  /** number of shards */
  readonly count: number;
}

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

/** Options of {@link runStudy}: where results go, which shard, progress. */
export interface RunOptions {
  /** JSON-lines file to append finished items to and resume from (none: keep in memory only) */
  readonly results?: string;
  /** run only one shard of the items */
  readonly shard?: Shard;
  /** called after every item */
  readonly onProgress?: (progress: StudyProgress) => void;
}

/**
 * What every study takes (`localizationStudy`, `relationStudy`, `interventionStudy`, `pidStudy`
 * extend it): the estimator's options, applied to every row with the row's own seed (from `seed`
 * and a hash of the row), and the runner's; `onProgress` reports rows, not draws.
 */
export interface StudyOptions extends Omit<EstimatorOptions, "onProgress">, RunOptions {}

/** A bad row: its id, what was wrong, and the error's class name. */
export interface StudyFailure {
  /** the row's id */
  readonly id: string;
  /** the error message */
  readonly error: string;
  /** the error class, e.g. "PromptError" */
  readonly kind: string;
}

/** One line of a results file. */
export type StudyRecord<R> =
  | { readonly id: string; readonly ok: true; readonly result: R }
  | ({ readonly ok: false } & StudyFailure);

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
 * Runs `work` on every item of the shard that the results file does not already hold. Errors
 * that describe a bad row (any {@link InfoDiffError} but a model that cannot load, and missing
 * files) are recorded and skipped; anything else (a bug) stops the study, with every finished
 * item already on disk.
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
  options: RunOptions = {},
): Promise<StudyRun<R>> {
  const shard = checkShard(options.shard ?? { index: 0, count: 1 });
  const mine = items.filter((_, position) => position % shard.count === shard.index);
  const ids = mine.map(idOf);
  const duplicate = ids.find((id, i) => ids.indexOf(id) !== i);
  if (duplicate !== undefined) {
    throw new InvalidArgumentError(`item id "${duplicate}" occurs twice; expected unique ids`);
  }
  const finished = options.results ? await readResults<R>(options.results) : new Map();
  const records = new Map<string, StudyRecord<R>>();
  let resumed = 0, failed = 0, computed = 0;
  const started = performance.now();
  for (const [position, item] of mine.entries()) {
    const id = ids[position];
    let record = finished.get(id) as StudyRecord<R> | undefined;
    if (record) {
      resumed++;
    } else {
      record = await attempt(id, () => work(item));
      computed++;
      if (options.results) await appendRecord(options.results, record);
    }
    if (!record.ok) failed++;
    records.set(id, record);
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
  }
  const all = ids.map((id) => records.get(id)!);
  return {
    results: all.flatMap((r) => r.ok ? [{ id: r.id, result: r.result }] : []),
    failures: all.flatMap((r) => r.ok ? [] : [{ id: r.id, error: r.error, kind: r.kind }]),
    resumed,
    total: mine.length,
  };
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
    const badRow = (error instanceof InfoDiffError && !(error instanceof ModelLoadError)) ||
      error instanceof Deno.errors.NotFound;
    if (!badRow) throw error;
    return { id, ok: false, error: (error as Error).message, kind: (error as Error).name };
  }
}

async function readResults<R>(path: string): Promise<Map<string, StudyRecord<R>>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return new Map();
    throw error;
  }
  const lines = text.split("\n");
  const records = new Map<string, StudyRecord<R>>();
  for (const [i, line] of lines.entries()) {
    if (line.trim() === "") continue;
    try {
      const record = JSON.parse(line) as StudyRecord<R>;
      if (typeof record.id === "string") records.set(record.id, record);
    } catch {
      // Only the last line can be cut short (a crash mid-write); it is recomputed. Elsewhere a
      // broken line means the file is not ours: refuse rather than silently drop results.
      if (i < lines.length - 1 && lines.slice(i + 1).some((l) => l.trim() !== "")) {
        throw new InvalidArgumentError(
          `${path}:${i + 1} is not a JSON line; expected a results file written by runStudy`,
        );
      }
      await Deno.writeTextFile(path, lines.slice(0, i).join("\n") + (i > 0 ? "\n" : ""));
    }
  }
  return records;
}

async function appendRecord<R>(path: string, record: StudyRecord<R>): Promise<void> {
  await Deno.writeTextFile(path, JSON.stringify(record) + "\n", { append: true, create: true });
}

function checkShard(shard: Shard): Shard {
  if (
    !Number.isInteger(shard.count) || shard.count < 1 || !Number.isInteger(shard.index) ||
    shard.index < 0 || shard.index >= shard.count
  ) {
    throw new InvalidArgumentError(
      `shard must have integers 0 ≤ index < count, got index=${shard.index}, count=${shard.count}`,
    );
  }
  return shard;
}
