/**
 * Unsupervised localization (Kong et al. ICLR 2024, REFERENCE §8): for every (image, caption,
 * object word) row, the word's conditional-information map i(x; word | caption without the word),
 * upsampled bilinearly to the mask size, against the union of that category's masks.
 *
 * mIoU is reported with the paper's protocol — every map min–max normalised on its own, ONE global
 * threshold chosen as the best of 50 evenly spaced in [0.1, 0.5] (the reference's
 * `linspace(0.1, 0.5, 50)`) over the whole dataset — and at a fixed threshold
 * (default 0.4, DAAM's). Methods compared in the same table ({@link LOCALIZATION_METHODS},
 * named for what they are): `information`, `whole-image`, `attention` (DAAM along the DDIM
 * regeneration of the image's DDIM inversion: the paper's "Attention", `eval_daam.py`),
 * `attention-at-sampled-noise` (DAAM while the UNet denoises the image noised at sampled α: the
 * paper's "Attention+Information", which adds no information map; by default the reference's 50
 * α from the logistic with loc 1, scale 2, clip 3, `eval_daam_itd.py`) and, on request,
 * `infodiff-combined` (infodiff's own sum of the normalised information and sampled-noise
 * attention maps).
 * The attention methods need an {@link AttentionProvider} that supports the model (by default the
 * model's cross-attention capability, src/attention/); otherwise they are reported as unavailable,
 * never failed.
 *
 * @module
 */
import { InvalidArgumentError } from "../errors.ts";
import { type AttentionProvider, MODEL_ATTENTION, studyAttention } from "../attention/provider.ts";
import { requireConceptWords } from "../attention/capability.ts";
import {
  REFERENCE_ATTENTION_DRAWS,
  REFERENCE_ATTENTION_SAMPLES,
  type WordAttentionOptions,
} from "../attention/word-attention.ts";
import { Heatmap } from "../images/heatmap.ts";
import { imageSha256 } from "../images/image-identity.ts";
import { checkFit, type ImageFit } from "../images/load-image.ts";
import { pilNearest } from "../images/pil-resize.ts";
import type { Denoiser, ImageInput } from "../models/denoiser.ts";
import { conceptWords, phraseOccurrences, phraseWords, removePhrase } from "../text/prompt.ts";
import { PromptError } from "../errors.ts";
import { estimateContrasts } from "../estimators/contrasts.ts";
import {
  checkPositiveInteger,
  type EstimatorOptions,
  resolveOptions,
} from "../estimators/options.ts";
import { type StudyOptions, studyRun } from "./runner.ts";
import { runCalibratedStudy } from "./self-calibration.ts";
import {
  describeStudy,
  estimatorOptions,
  estimatorSettings,
  optionKind,
} from "./study-description.ts";
import { PAPER_THRESHOLDS, thresholdIous } from "./iou.ts";
import { rowSeed } from "./row-seed.ts";
import { datasetImage } from "./dataset-image.ts";
import {
  type GroundTruth,
  type LocalizationDataset,
  type LocalizationRow,
  localizationRows,
} from "./localization-rows.ts";
import {
  ATTENTION_METHODS,
  LOCALIZATION_METHODS,
  type LocalizationMaps,
  type LocalizationMethod,
  type LocalizationRecord,
  LocalizationResult,
  PAPER_LOCALIZATION_METHODS,
} from "./localization-result.ts";

