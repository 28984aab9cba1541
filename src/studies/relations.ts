/**
 * Relation and attribute testing on ARO-style items (Kong et al. ICLR 2024, REFERENCE §8): the
 * chosen caption option is the one with the highest i(x; option) against the null prompt `""`.
 * All options of an item are evaluated in ONE {@link estimateContrasts} call, on the same (α, ε)
 * draws (common random numbers), so the comparison is not drowned in Monte Carlo noise.
 *
 * @module
 */
import { loadSharp } from "../images/sharp.ts";
import { InvalidImageError, PromptError } from "../errors.ts";
import type { AroItem } from "../datasets/aro.ts";
import type { Denoiser, ImageInput } from "../models/denoiser.ts";
import { estimateContrasts } from "../estimators/contrasts.ts";
import { type ResolvedOptions, resolveOptions } from "../estimators/options.ts";
import { imageSha256 } from "../images/image-identity.ts";
import { checkFit, type ImageFit, type SharpImage } from "../images/load-image.ts";
import { basename } from "node:path";
import { type StudyOptions, studyRun } from "./runner.ts";
import { runCalibratedStudy } from "./self-calibration.ts";
import { contentId, withContentIds } from "./content-id.ts";
import {
  describeStudy,
  estimatorOptions,
  estimatorSettings,
  optionKind,
} from "./study-description.ts";
import { rowSeed } from "./row-seed.ts";
import { datasetImage } from "./dataset-image.ts";
import { type RelationRecord, RelationsResult } from "./relations-result.ts";

/** Options of {@link relationStudy}. */
export interface RelationStudyOptions extends StudyOptions {
  /**
   * Turns the item's image (a path, or a sharp pipeline cropped to the bbox) into something
   * `model.prepare` accepts. Default: pass it on (ONNX models take both). `"pixels"`: decode it to
   * CHW pixels in [−1, 1] at the model's data size (for pixel-space oracles such as
   * `shapesOracle`, whose `prepare` takes only arrays).
   */
  readonly loadImage?: "pixels" | ((image: ImageInput, item: AroItem) => Promise<ImageInput>);
  /**
   * how the (cropped) image reaches the model's size: `"fill"` (default, the reference's protocol:
   * resized with Pillow's bicubic without keeping the aspect ratio, so an elongated "left of" crop
   * keeps both objects) or `"cover"` (centre crop, which can cut one of them out). The box is cut
   * from the pixels as stored (no EXIF rotation), where Visual Genome drew it, as the reference.
   */
  readonly fit?: ImageFit;
}

/**
 * Runs the relation/attribute test through {@link runStudy}: per item, i(x; option) for every
 * caption option on shared draws; an item is right when the true caption scores strictly highest
 * (a tie is wrong, as ARO's and Info-Decomp's argmax with the true caption last makes it).
 * Accuracy with a binomial standard error, overall, per kind and per group (relation name /
 * attribute pair), and ARO's macro accuracy (`macroAccuracy` in relations-result.ts) beside it.
 *
 * Estimator: the default is the orthogonal form, as the paper (REFERENCE §8). Pointwise it is not
 * log p(x | option) − log p(x): an option whose predictions differ strongly from the unconditional
 * ones scores high even when it is wrong (for exact oracles with well-separated images this
 * decides); `estimator: "standard"` ranks options by the unbiased log-likelihood ratio instead.
 *
 * Noise draws: each item's come from `seed` and a hash of the item (its data and options;
 * {@link rowSeed}), so items are independent samples and the binomial standard error holds.
 *
 * An option the model refuses to condition on (a {@link PromptError} from `model.encode`, e.g. an
 * exact oracle whose world has no image with that caption: p(x | option) = 0) scores −∞ and is
 * listed in the item's `refused`; an item whose options are all refused is a bad row.
 *
 * @example
 * ```ts
 * import { relationStudy } from "./relations.ts";
 * import { mixtureModel } from "../query/oracles.ts";
 * const model = mixtureModel({ shape: [1, 1, 2], components: [
 *   { words: ["red"], mean: [1, 0], variance: 0.05 }, { words: ["blue"], mean: [0, 1], variance: 0.05 }] });
 * const item = { image: "x", options: ["blue", "red"], trueIndex: 1, kind: "attribution", group: "colour" };
 * const result = await relationStudy(model, [item], {
 *   samples: 30, estimator: "standard", loadImage: () => Promise.resolve(new Float32Array([1, 0])),
 * });
 * console.assert(result.accuracy.correct === 1);
 * ```
 */
export async function relationStudy(
  model: Denoiser,
  items: readonly AroItem[],
  options: RelationStudyOptions = {},
): Promise<RelationsResult> {
  const perRow = estimatorOptions(options);
  const resolved = resolveOptions(model, perRow);
  const fit = checkFit(options.fit ?? "fill");
  const packed = studyRun(model, options);
  // on a model without a profile the first items calibrate one for the rest (self-calibration.ts)
  const run = await runCalibratedStudy({
    model,
    items: withContentIds(items, aroItemId),
    idOf: (entry) => entry.id,
    estimator: perRow,
    options: { ...packed.run, calibration: options.calibration },
    describe: (rowOptions) =>
      describeStudy("relations", model, {
        ...estimatorSettings(model, resolveOptions(model, rowOptions)),
        loadImage: optionKind(options.loadImage),
        fit,
      }),
    work: ({ item }, rowOptions) =>
      scoreItem(packed.model, item, options, resolveOptions(model, rowOptions)),
  });
  return new RelationsResult(run, resolved.samples, model.name);
}

