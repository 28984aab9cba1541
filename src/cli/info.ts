/**
 * `infodiff info`: per-word (or total) information of an image and a prompt under a Stable
 * Diffusion ONNX export, from the command line.
 *
 * @module
 */
import { loadModel, type OnnxModel } from "../query/load-model.ts";
import type { Query } from "../query/query.ts";
import type { Device } from "../models/onnx/onnx-model.ts";
import { loadImagePixels } from "../images/load-image.ts";
import { checkOutputFolder, type MapScale, writeTokenOutputs } from "./outputs.ts";
import { progressReporter } from "./progress.ts";
import type { CommandLoadOptions } from "./command.ts";
import type { EstimatorName, PrecisionScope } from "../estimators/options.ts";
import type { PerTokenResult } from "../estimators/results.ts";

/** Options of {@link runInfo}. */
export interface InfoCommandOptions {
  /** the SD ONNX export folder */
  readonly model: string;
  /** the image file */
  readonly image: string;
  /** the prompt */
  readonly prompt: string;
  /** noise draws (default 100) */
  readonly samples?: number;
  /** seed (default 0) */
  readonly seed?: number;
  /** device (default "auto") */
  readonly device?: Device;
  /** the CUDA device (default 0) */
  readonly deviceId?: number;
  /** items per UNet call */
  readonly batchSize?: number;
  /** the estimator (default "orthogonal") */
  readonly estimator?: EstimatorName;
  /** no progress on stderr */
  readonly quiet?: boolean;
  /** run contrasts whose prompts a text encoder cuts differently (`query.allowTruncation()`) */
  readonly allowTruncation?: boolean;
  /**
   * draw in rounds until the standard errors reach `se` nats (`query.precision`): for `info`, its
   * words' (`of: "words"`: the whole prompt's total beside them keeps the SE it reached); for a
   * one-number command, that number's
   */
  readonly precision?: { readonly se: number; readonly of?: PrecisionScope };
  /** how the pipeline runs (FLUX.1-dev guidance, T5 length, SDXL unconditional, image size) */
  readonly pipeline?: CommandLoadOptions;
  /** colour scale of the maps: one for all words (default) or each its own */
  readonly scale?: MapScale;
  /** folder for the per-word PNG overlays (none: no files) */
  readonly out?: string;
  /** print JSON instead of a table */
  readonly json?: boolean;
  /** where to print (default console.log) */
  readonly log?: (line: string) => void;
}

/** What a one-image query of the command line takes. */
export type QueryRunOptions = Pick<
  InfoCommandOptions,
  | "model"
  | "image"
  | "prompt"
  | "samples"
  | "seed"
  | "estimator"
  | "device"
  | "deviceId"
  | "batchSize"
  | "quiet"
  | "allowTruncation"
  | "precision"
  | "pipeline"
>;

/**
 * Loads the model, builds the query (prompt, draws, seed, estimator, batch size — set on the query,
 * so it never changes a number — and progress on stderr), runs `body`, disposes the model.
 *
 * @example
 * ```ts ignore
 * import { withQuery } from "./info.ts";
 * const total = await withQuery({ model: "sd21-onnx", image: "cat.png", prompt: "a cat" }, (q) => q.total());
 * ```
 */
export async function withQuery<T>(
  options: QueryRunOptions,
  body: (query: Query, model: OnnxModel) => Promise<T>,
): Promise<T> {
  const model = await loadModel(options.model, {
    device: options.device ?? "auto",
    deviceId: options.deviceId,
    ...options.pipeline,
  });
  const progress = progressReporter({ unit: "draws", quiet: options.quiet });
  try {
    let query = model.info(options.image).given(options.prompt).samples(options.samples ?? 100)
      .seed(options.seed ?? 0).estimator(options.estimator ?? "orthogonal")
      .onProgress((p) => progress.update(p.done, p.total));
    if (options.batchSize !== undefined) query = query.batchSize(options.batchSize);
    if (options.allowTruncation) query = query.allowTruncation();
    if (options.precision) {
      const { se, of } = options.precision;
      query = query.precision(se, of ? { of } : {});
    }
    return await body(query, model);
  } finally {
    progress.finish();
    await model.dispose();
  }
}

/**
 * Loads the model, runs `perToken()` and prints the table (or JSON); writes overlays if `out`.
 *
 * @example
 * ```ts ignore
 * import { runInfo } from "./info.ts";
 * await runInfo({ model: "/models/sd21-onnx", image: "cat.png", prompt: "a cat on a sofa", out: "out/cat" });
 * ```
 */
export async function runInfo(options: InfoCommandOptions): Promise<void> {
  const log = options.log ?? console.log;
  if (options.out) await checkOutputFolder(options.out);
  const precision = options.precision && { ...options.precision, of: "words" as const };
  const { result, imageSize } = await withQuery(
    { ...options, precision },
    async (query, model) => ({
      result: await query.perToken(),
      imageSize: model.imageSize,
    }),
  );
  log(options.json ? JSON.stringify(scalars(result)) : result.toString());
  if (options.out) {
    // what the model saw: the image resized to cover its resolution and centre-cropped
    const { width, height } = imageSize;
    const data = await loadImagePixels(options.image, width, height);
    const files = await writeTokenOutputs(
      result,
      { data, shape: [3, height, width] },
      options.out,
      options.scale,
    );
    log(
      `wrote ${files.length} files under ${options.out}: image.png, per word an overlay, ` +
        `a bare map and maps/*.npy, grid.png, result.json`,
    );
  }
}

/** The numbers of a per-token result without its maps (maps go to files, not to the terminal). */
function scalars(result: PerTokenResult) {
  return {
    prompt: result.prompt,
    total: result.total.toJSON(),
    tokens: result.tokens.map((t) => ({
      word: t.word,
      index: t.index,
      nats: t.estimate.nats,
      se: t.estimate.se,
      ...(t.truncated ? { truncated: true } : {}),
    })),
    provenance: result.provenance,
  };
}