/** Options of {@link localizationStudy}. */
export interface LocalizationStudyOptions extends StudyOptions {
  /** methods to compare (default: the paper's four, {@link PAPER_LOCALIZATION_METHODS}) */
  readonly methods?: readonly LocalizationMethod[];
  /** candidate global thresholds (default {@link PAPER_THRESHOLDS}: 50 from 0.1 to 0.5) */
  readonly thresholds?: readonly number[];
  /** the fixed threshold reported beside the paper's protocol (default 0.4) */
  readonly fixedThreshold?: number;
  /**
   * attention maps for the attention methods (default: the model's own cross-attention where its
   * backend exposes it; `false`, or a model without it: the methods are reported as unavailable)
   */
  readonly attention?: AttentionProvider | false;
  /**
   * DDIM steps of the inversion and of the regeneration the `attention` method is gathered along
   * (default 50, the paper's)
   */
  readonly attentionSteps?: number;
  /**
   * the draws `attention-at-sampled-noise` (and `infodiff-combined`) gather attention at:
   * `"reference"` (default, the reference's `eval_daam_itd.py`: 50 i.i.d. α from the logistic
   * with loc 1, scale 2, clip 3, one ε each, the maps summed without weights) or `"study"` (the
   * study's own draws: its samples, design, proposal and log-SNR sampling, the row's seed)
   */
  readonly attentionDraws?: AttentionDraws;
  /**
   * extra concept words for `concept-attention`, ConceptAttention's own protocol (its ImageNet
   * segmentation streams the class name and background concepts such as "background", "floor",
   * "tree"): each row streams its object and these words beside the caption (FLUX.1;
   * `wordAttention`'s `concepts`), and the object's map is its own concept token's. Default: none,
   * the object's tokens in the caption are the concept (the prompt's own tokens as concepts).
   */
  readonly concepts?: readonly string[];
  /**
   * turns a row without `data` into something `model.prepare` accepts. Default: its `image` path
   * (ONNX models load it). `"pixels"`: decode the file to CHW pixels in [−1, 1] at the model's
   * data size (for pixel-space oracles such as `shapesOracle`, whose `prepare` takes only arrays).
   */
  readonly loadImage?: "pixels" | ((row: LocalizationRow) => Promise<ImageInput> | ImageInput);
  /** keep the maps of rows computed in this run in memory (for display; not written to results) */
  readonly keepMaps?: boolean;
  /**
   * how an image (and its mask) reach the model's size: `"fill"` (default, the reference's
   * protocol: both resized to it, aspect ratio not kept; the image with Pillow's bilinear, the mask
   * with Pillow's nearest) or `"cover"` (shorter side resized, centre cropped; the mask cropped
   * with it — a mask the crop empties scores 0 for every method, and those rows are counted).
   * Images are read as stored, without EXIF rotation, as the reference's PIL reads them: COCO
   * masks are drawn on the stored pixels.
   */
  readonly fit?: ImageFit;
}

/**
 * Runs the localization study over a dataset (COCO, COCO-IT + instances, or rows) through
 * {@link runStudy}: results are appended per row, resumed, sharded; bad rows (missing image, word
 * not in the caption, category without a mask) are counted and skipped.
 *
 * Noise draws: each row's come from `seed` and a hash of the row (its data, caption, word and
 * context; {@link rowSeed}), so rows are independent samples and a row gets the same draws however
 * the dataset is stored, ordered, sharded or resumed. The row's seed is stored with its result.
 *
 * Masks are compared in the geometry the model sees. Under `fit: "fill"` (the default) the image
 * and its mask are both resized to the model's image size (the mask by Pillow's nearest
 * neighbour, as the reference), and the maps are upsampled to that size. Under `fit: "cover"` the
 * image's shorter side is resized and its centre cropped, so the mask is cropped to the same centre
 * region (in original pixels) and the maps are upsampled to that region's size.
 *
 * @example
 * ```ts
 * import { localizationStudy } from "./localization.ts";
 * import { shapesLocalizationRows } from "./localization-rows.ts";
 * import { shapesOracle } from "../query/oracles.ts";
 * import { shapesWorld } from "../datasets/shapes/world.ts";
 * const world = shapesWorld({ seed: 1, count: 6, maxObjects: 1 });
 * const result = await localizationStudy(shapesOracle(world), shapesLocalizationRows(world).slice(0, 2), {
 *   samples: 8, methods: ["information", "whole-image"],
 * });
 * console.assert(result.summary.length === 2 && result.rows.length === 2);
 * ```
 */
