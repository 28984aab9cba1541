/**
 * Prompt intervention (Kong et al., REFERENCE §8): invert an image with its caption by
 * deterministic DDIM, regenerate it from the same x_T with one word removed (or swapped), and ask
 * whether the word's conditional information predicts how much — and where — the image changes.
 *
 * Per item:
 * - x_T = DDIM inversion of the image under its caption;
 * - reconstruction = DDIM from x_T under the unchanged caption, edited = DDIM from x_T under the
 *   caption with the word removed at word boundaries (or replaced by `replacement`); both run in
 *   the same batched calls, so a word the model ignores gives a change of exactly 0;
 * - change map = Σ over channels of (edited − reconstruction)², at data resolution (latent h×w for
 *   Stable Diffusion); the change is its sum. Comparing with the reconstruction rather than with the
 *   original image removes the inversion error from the change;
 * - the word's conditional information i(x; w | caption without w) on the original data, as a
 *   number and a map, with the same removal (`placeholder`) as the edit;
 * - the word's DAAM attention map (src/attention), traced by default inside the regeneration of
 *   the reconstruction, as the reference traces its Heun regeneration (`image_edit.py` 104–106),
 *   so it costs no model call of its own, when the model supports attention; otherwise the
 *   attention row says "unavailable".
 *
 * Across items: Pearson r between change and information, at image level (one pair per item) and
 * at pixel level. Pixel level is computed per item (r between the item's change map and its
 * information map) and then averaged over items; items whose maps are constant (a word that
 * changes nothing) have no r and are counted as excluded. REFERENCE §8 does not say how the paper
 * pools pixels; per-item averaging keeps one image's overall magnitude from dominating "where"
 * the change happens. The pooled r over all pixels of all items is reported beside it. Standard
 * errors are bootstrap standard deviations over resampled items.
 *
 * @module
 */
import { type AttentionProvider, studyAttention } from "../attention/provider.ts";
import {
  ATTENTION_GATHERING,
  type AttentionGathering,
  REFERENCE_ATTENTION_DRAWS,
  REFERENCE_ATTENTION_SAMPLES,
} from "../attention/word-attention.ts";
import { InvalidArgumentError } from "../errors.ts";
import { estimateContrasts } from "../estimators/contrasts.ts";
import { type EstimatorOptions, resolveOptions } from "../estimators/options.ts";
import { ddimBatch, type DdimRequest } from "../generation/ddim.ts";
import { heunBatch, KARRAS_HEUN_STEPS } from "../generation/karras-heun.ts";
import { flowBatch, requireFlow } from "../generation/flow-ode.ts";
import { Heatmap } from "../images/heatmap.ts";
import { imageSha256 } from "../images/image-identity.ts";
import { checkFit, type ImageFit } from "../images/load-image.ts";
import type { Denoiser, ImageInput } from "../models/denoiser.ts";
import { replacePhrase } from "../text/prompt.ts";
import { type StudyOptions, studyRun } from "./runner.ts";
import { runCalibratedStudy } from "./self-calibration.ts";
import { contentId, imageIdPart, withContentIds } from "./content-id.ts";
import { rowSeed } from "./row-seed.ts";
import { datasetImage } from "./dataset-image.ts";
import {
  describeStudy,
  estimatorOptions,
  estimatorSettings,
  optionKind,
} from "./study-description.ts";
import {
  type InterventionRecord,
  InterventionResult,
  type NatsWithError,
} from "./intervention-result.ts";

/** One intervention: an image, its caption and the word to remove or swap. */
export interface InterventionItem {
  /** a unique id (default: `caption | word`, with ` -> replacement` when swapping) */
  readonly id?: string;
  /** the image: model data, or for image models a path, PNG/JPEG bytes or a sharp instance */
  readonly image: ImageInput;
  /** the image's caption */
  readonly caption: string;
  /** the word of the caption to intervene on */
  readonly word: string;
  /** swap the word (every occurrence, and its plural) for this one instead of removing it */
  readonly replacement?: string;
}

/**
 * The ODE samplers of the intervention's inversion and regenerations: the reference's Karras–Heun,
 * DDIM, and on a flow model its own flow ODE (`flowBatch`) with Euler or Heun steps.
 */