/**
 * The id of an ARO item, from what it is (image, box, options, true index, kind, group): the same
 * item gets the same id wherever it sits in the list.
 *
 * @example
 * ```ts
 * import { aroItemId } from "./relations.ts";
 * const item = { image: "a.jpg", options: ["x", "y"], trueIndex: 1, kind: "relation", group: "on" };
 * console.assert(aroItemId(item) === aroItemId({ ...item }) && aroItemId(item).startsWith("a.jpg:on#"));
 * ```
 */
export function aroItemId(item: AroItem): string {
  return contentId(
    `${basename(item.image)}:${item.group}`,
    item.image,
    item.bbox ? [...item.bbox] : null,
    [...item.options],
    item.trueIndex,
    item.kind,
    item.group,
  );
}

async function scoreItem(
  model: Denoiser,
  item: AroItem,
  options: RelationStudyOptions,
  resolved: ResolvedOptions,
): Promise<RelationRecord> {
  const source = item.bbox ? await crop(item.image, item.bbox) : item.image;
  // the reference: the stored pixels' crop resized to the model's size with Pillow's bicubic,
  // aspect ratio not kept (utils/aro_datasets.py:183-195, scripts/eval_retrieval.py:62-69)
  const input = typeof options.loadImage === "function"
    ? await options.loadImage(source, item)
    : await datasetImage(model, source, {
      fit: options.fit ?? "fill",
      kernel: "cubic",
      pixels: options.loadImage === "pixels",
    });
  const data = await model.prepare(input);
  const refused: number[] = [];
  for (const [k, option] of item.options.entries()) {
    try {
      await model.encode(option);
    } catch (error) {
      if (!(error instanceof PromptError)) throw error;
      refused.push(k);
    }
  }
  const kept = item.options.flatMap((_, k) => refused.includes(k) ? [] : [k]);
  if (kept.length === 0) {
    throw new PromptError(
      `the model refuses every caption option of ${item.image}; expected at least one it can ` +
        `condition on`,
    );
  }
  const prompts = [...kept.map((k) => item.options[k]), ""];
  const seed = rowSeed(resolved.seed, data, item.options.join("\n"));
  const outcome = await estimateContrasts(
    model,
    data,
    { prompts, contrasts: kept.map((_, i) => ({ with: i, without: kept.length })) },
    { ...resolved, seed },
  );
  const nats: (number | null)[] = item.options.map(() => null);
  const se: (number | null)[] = item.options.map(() => null);
  kept.forEach((k, i) => {
    nats[k] = outcome.contrasts[i].estimate.nats;
    se[k] = outcome.contrasts[i].estimate.se;
  });
  // ties are wrong, as in ARO and Info-Decomp (argmax with the true caption last): the true
  // caption must score strictly above every other option
  const best = Math.max(...kept.map((k) => nats[k]!));
  const winners = kept.filter((k) => nats[k] === best);
  const correct = winners.length === 1 && winners[0] === item.trueIndex;
  const chosen = correct
    ? item.trueIndex
    : (winners.find((k) => k !== item.trueIndex) ?? winners[0]);
  return {
    image: item.image,
    kind: item.kind,
    group: item.group,
    options: [...item.options],
    trueIndex: item.trueIndex,
    chosen,
    correct,
    tie: winners.length > 1,
    nats,
    se,
    refused,
    seed,
    imageSha256: await imageSha256(item.image),
  };
}

/**
 * Crops an image file to a bbox [x, y, w, h]: the box is widened to whole pixels (x, y floored;
 * right and bottom edges ceiled) and must overlap the image; the part outside the image is cut off
 * (PIL, which ARO uses, pads it with black instead). A box covering the whole image is no crop.
 */
async function crop(
  path: string,
  bbox: readonly [number, number, number, number],
): Promise<string | SharpImage> {
  await Deno.stat(path); // a missing image is a NotFound: a bad row
  let meta: { width?: number; height?: number };
  try {
    meta = await (await loadSharp())(path).metadata();
  } catch (error) {
    throw new InvalidImageError(`could not read image ${path}`, { cause: error });
  }
  const width = meta.width ?? 0, height = meta.height ?? 0;
  const [x, y, w, h] = bbox;
  const left = Math.max(0, Math.floor(x)), top = Math.max(0, Math.floor(y));
  const right = Math.min(width, Math.ceil(x + w)), bottom = Math.min(height, Math.ceil(y + h));
  if (right <= left || bottom <= top) {
    throw new InvalidImageError(
      `bbox [${bbox.join(", ")}] does not overlap image ${path} (${width}×${height}); expected ` +
        `a box inside the image`,
    );
  }
  if (left === 0 && top === 0 && right === width && bottom === height) return path;
  return (await loadSharp())(path).extract({
    left,
    top,
    width: right - left,
    height: bottom - top,
  });
}