export async function localizationStudy(
  model: Denoiser,
  dataset: LocalizationDataset,
  options: LocalizationStudyOptions = {},
): Promise<LocalizationResult> {
  const methods = checkMethods(options.methods ?? PAPER_LOCALIZATION_METHODS);
  const attentionSteps = checkPositiveInteger("attentionSteps", options.attentionSteps ?? 50);
  const attentionDraws = checkAttentionDraws(options.attentionDraws ?? "reference");
  const fit = checkFit(options.fit ?? "fill");
  const concepts = checkStudyConcepts(options.concepts, methods);
  const candidates = checkThresholds(options.thresholds ?? PAPER_THRESHOLDS, "thresholds");
  const fixed = options.fixedThreshold ?? 0.4;
  checkThresholds([fixed], "fixedThreshold");
  const evaluated = [...new Set([...candidates, fixed])].sort((a, b) => a - b);
  const perRow = estimatorOptions(options);
  const estimator = resolveOptions(model, perRow); // validates samples, seed… early
  const attention = studyAttention(options.attention);
  const unavailable = attentionUnavailable(model, attention, methods);
  const computed = methods.filter((m) => !unavailable.has(m));
  // the model's own concept attention takes extra words only where it has a concept stream
  // (FLUX.1): refused here, before any row runs, rather than failing every row
  if (concepts && computed.includes("concept-attention") && attention === MODEL_ATTENTION) {
    requireConceptWords(model, concepts);
  }
  const maps = new Map<string, LocalizationMaps>();
  const rows = await localizationRows(dataset);
  const describe = (rowOptions: EstimatorOptions) =>
    describeStudy("localization", model, {
      ...estimatorSettings(model, resolveOptions(model, rowOptions)),
      methods,
      thresholds: candidates,
      fixedThreshold: fixed,
      unavailable: Object.fromEntries(unavailable),
      attention: optionKind(options.attention, "model"),
      attentionAt: "regeneration",
      attentionSteps,
      attentionAtSampledNoise: attentionDraws === "reference"
        ? {
          draws: "reference",
          samples: REFERENCE_ATTENTION_SAMPLES,
          ...REFERENCE_ATTENTION_DRAWS,
        }
        : { draws: "study" },
      // each row streams its object, then these
      ...(concepts ? { concepts: [...concepts] } : {}),
      fit,
      loadImage: optionKind(options.loadImage),
    });

  const packed = studyRun(model, options);
  // on a model without a profile the first rows calibrate one for the rest (self-calibration.ts)
  const run = await runCalibratedStudy({
    model,
    items: rows,
    idOf: (row) => row.id,
    estimator: perRow,
    options: { ...packed.run, calibration: options.calibration },
    describe,
    work: async (row, rowOptions) => {
      const { record, rowMaps } = await localizeRow(packed.model, row, {
        methods: computed,
        thresholds: evaluated,
        estimator: rowOptions,
        attention,
        attentionSteps,
        attentionDraws,
        concepts,
        samples: estimator.samples,
        fit,
        loadImage: options.loadImage,
      });
      if (options.keepMaps) maps.set(row.id, rowMaps);
      return record;
    },
  });

  return new LocalizationResult({
    run,
    methods,
    thresholds: candidates,
    fixedThreshold: fixed,
    unavailable,
    maps,
    samples: estimator.samples,
    model: model.name,
    fit,
  });
}

interface RowSettings {
  readonly methods: readonly LocalizationMethod[];
  readonly thresholds: readonly number[];
  readonly estimator: Omit<EstimatorOptions, "onProgress">;
  readonly attention?: AttentionProvider;
  readonly attentionSteps: number;
  readonly attentionDraws: AttentionDraws;
  /** extra concept words streamed with each row's object (`concept-attention`) */
  readonly concepts?: readonly string[];
  /** the study's draws per row (the sampled-noise attention's with `attentionDraws: "study"`) */
  readonly samples: number;
  readonly fit: ImageFit;
  readonly loadImage?: LocalizationStudyOptions["loadImage"];
}