export type InterventionSampler = "karras-heun" | "ddim" | "flow-heun" | "flow-euler";

/** Options of {@link interventionStudy} and {@link interveneOne}. */
export interface InterventionStudyOptions extends StudyOptions {
  /**
   * the ODE of the inversion and the regenerations: "karras-heun" (the reference's: Karras σ
   * schedule with ρ = 7, Heun's 2nd-order steps, `steps` levels; the default), "ddim", or on a flow
   * model its flow ODE as its pipeline schedules it, "flow-heun" (its default: Heun's steps, as the
   * reference's) or "flow-euler"
   */
  readonly sampler?: InterventionSampler;
  /**
   * levels of the sampler's schedule (default: 100 for "karras-heun" and "flow-heun", 50 for
   * "ddim" and "flow-euler")
   */
  readonly steps?: number;
  /** classifier-free guidance during inversion and regeneration (default 1: none) */
  readonly guidance?: number;
  /**
   * what every occurrence of the word and of its plural becomes in the context and the omission
   * edit (default "_", the reference's; "" deletes it)
   */
  readonly placeholder?: string;
  /**
   * where attention maps come from (default: `supportsAttention`/`wordAttention` of src/attention;
   * `false`: skip). A model it does not support (the oracles) reports attention "unavailable".
   */
  readonly attention?: AttentionProvider | false;
  /**
   * where attention is gathered: "regeneration" (default, the reference's: traced inside the
   * regeneration of the reconstruction, the calls the study makes anyway), "inversion" (inside
   * the inversion) or "sampled" (at the reference's 50 α of `wordAttention`, extra calls)
   */
  readonly attentionAt?: AttentionGathering;
  /** bootstrap resamples of the correlations' errors (default 1000) */
  readonly resamples?: number;
  /**
   * how an image (a path, bytes or a sharp instance; not model data) reaches the model's size:
   * `"fill"` (default, the reference's protocol: both sides resized with Pillow's Lanczos, aspect
   * ratio not kept) or `"cover"` (shorter side resized, centre cropped). Its pixels are read as
   * stored (no EXIF rotation, as the reference's PIL); pass `sharp(path).rotate()` to turn a photo.
   */
  readonly fit?: ImageFit;
}

/** Everything one intervention produced, including the data (for display; not stored). */
export interface InterventionCase {
  /** the compact record */
  readonly record: InterventionRecord;
  /** the original image as model data */
  readonly original: Float32Array;
  /** x_T from the inversion */
  readonly noise: Float32Array;
  /** regenerated under the unchanged caption */
  readonly reconstruction: Float32Array;
  /** regenerated under the edited caption */
  readonly edited: Float32Array;
  /** Σ_channels (edited − reconstruction)² */
  readonly changeMap: Heatmap;
  /** the word's conditional-information map */
  readonly informationMap: Heatmap;
  /** the word's attention map, if the baseline ran */
  readonly attentionMap?: Heatmap;
}

/**
 * Runs one intervention and keeps every intermediate (for notebooks and figures).
 *
 * @example
 * ```ts
 * import { interveneOne } from "./intervention.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * import { EXAMPLE_PROMPT } from "../models/example.ts";
 * const model = exampleOracle();
 * const image = model.sample(EXAMPLE_PROMPT, { seed: 1 });
 * const result = await interveneOne(model, { image, caption: EXAMPLE_PROMPT, word: "the" }, { steps: 10, samples: 8 });
 * console.assert(result.record.change === 0 && result.record.information.nats === 0);
 * ```
 */
