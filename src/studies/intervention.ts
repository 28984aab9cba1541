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
 * - the word's DAAM attention map (src/attention, gathered along the DDIM inversion by default),
 *   when the model supports attention; otherwise the attention row says "unavailable".
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
import type { AttentionGathering } from "../attention/word-attention.ts";
import { conditionalInformation } from "../estimators/conditional-information.ts";
import { resolveOptions } from "../estimators/options.ts";
import { ddimBatch } from "../generation/ddim.ts";
import { Heatmap } from "../images/heatmap.ts";
import { imageSha256 } from "../images/image-identity.ts";
import type { Denoiser, ImageInput } from "../models/denoiser.ts";
import { removeWord } from "../text/prompt.ts";
import { runStudy, type StudyOptions, studyRun } from "./runner.ts";
import { contentId, imageIdPart, withContentIds } from "./content-id.ts";
import { rowSeed } from "./row-seed.ts";
import {
  describeStudy,
  estimatorOptions,
  estimatorSettings,
  optionKind,
} from "./study-description.ts";
import { type InterventionRecord, InterventionResult } from "./intervention-result.ts";

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
  /** swap the word for this one instead of removing it */
  readonly replacement?: string;
  /** which occurrence of the word (default 0: the first) */
  readonly occurrence?: number;
}

/** Options of {@link interventionStudy} and {@link interveneOne}. */
export interface InterventionStudyOptions extends StudyOptions {
  /** DDIM steps for inversion and regeneration (default 50) */
  readonly steps?: number;
  /** classifier-free guidance during inversion and regeneration (default 1: none) */
  readonly guidance?: number;
  /** text put where a removed word was (default: delete it; the reference's editing uses "_") */
  readonly placeholder?: string;
  /**
   * where attention maps come from (default: `supportsAttention`/`wordAttention` of src/attention;
   * `false`: skip). A model it does not support (the oracles) reports attention "unavailable".
   */
  readonly attention?: AttentionProvider | false;
  /** where attention is gathered (default "trajectory": DAAM over the DDIM steps) */
  readonly attentionAt?: AttentionGathering;
  /** bootstrap resamples of the correlations' errors (default 1000) */
  readonly resamples?: number;
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
  const removal = { placeholder: options.placeholder, occurrence: item.occurrence };
  const context = removeWord(item.caption, item.word, removal);
  const edited = item.replacement === undefined
    ? context
    : removeWord(item.caption, item.word, { ...removal, placeholder: item.replacement });
  const original = await model.prepare(item.image);
  const ddim = { steps: options.steps, guidance: options.guidance };
  const [noise] = await ddimBatch(
    model,
    [{ prompt: item.caption, start: original }],
    "invert",
    ddim,
  );
  const [reconstruction, editedData] = await ddimBatch(
    model,
    [
      { prompt: item.caption, start: noise },
      { prompt: edited, start: noise },
    ],
    "generate",
    ddim,
  );
  const changeMap = squaredDifferenceMap(model, reconstruction, editedData);
  // each item its own draws (from the study's seed and the item), as in the other studies
  const seed = rowSeed(options.seed ?? 0, original, `${item.caption}\n${item.word}\n${edited}`);
  const information = await conditionalInformation(
    model,
    original,
    item.caption,
    item.word,
    { ...options, ...removal, seed, onProgress: undefined },
  );
  const provider = studyAttention(options.attention);
  // DAAM's raw map: the reference's image-level attention is its sum, not a normalised map's mean
  const attention = provider?.supportsAttention(model)
    ? await provider.wordAttention(model, original, item.caption, item.word, {
      at: options.attentionAt ?? "trajectory",
      samples: options.samples,
      seed,
      steps: options.steps,
      normalize: false,
    })
    : undefined;
  const record: InterventionRecord = {
    caption: item.caption,
    word: item.word,
    edited,
    context,
    width: changeMap.width,
    height: changeMap.height,
    change: changeMap.sum(),
    information: { nats: information.estimate.nats, se: information.estimate.se },
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
  const description = await describeStudy("intervention", model, {
    ...estimatorSettings(model, resolveOptions(model, estimatorOptions(options))),
    steps: options.steps ?? 50,
    guidance: options.guidance ?? 1,
    placeholder: options.placeholder ?? null,
    attention: optionKind(options.attention, "model"),
    attentionAt: options.attentionAt ?? "trajectory",
    attentionMap: "raw",
    seeds: "per item",
  });
  const packed = studyRun(model, options);
  const run = await runStudy(
    withContentIds(items, interventionId),
    (entry) => entry.id,
    async ({ item }) => (await interveneOne(packed.model, item, options)).record,
    { ...packed.run, description },
  );
  const attentionRan = studyAttention(options.attention)?.supportsAttention(model) ?? false;
  return InterventionResult.fromRows(
    model.name,
    run.results.map(({ id, result }) => ({ id, ...result })),
    { failures: run.failures, resumed: run.resumed, total: run.total, attentionRan },
    options.resamples ?? 1000,
  );
}

/**
 * The id of an item: its `id`, or `caption | word` (plus `#occurrence`, ` -> replacement`) and a
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
  const which = item.occurrence ? `#${item.occurrence}` : "";
  return contentId(
    `${item.caption} | ${item.word}${which}${swap}`,
    imageIdPart(item.image),
    item.caption,
    item.word,
    item.replacement ?? null,
    item.occurrence ?? 0,
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