async function localizeRow(
  model: Denoiser,
  row: LocalizationRow,
  settings: RowSettings,
): Promise<{ record: LocalizationRecord; rowMaps: LocalizationMaps }> {
  // the object may be a phrase ("dining table"); the context drops its every occurrence
  const word = phraseWords(row.word).join(" ");
  if (phraseOccurrences(row.caption, word).length === 0) {
    throw new PromptError(
      `the object "${row.word}" is not in the caption "${row.caption}"; expected a row whose ` +
        `object word or phrase occurs in its caption`,
    );
  }
  const context = row.context ?? removePhrase(row.caption, word);
  const truth = row.groundTruth();
  const target = model.imageSize ?? { width: model.shape[2], height: model.shape[1] };
  // the reference's bilinear resize of the stored pixels (utils/utils.py:111, :132)
  const input = row.data ??
    (typeof settings.loadImage === "function"
      ? await settings.loadImage(row)
      : await datasetImage(model, row.image, {
        fit: settings.fit,
        kernel: "linear",
        pixels: settings.loadImage === "pixels",
      }));
  const data = await model.prepare(input);
  // the mask in the geometry the model sees: resized with the image (fill), or cropped (cover)
  const { region, mask } = maskAsSeen(truth, model, target, settings.fit);
  // information maps bilinearly, attention maps bicubically as DAAM does, to the mask's size
  const toMask = (map: Heatmap, method: "bilinear" | "bicubic" = "bilinear") =>
    map.upsample(region.width, region.height, { method }).normalize();

  const seed = rowSeed(settings.estimator.seed ?? 0, data, `${row.caption}\n${word}\n${context}`);
  const outcome = await estimateContrasts(
    model,
    data,
    { prompts: [row.caption, context], contrasts: [{ with: 0, without: 1 }] },
    resolveOptions(model, { ...settings.estimator, seed }),
  );
  const [information] = outcome.contrasts;
  const rowMaps: { -readonly [K in keyof LocalizationMaps]: LocalizationMaps[K] } = {
    information: toMask(information.map),
    mask: new Heatmap(region.width, region.height, Float32Array.from(mask)),
  };
  const wants = (method: LocalizationMethod) => settings.methods.includes(method);
  const provider = settings.attention;
  if (provider && wants("attention")) {
    rowMaps.attention = toMask(
      await provider.wordAttention(model, data, row.caption, word, {
        at: "regeneration",
        steps: settings.attentionSteps,
      }),
      "bicubic",
    );
  }
  if (provider && (wants("attention-at-sampled-noise") || wants("infodiff-combined"))) {
    rowMaps.attentionAtSampledNoise = toMask(
      await provider.wordAttention(model, data, row.caption, word, sampledNoise(settings, seed)),
      "bicubic",
    );
  }
  if (provider && wants("concept-attention")) {
    rowMaps.conceptAttention = toMask(
      await provider.wordAttention(model, data, row.caption, word, {
        ...sampledNoise(settings, seed),
        maps: "concept",
        ...(settings.concepts ? { concepts: rowConcepts(word, settings.concepts) } : {}),
      }),
      "bicubic",
    );
  }
  if (rowMaps.attentionAtSampledNoise && wants("infodiff-combined")) {
    rowMaps.combined = rowMaps.information.add(rowMaps.attentionAtSampledNoise).normalize();
  }
  const ious: Partial<Record<LocalizationMethod, number[]>> = {};
  const mapOf: Record<Exclude<LocalizationMethod, "whole-image">, Heatmap | undefined> = {
    information: rowMaps.information,
    attention: rowMaps.attention,
    "attention-at-sampled-noise": rowMaps.attentionAtSampledNoise,
    "infodiff-combined": rowMaps.combined,
    "concept-attention": rowMaps.conceptAttention,
  };
  for (const method of settings.methods) {
    // the whole-image prediction is every pixel (an all-ones map would normalise to zeros)
    ious[method] = method === "whole-image"
      ? settings.thresholds.map(() => wholeImageIou(mask))
      : thresholdIous(mapOf[method]!, mask, settings.thresholds);
  }
  const record: LocalizationRecord = {
    image: row.image,
    caption: row.caption,
    word,
    category: row.category,
    context,
    nats: information.estimate.nats,
    se: information.estimate.se,
    seed,
    imageSha256: await imageSha256(row.data ?? row.image),
    maskArea: mask.reduce((s, v) => s + v, 0),
    truthArea: truth.mask.reduce((s, v) => s + (v ? 1 : 0), 0),
    pixels: mask.length,
    thresholds: [...settings.thresholds],
    ious,
  };
  return { record, rowMaps };
}

/** The options of the sampled-noise attention: the reference's draws, or the study's. */
function sampledNoise(settings: RowSettings, seed: number): WordAttentionOptions {
  if (settings.attentionDraws === "reference") return { at: "sampled", seed };
  const { samples: _, seed: __, precision: ___, batchSize: ____, ...draws } = settings.estimator;
  return { at: "sampled", samples: settings.samples, seed, draws };
}

/** The estimator's options without the study's progress callback (a different signature). */
function wholeImageIou(mask: Uint8Array): number {
  return mask.reduce((s, v) => s + v, 0) / mask.length;
}

interface Region {
  readonly left: number;
  readonly top: number;
  readonly width: number;
  readonly height: number;
}

/**
 * The part of the mask's image that the model sees under `fit: "cover"`: sharp's resize with a
 * centre crop keeps a centred region with the model image's aspect ratio.
 */
function visibleRegion(truth: GroundTruth, model: Denoiser): Region {
  const target = model.imageSize ?? { width: model.shape[2], height: model.shape[1] };
  const { width, height } = truth;
  const full = { left: 0, top: 0, width, height };
  const ratio = target.width / target.height;
  if (Math.abs(width / height - ratio) < 1e-9) return full;
  if (width / height > ratio) {
    const visible = Math.round(height * ratio);
    return { ...full, left: Math.floor((width - visible) / 2), width: visible };
  }
  const visible = Math.round(width / ratio);
  return { ...full, top: Math.floor((height - visible) / 2), height: visible };
}

/** The mask in the geometry the model sees, and that region of the original image. */
function maskAsSeen(
  truth: GroundTruth,
  model: Denoiser,
  target: { readonly width: number; readonly height: number },
  fit: ImageFit,
): { region: Region; mask: Uint8Array } {
  if (fit === "fill") {
    checkMaskSize(truth);
    // Pillow's NEAREST, as the reference resizes its masks (utils/utils.py:133)
    const mask = pilNearest(truth.mask, truth.width, truth.height, target.width, target.height);
    return { region: { left: 0, top: 0, ...target }, mask };
  }
  const region = visibleRegion(truth, model);
  return { region, mask: cropMask(truth, region) };
}