export async function interveneOne(
  model: Denoiser,
  item: InterventionItem,
  options: InterventionStudyOptions = {},
): Promise<InterventionCase> {
  const { context, edited } = interventionPrompts(item, options.placeholder);
  const at = attentionGathering(options);
  const fit = checkFit(options.fit ?? "fill");
  const original = await model.prepare(
    await datasetImage(model, item.image, { fit, kernel: "lanczos3" }),
  );
  const sampler = regenerationSampler(model, options);
  // each item its own draws (from the study's seed and the item), as in the other studies
  const seed = rowSeed(options.seed ?? 0, original, `${item.caption}\n${item.word}\n${edited}`);
  const provider = studyAttention(options.attention);
  const traces = provider?.supportsAttention(model) ? at : undefined;
  // DAAM's raw map (the reference's image-level attention is its sum, not a normalised map's
  // mean), traced inside this item's own inversion or regeneration when asked to (`trace`)
  const wordMap = (gathering: AttentionGathering, trace?: (traced: Denoiser) => Promise<void>) =>
    provider!.wordAttention(model, original, item.caption, item.word, {
      at: gathering,
      seed,
      trace,
      normalize: false,
    });
  const run: { noise?: Float32Array; regenerated?: Float32Array[] } = {};
  const invert = async (m: Denoiser) => {
    [run.noise] = await sampler(m, [{ prompt: item.caption, start: original }], "invert");
  };
  const regenerate = async (m: Denoiser) => {
    const noise = run.noise!;
    run.regenerated = await sampler(
      m,
      [{ prompt: item.caption, start: noise }, { prompt: edited, start: noise }],
      "generate",
    );
  };
  let attention = traces === "inversion" ? await wordMap("inversion", invert) : undefined;
  // a provider that does not run the trace it is given leaves the sampler's run to the study
  if (!run.noise) await invert(model);
  if (traces === "regeneration") attention = await wordMap("regeneration", regenerate);
  if (!run.regenerated) await regenerate(model);
  const noise = run.noise!, [reconstruction, editedData] = run.regenerated!;
  const changeMap = squaredDifferenceMap(model, reconstruction, editedData);
  const information = await wordInformation(model, original, item.caption, context, {
    ...options,
    seed,
  });
  if (traces === "sampled") attention = await wordMap("sampled");
  const record: InterventionRecord = {
    caption: item.caption,
    word: item.word,
    edited,
    context,
    width: changeMap.width,
    height: changeMap.height,
    change: changeMap.sum(),
    information: information.standard,
    informationOrthogonal: information.orthogonal,
    changeMap: Array.from(changeMap.data),
    informationMap: Array.from(information.map.data),
    ...(attention ? { attentionMap: Array.from(attention.data) } : {}),
    seed,
    imageSha256: await imageSha256(item.image),
  };
  return {
    record,
    original,
    noise,
    reconstruction,
    edited: editedData,
    changeMap,
    informationMap: information.map,
    attentionMap: attention,
  };
}

/**
 * The captions of an intervention, as the reference builds them (`perform_word_swaps`): the
 * context (the condition of the information, and the edit of an omission) has every occurrence
 * of the word and of its plural replaced by the placeholder (default "_"); a swap replaces every
 * occurrence by the replacement (and the plural by the replacement + "s").
 *
 * @throws {PromptError} when neither the word nor its plural is in the caption
 *
 * @example
 * ```ts
 * import { interventionPrompts } from "./intervention.ts";
 * const p = interventionPrompts({ caption: "a dog chases two dogs", word: "dog", replacement: "cat" });
 * console.assert(p.context === "a _ chases two _" && p.edited === "a cat chases two cats");
 * console.assert(interventionPrompts({ caption: "a red dog", word: "red" }, "").edited === "a dog");
 * ```
 */
export function interventionPrompts(
  item: Pick<InterventionItem, "caption" | "word" | "replacement">,
  placeholder = "_",
): { readonly context: string; readonly edited: string } {
  if (typeof placeholder !== "string") {
    throw new InvalidArgumentError(`placeholder must be a string, got ${typeof placeholder}`);
  }
  const context = replacePhrase(item.caption, item.word, {
    replacement: placeholder,
    pluralAsSingular: true,
  });
  const edited = item.replacement === undefined
    ? context
    : replacePhrase(item.caption, item.word, { replacement: item.replacement });
  return { context, edited };
}

/**
 * i(x; w | context) from one set of draws in two forms: the standard estimator's scalar (the
 * reference's image level, `ll_ratio_pixel.sum()`) and the orthogonal one's scalar and map (its
 * pixel level). Both contrasts reduce the same model calls, so the second form costs nothing.
 */
