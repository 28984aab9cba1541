/**
 * A PID study over many rows (e.g. occupations × gender words): one decomposition per row, run
 * through the study runner, summarised as a table.
 *
 * @module
 */
import type { Denoiser, ImageInput } from "../models/denoiser.ts";
import { partialInformation, pidEstimatorOptions } from "../estimators/pid.ts";
import type { PidOptions, PidResult } from "../estimators/pid.ts";
import { studyRun } from "./runner.ts";
import { runCalibratedStudy } from "./self-calibration.ts";
import { contentId, imageIdPart, withContentIds } from "./content-id.ts";
import { describeStudy, estimatorOptions, estimatorSettings } from "./study-description.ts";
import { resolveOptions } from "../estimators/options.ts";
import type { StudyOptions } from "./runner.ts";
import { PidStudyResult, type PidStudyRow } from "./pid-study-result.ts";
import { rowSeed } from "./row-seed.ts";
import { imageSha256 } from "../images/image-identity.ts";

/** One row of a PID study. */
export interface PidRow {
  /** unique id (default `prompt|wordA|wordB`) */
  readonly id?: string;
  /** the image (whatever the model's `prepare` accepts) */
  readonly image: ImageInput;
  /** the prompt */
  readonly prompt: string;
  /** first word */
  readonly wordA: string;
  /** second word */
  readonly wordB: string;
}

/**
 * Options of {@link pidStudy}: the study options shared by every study (each row gets its own
 * draws, seeded from `seed` and the row's data and text) and the decomposition's.
 */
export interface PidStudyOptions
  extends StudyOptions, Pick<PidOptions, "redundancy" | "resamples"> {}

/**
 * Runs the decomposition for every row (results appended to `options.results`, resumable,
 * shardable); bad rows (word not in the prompt, unreadable image) are skipped and reported.
 *
 * @example
 * ```ts
 * import { mixtureModel } from "../query/oracles.ts";
 * import { pidStudy } from "./pid-study.ts";
 * const model = mixtureModel({ shape: [1, 1, 2], components: [
 *   { words: ["red", "thing"], mean: [1, 0], variance: 0.2 }, { words: ["blue", "thing"], mean: [0, 1], variance: 0.2 }] });
 * const image = model.sample("red", { seed: 1 });
 * const study = await pidStudy(model, [{ image, prompt: "a red thing", wordA: "red", wordB: "thing" }], { samples: 20 });
 * console.assert(study.rows.length === 1);
 * ```
 */
export async function pidStudy(
  model: Denoiser,
  rows: readonly PidRow[],
  options: PidStudyOptions = {},
): Promise<PidStudyResult> {
  const pidOptions = pidEstimatorOptions({
    ...estimatorOptions(options),
    redundancy: options.redundancy,
    resamples: options.resamples,
  });
  const packed = studyRun(model, options);
  // on a model without a profile the first rows calibrate one for the rest (self-calibration.ts)
  const run = await runCalibratedStudy({
    model,
    items: withContentIds(rows, pidRowId),
    idOf: (entry) => entry.id,
    estimator: pidOptions,
    options: { ...packed.run, calibration: options.calibration },
    describe: (rowOptions) =>
      describeStudy("pid", model, {
        ...estimatorSettings(model, resolveOptions(model, rowOptions)),
        redundancy: options.redundancy ?? "minimum",
        resamples: options.resamples ?? 500,
      }),
    work: async ({ item: row, id }, rowOptions) => {
      const data = await packed.model.prepare(row.image);
      // Independent draws per row: one shared heavy draw would move every row the same way.
      const seed = rowSeed(options.seed ?? 0, data, `${row.prompt}|${row.wordA}|${row.wordB}`);
      const result = await partialInformation(
        packed.model,
        data,
        row.prompt,
        row.wordA,
        row.wordB,
        {
          ...pidOptions,
          ...rowOptions,
          seed,
        },
      );
      return {
        ...summariseRow(id, result),
        imageSha256: await imageSha256(row.image),
      };
    },
  });
  return new PidStudyResult(run.results.map((r) => r.result), run.failures);
}

/**
 * The id of a PID row: its `id`, or `prompt|wordA|wordB` and a hash of the image and the text.
 *
 * @example
 * ```ts
 * import { pidRowId } from "./pid-study.ts";
 * const row = { image: "a.png", prompt: "a red circle", wordA: "red", wordB: "circle" };
 * console.assert(pidRowId(row).startsWith("a red circle|red|circle#"));
 * console.assert(pidRowId(row) !== pidRowId({ ...row, image: "b.png" }));
 * ```
 */
export function pidRowId(row: PidRow): string {
  return row.id ??
    contentId(
      `${row.prompt}|${row.wordA}|${row.wordB}`,
      imageIdPart(row.image),
      row.prompt,
      row.wordA,
      row.wordB,
    );
}

function summariseRow(id: string, result: PidResult): PidStudyRow {
  const form = (f: "plain" | "conditional") =>
    Object.fromEntries(
      result.rows().filter((r) => r.form === f).map((r) => [
        r.term,
        { nats: r.nats, se: r.se, biasCorrected: r.biasCorrected, pixelTotal: r.pixelTotal },
      ]),
    );
  return {
    id,
    prompt: result.prompt,
    wordA: result.wordA,
    wordB: result.wordB,
    plain: form("plain"),
    conditional: form("conditional"),
  };
}