function checkMaskSize(truth: GroundTruth): void {
  if (truth.mask.length !== truth.width * truth.height) {
    throw new InvalidArgumentError(
      `ground-truth mask has ${truth.mask.length} values; expected width·height = ` +
        `${truth.width * truth.height}`,
    );
  }
}

function cropMask(truth: GroundTruth, region: Region): Uint8Array {
  checkMaskSize(truth);
  if (region.width === truth.width && region.height === truth.height) return truth.mask;
  const out = new Uint8Array(region.width * region.height);
  for (let y = 0; y < region.height; y++) {
    const from = (region.top + y) * truth.width + region.left;
    out.set(truth.mask.subarray(from, from + region.width), y * region.width);
  }
  return out;
}

function attentionUnavailable(
  model: Denoiser,
  provider: AttentionProvider | undefined,
  methods: readonly LocalizationMethod[],
): Map<LocalizationMethod, string> {
  const reason = !provider
    ? "unavailable: no attention provider given (options.attention)"
    : !provider.supportsAttention(model)
    ? model.attention?.unavailable ?? "unavailable for this model (no cross-attention outputs)"
    : undefined;
  const out = new Map<LocalizationMethod, string>();
  if (reason) {
    for (const m of methods) if (ATTENTION_METHODS.includes(m)) out.set(m, reason);
  }
  if (methods.includes("concept-attention")) {
    const concept = !provider
      ? "unavailable: no attention provider given (options.attention)"
      : provider.supportsConceptAttention === undefined && model.conceptAttention?.supported()
      // the model has it, the provider cannot ask for it: say which, not that the model lacks it
      ? "unavailable: the attention provider given (options.attention) has no " +
        "supportsConceptAttention; leave the option out to use the model's own (MODEL_ATTENTION)"
      : !(provider.supportsConceptAttention?.(model) ?? false)
      ? model.conceptAttention?.unavailable ??
        "unavailable for this model: concept attention compares a diffusion transformer's image " +
          "and text attention outputs (SD 3, FLUX.1), which this model does not expose"
      : undefined;
    if (concept) out.set("concept-attention", concept);
  }
  return out;
}

/** The `concepts` option, checked: words for `concept-attention`, asked for with it. */
function checkStudyConcepts(
  concepts: readonly string[] | undefined,
  methods: readonly LocalizationMethod[],
): readonly string[] | undefined {
  if (concepts === undefined) return undefined;
  if (!methods.includes("concept-attention")) {
    throw new InvalidArgumentError(
      `concepts are the extra words of the concept-attention method, which the study's methods ` +
        `(${methods.join(", ")}) do not hold; expected "concept-attention" among them`,
    );
  }
  return conceptWords(concepts);
}

/** A row's concepts: its object first, then the study's words other than it. */
function rowConcepts(object: string, concepts: readonly string[]): string[] {
  return [object, ...concepts.filter((c) => c.toLowerCase() !== object.toLowerCase())];
}

/** Where `attention-at-sampled-noise` draws its noise: the reference's law, or the study's. */
export type AttentionDraws = "reference" | "study";

function checkAttentionDraws(draws: string): AttentionDraws {
  if (draws !== "reference" && draws !== "study") {
    throw new InvalidArgumentError(
      `attentionDraws must be "reference" (the reference's 50 α from the logistic with loc 1, ` +
        `scale 2, clip 3) or "study" (the study's draws), got ${JSON.stringify(draws)}`,
    );
  }
  return draws;
}

function checkMethods(methods: readonly string[]): LocalizationMethod[] {
  if (methods.length === 0) {
    throw new InvalidArgumentError("methods is empty; expected at least one localization method");
  }
  for (const m of methods) {
    if (!(LOCALIZATION_METHODS as readonly string[]).includes(m)) {
      throw new InvalidArgumentError(
        `unknown localization method "${m}"; expected one of ${LOCALIZATION_METHODS.join(", ")}`,
      );
    }
  }
  return [...new Set(methods)] as LocalizationMethod[];
}

function checkThresholds(values: readonly number[], what: string): number[] {
  if (values.length === 0) throw new InvalidArgumentError(`${what} is empty; expected thresholds`);
  for (const t of values) {
    if (!(t > 0 && t < 1)) {
      throw new InvalidArgumentError(`${what} must lie strictly between 0 and 1, got ${t}`);
    }
  }
  return [...values];
}