async function wordInformation(
  model: Denoiser,
  data: Float32Array,
  caption: string,
  context: string,
  options: InterventionStudyOptions,
): Promise<{ standard: NatsWithError; orthogonal: NatsWithError; map: Heatmap }> {
  const resolved = resolveOptions(model, interventionEstimatorOptions(options));
  const { contrasts: [orthogonal, standard] } = await estimateContrasts(model, data, {
    prompts: [caption, context],
    contrasts: [
      { with: 0, without: 1, estimator: "orthogonal" },
      { with: 0, without: 1, estimator: "standard" },
    ],
  }, { ...resolved, onProgress: undefined });
  const plain = (c: typeof orthogonal) => ({ nats: c.estimate.nats, se: c.estimate.se });
  return { standard: plain(standard), orthogonal: plain(orthogonal), map: orthogonal.map };
}

/**
 * The estimator options of an intervention: the study's, with the paper's budget (2,400 draws per
 * condition, the reference's 20 α × 120 ε) as the default. The reference shares each α among 120
 * ε; infodiff draws every α afresh unless `drawsPerLogSnr` says otherwise (same estimand, lower
 * variance). An `estimator` option is refused: the two forms are fixed by the protocol.
 */
function interventionEstimatorOptions(options: InterventionStudyOptions): EstimatorOptions {
  if (options.estimator !== undefined) {
    throw new InvalidArgumentError(
      `the intervention study computes both estimator forms from the same draws (standard at ` +
        `image level, orthogonal at pixel level, as the reference); expected no estimator ` +
        `option, got "${options.estimator}"`,
    );
  }
  return { ...estimatorOptions(options), samples: options.samples ?? INTERVENTION_SAMPLES };
}

/** Where the study gathers attention (default "regeneration"), checked. */
function attentionGathering(options: InterventionStudyOptions): AttentionGathering {
  const at = options.attentionAt ?? "regeneration";
  if (!(ATTENTION_GATHERING as readonly string[]).includes(at)) {
    throw new InvalidArgumentError(
      `unknown attentionAt "${at}"; expected one of ${
        ATTENTION_GATHERING.map((g) => `"${g}"`).join(", ")
      }`,
    );
  }
  return at;
}

/** The paper's draws per condition for interventions: 20 α × 120 ε. */
export const INTERVENTION_SAMPLES = 2400;

/** The sampler of the inversion and the regenerations, from the study's options. */
function regenerationSampler(
  model: Denoiser,
  options: InterventionStudyOptions,
): (
  model: Denoiser,
  requests: readonly DdimRequest[],
  direction: "generate" | "invert",
) => Promise<Float32Array[]> {
  const sampler = samplerOf(model, options);
  const settings = { steps: samplerSteps(sampler, options), guidance: options.guidance };
  switch (sampler) {
    case "ddim":
      return (m, requests, direction) => ddimBatch(m, requests, direction, settings);
    case "karras-heun":
      return (m, requests, direction) => heunBatch(m, requests, direction, settings);
    default: {
      const solver = sampler === "flow-heun" ? "heun" : "euler";
      return (m, requests, direction) => flowBatch(m, requests, direction, { ...settings, solver });
    }
  }
}

const SAMPLERS: readonly InterventionSampler[] = ["karras-heun", "ddim", "flow-heun", "flow-euler"];

/**
 * The study's sampler: the one asked for, checked (a flow sampler needs a flow model), else
 * "flow-heun" on a flow model, else "karras-heun".
 */
function samplerOf(model: Denoiser, options: InterventionStudyOptions): InterventionSampler {
  const sampler = options.sampler ?? (model.flow ? "flow-heun" : "karras-heun");
  if (!SAMPLERS.includes(sampler)) {
    throw new InvalidArgumentError(
      `unknown sampler "${sampler}"; expected one of ${SAMPLERS.map((s) => `"${s}"`).join(", ")}`,
    );
  }
  if (sampler.startsWith("flow-")) requireFlow(model, `sampler "${sampler}"`);
  return sampler;
}

/** Levels of a sampler's schedule: the option, else 100 for the Heun samplers, 50 for the others. */
function samplerSteps(sampler: InterventionSampler, options: InterventionStudyOptions): number {
  return options.steps ?? (sampler.endsWith("heun") ? KARRAS_HEUN_STEPS : 50);
}

/**
 * The prompt-intervention study over items, through the study runner (results file, resume,
 * shards, bad rows skipped): per-item change and information, and their correlations.
 *
 * @example
 * ```ts
 * import { interventionStudy } from "./intervention.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * const model = exampleOracle();
 * const items = ["red", "left", "the"].map((word, i) => ({
 *   image: model.sample("a red circle on the left", { seed: i + 1 }), caption: "a red circle on the left", word,
 * }));
 * const result = await interventionStudy(model, items, { steps: 10, samples: 8, resamples: 50 });
 * console.assert(result.items.length === 3 && result.attention === "unavailable");
 * ```
 */
export async function interventionStudy(
  model: Denoiser,
  items: readonly InterventionItem[],
  options: InterventionStudyOptions = {},
): Promise<InterventionResult> {
  const sampler = samplerOf(model, options);
  const describe = (rowOptions: EstimatorOptions) =>
    describeStudy("intervention", model, {
      ...estimatorSettings(model, resolveOptions(model, rowOptions)),
      estimator: { image: "standard", pixel: "orthogonal" },
      sampler,
      steps: samplerSteps(sampler, options),
      guidance: options.guidance ?? 1,
      placeholder: options.placeholder ?? "_",
      removal: "every occurrence and its plural",
      fit: checkFit(options.fit ?? "fill"),
      attention: optionKind(options.attention, "model"),
      attentionAt: attentionGathering(options),
      // at sampled noise: wordAttention's default, the reference's 50 α of `eval_daam_itd.py`
      ...(attentionGathering(options) === "sampled"
        ? {
          attentionAtSampledNoise: {
            draws: "reference",
            samples: REFERENCE_ATTENTION_SAMPLES,
            ...REFERENCE_ATTENTION_DRAWS,
          },
        }
        : {}),
      attentionMap: "raw",
      seeds: "per item",
    });
  const packed = studyRun(model, options);
  // on a model without a profile the first items calibrate one for the rest (self-calibration.ts)
  const run = await runCalibratedStudy({
    model,
    items: withContentIds(items, interventionId),
    idOf: (entry) => entry.id,
    estimator: interventionEstimatorOptions(options),
    options: { ...packed.run, calibration: options.calibration },
    describe,
    work: async ({ item }, rowOptions) =>
      (await interveneOne(packed.model, item, { ...options, ...rowOptions })).record,
  });
  const attentionRan = studyAttention(options.attention)?.supportsAttention(model) ?? false;
  return InterventionResult.fromRows(
    model.name,
    run.results.map(({ id, result }) => ({ id, ...result })),
    { failures: run.failures, resumed: run.resumed, total: run.total, attentionRan },
    options.resamples ?? 1000,
  );
}

/**
 * The id of an item: its `id`, or `caption | word` (plus ` -> replacement`) and a
 * hash of the image and the text, so two items on different images never share an id.
 *
 * @example
 * ```ts
 * import { interventionId } from "./intervention.ts";
 * const id = interventionId({ image: "x.png", caption: "a red circle", word: "red" });
 * console.assert(id.startsWith("a red circle | red#"));
 * console.assert(id !== interventionId({ image: "y.png", caption: "a red circle", word: "red" }));
 * ```
 */
export function interventionId(item: InterventionItem): string {
  if (item.id !== undefined) return item.id;
  const swap = item.replacement === undefined ? "" : ` -> ${item.replacement}`;
  return contentId(
    `${item.caption} | ${item.word}${swap}`,
    imageIdPart(item.image),
    item.caption,
    item.word,
    item.replacement ?? null,
  );
}

/** Σ over channels of (a − b)² per pixel, as a data-resolution map. */
function squaredDifferenceMap(model: Denoiser, a: Float32Array, b: Float32Array): Heatmap {
  const [channels, height, width] = model.shape;
  const pixels = height * width;
  const map = new Float32Array(pixels);
  for (let c = 0; c < channels; c++) {
    for (let p = 0; p < pixels; p++) {
      const diff = a[c * pixels + p] - b[c * pixels + p];
      map[p] += diff * diff;
    }
  }
  return new Heatmap(width, height, map);
}
