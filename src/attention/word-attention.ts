/**
 * DAAM-style attention maps of a word (REFERENCE §10): the cross-attention probabilities of every
 * cross-attention layer, gathered over noise levels, upsampled bicubically to a common grid,
 * averaged over layers and heads and over the word's sub-tokens, at data resolution, min–max
 * normalised. The attention baseline of the localization and intervention studies, gathered where
 * the reference gathers it (Info-Decomp `scripts/eval_daam.py`, `eval_daam_itd.py`,
 * `image_edit.py`): along the regeneration of the data's inversion, or at α drawn from the
 * reference's logistic.
 *
 * @module
 */
import { InvalidArgumentError, ModelRuntimeError, PromptError } from "../errors.ts";
import { modelDrawBlocks, noisyData } from "../estimators/draws.ts";
import { type EstimatorOptions, resolveOptions } from "../estimators/options.ts";
import { ddimBatch } from "../generation/ddim.ts";
import { Heatmap } from "../images/heatmap.ts";
import type {
  AttentionLayerMap,
  CrossAttention,
  Denoiser,
  NoiseBatch,
} from "../models/denoiser.ts";
import { checkModelData, withMembers } from "../models/denoiser.ts";
import { REFERENCE_LOG_SNR } from "../numerics/log-snr.ts";
import { phraseOccurrences } from "../text/prompt.ts";
import { requireAttention, requireConceptAttention, requireConceptWords } from "./capability.ts";

/**
 * Where attention is gathered, in one frozen table: at sampled (α, ε) draws of the data
 * (`"sampled"`, the paper's "Attention+Information"), along the regeneration of the data's
 * deterministic inversion (`"regeneration"`, the paper's "Attention": `eval_daam.py` traces the
 * denoising run only), or along the inversion itself (`"inversion"`).
 *
 * @example
 * ```ts
 * import { ATTENTION_GATHERING } from "./word-attention.ts";
 * console.assert(ATTENTION_GATHERING.join() === "sampled,regeneration,inversion");
 * ```
 */
export const ATTENTION_GATHERING: readonly ["sampled", "regeneration", "inversion"] = Object
  .freeze(["sampled", "regeneration", "inversion"] as const);

/** One of {@link ATTENTION_GATHERING}. */
export type AttentionGathering = typeof ATTENTION_GATHERING[number];

/**
 * The reference's number of sampled-noise draws (`eval_daam_itd_configs.py`: `infer_step` 50).
 */
export const REFERENCE_ATTENTION_SAMPLES = 50;

/**
 * The reference's sampled-noise draws (`eval_daam_itd.py` 418–427): i.i.d. α from the logistic
 * with loc 1, scale 2, clip 3 (`logistic_integrate(npoints=steps, loc=1.0, scale=2.0, clip=3.0)`,
 * fixed, whatever the model's range), one ε each; DAAM sums the maps without weights. α beyond a
 * model's trained range is evaluated at the nearest end timestep (with a warning), as the
 * reference's `logsnr2t` does.
 *
 * @example
 * ```ts
 * import { REFERENCE_ATTENTION_DRAWS } from "./word-attention.ts";
 * console.assert(REFERENCE_ATTENTION_DRAWS.design === "iid" && REFERENCE_ATTENTION_DRAWS.logSnr?.clip === 3);
 * ```
 */
export const REFERENCE_ATTENTION_DRAWS: AttentionDrawOptions = Object.freeze({
  design: "iid",
  proposal: "logistic",
  logSnr: REFERENCE_LOG_SNR,
  drawsPerLogSnr: 1,
  allowOutsideTrainedRange: true,
});

/** The estimator options that lay out sampled-noise draws (their count and seed are given apart). */
export type AttentionDrawOptions = Omit<
  EstimatorOptions,
  "samples" | "seed" | "precision" | "batchSize" | "onProgress"
>;

/** Options of {@link wordAttention}. */
export interface WordAttentionOptions {
  /**
   * Where the attention is gathered (default `"sampled"`): at sampled (α, ε) draws of the data
   * (the data noised with ε at α, `draws`), along the DDIM regeneration of the data's DDIM
   * inversion under the prompt (`"regeneration"`: the inversion untraced, then every step of the
   * regeneration from its x_T, as `eval_daam.py`), or along the DDIM inversion (`"inversion"`).
   */
  readonly at?: AttentionGathering;
  /** number of (α, ε) draws for `"sampled"` (default 50, the reference's) */
  readonly samples?: number;
  /** seed of the draws for `"sampled"` (default 0) */
  readonly seed?: number;
  /**
   * how the `"sampled"` draws are laid out: `"reference"` (default, {@link REFERENCE_ATTENTION_DRAWS})
   * or estimator options (design, proposal, log-SNR sampling…), whose draws are then those of an
   * estimate with these options, seed and samples (on models with per-item timesteps)
   */
  readonly draws?: "reference" | AttentionDrawOptions;
  /** DDIM steps of `"regeneration"` and `"inversion"` (default 50, the reference's) */
  readonly steps?: number;
  /**
   * the run to trace for `"regeneration"` or `"inversion"`, instead of the DDIM one: called with
   * a model whose every call also gathers the attention of its items conditioned on `prompt`
   * (the intervention study passes its own Karras–Heun regeneration, so tracing costs no call)
   */
  readonly trace?: (traced: Denoiser) => Promise<unknown>;
  /** items per UNet call (default: the model's batch size) */
  readonly batchSize?: number;
  /**
   * min–max normalise the map (default true); `false` gives DAAM's raw map (the mean attention
   * probability per pixel), whose sum measures how much the word is attended, not only where
   */
  readonly normalize?: boolean;
  /**
   * which maps (default `"attention"`): the model's attention probabilities (a UNet's
   * cross-attention, a transformer's image-query × text-key joint-attention blocks), or
   * `"concept"`, a transformer's concept-attention maps (`Denoiser.conceptAttention`: per block
   * the softmax over image tokens of their attention outputs' dot products with the word's
   * tokens'), aggregated alike
   */
  readonly maps?: "attention" | "concept";
  /**
   * with `maps: "concept"`: extra concept words (ConceptAttention's concepts, e.g. `["sky",
   * "dog"]`), each encoded on its own and streamed beside the prompt without changing the image
   * stream (`CrossAttention.withConcepts`; FLUX.1). `word` may then be one of them (its own
   * concept token; a concept is looked up before the prompt's words) or a word of the prompt.
   */
  readonly concepts?: readonly string[];
}

/**
 * The attention map of a word of the prompt on the data (model data space, e.g. a VAE latent),
 * aggregated as DAAM does ({@link DaamAccumulator}): the probabilities of the word's sub-tokens (of
 * every occurrence of the word; a phrase such as "dining table": of all its words), summed over the
 * gathered model calls without weights; the mid block and 8×-coarser maps skipped; each (layer,
 * head, sub-token) map upsampled bicubically to the data grid and clamped at 0; averaged over
 * (layer, head) and then the sub-tokens; min–max normalised to [0, 1]. Upsample the result to the
 * image size bicubically, as DAAM does: `map.upsample(width, height, { method: "bicubic" })`.
 *
 * @param model a model whose backend exposes cross-attention (`loadModel` on an unfused export)
 * @param data the model data (`model.prepare(image)`), c·h·w values
 * @param prompt the prompt conditioning the UNet
 * @param word a word or phrase of the prompt (case-insensitive)
 * @throws {PromptError} when the word is not in the prompt (or was cut off by the context length)
 * @throws {InvalidArgumentError} for a model without attention (an oracle) or bad options
 * @throws {ModelLoadError} for a fused-attention export or a UNet without cross-attention
 *
 * @example
 * ```ts
 * import { wordAttention } from "./word-attention.ts";
 * import { loadModel } from "../query/load-model.ts";
 * const model = await loadModel("fixtures/models/attention-tiny", { device: "cpu" });
 * const data = new Float32Array(3 * 8 * 8);
 * const map = await wordAttention(model, data, "a red circle", "red", { samples: 4 });
 * // in this fixture "red" is attended on the right
 * console.assert(map.width === 8 && map.at(7, 4) > map.at(0, 4));
 * await model.dispose();
 * ```
 */
export async function wordAttention(
  model: Denoiser,
  data: Float32Array,
  prompt: string,
  word: string,
  options: WordAttentionOptions = {},
): Promise<Heatmap> {
  const attention = wordMaps(model, options);
  checkModelData(model.shape, data, "data (from model.prepare(image))");
  const positions = wordTokenPositions(attention, prompt, word);
  const at = checkGathering(options.at ?? "sampled");
  const maps = new DaamAccumulator(positions);
  if (at === "sampled") {
    await gatherAtSampledLogSnr(model, attention, data, prompt, options, maps);
  } else {
    const traced = tracedModel(model, attention, prompt, maps, options.batchSize);
    if (options.trace === undefined) await ddimTrajectory(model, traced, data, prompt, at, options);
    else if (typeof options.trace === "function") await options.trace(traced);
    else {
      throw new InvalidArgumentError(
        `trace must be a function running a sampler on the model it is given, got ` +
          `${typeof options.trace}`,
      );
    }
  }
  const [, height, width] = model.shape;
  return maps.heatmap(width, height, options.normalize ?? true);
}

/**
 * The estimator options of the `"sampled"` draws: the reference's ({@link REFERENCE_ATTENTION_DRAWS},
 * 50 draws) unless `draws` gives others.
 *
 * @example
 * ```ts
 * import { sampledAttentionOptions } from "./word-attention.ts";
 * const o = sampledAttentionOptions({ seed: 3 });
 * console.assert(o.samples === 50 && o.design === "iid" && o.seed === 3);
 * console.assert(sampledAttentionOptions({ draws: {}, samples: 8 }).design === undefined);
 * ```
 */
export function sampledAttentionOptions(options: WordAttentionOptions): EstimatorOptions {
  const draws = options.draws ?? "reference";
  if (draws !== "reference" && (typeof draws !== "object" || draws === null)) {
    throw new InvalidArgumentError(
      `attention draws must be "reference" or estimator options, got ${JSON.stringify(draws)}`,
    );
  }
  return {
    ...(draws === "reference" ? REFERENCE_ATTENTION_DRAWS : draws),
    samples: options.samples ?? REFERENCE_ATTENTION_SAMPLES,
    seed: options.seed,
    batchSize: options.batchSize,
  };
}

/** Evaluates the UNet at the (α, ε) draws of the data: every item gathered, without weights. */
async function gatherAtSampledLogSnr(
  model: Denoiser,
  attention: CrossAttention,
  data: Float32Array,
  prompt: string,
  options: WordAttentionOptions,
  maps: DaamAccumulator,
): Promise<void> {
  const resolved = resolveOptions(model, sampledAttentionOptions(options));
  const condition = await model.encode(prompt);
  for (const block of modelDrawBlocks(model, resolved, resolved.batchSize)) {
    const prediction = await attention.predict({
      noisy: noisyData(data, block),
      logSnr: block.logSnr,
      conditions: new Array(block.count).fill(condition),
    });
    for (const layers of prediction.layers) maps.add(layers);
  }
}

/**
 * The model seen by a traced run: each call holding an item conditioned on `prompt` goes through
 * the attention capability (one call, as `predictNoise` would make it) and gathers those items'
 * maps; other calls are the model's own.
 */
function tracedModel(
  model: Denoiser,
  attention: CrossAttention,
  prompt: string,
  maps: DaamAccumulator,
  batchSize = model.batchSize,
): Denoiser {
  return withMembers(model, {
    batchSize,
    predictNoise: async (batch: NoiseBatch): Promise<Float32Array> => {
      const traced = batch.conditions.flatMap((c, i) => c.prompt === prompt ? [i] : []);
      if (traced.length === 0) return await model.predictNoise(batch);
      const prediction = await attention.predict(batch);
      for (const i of traced) maps.add(prediction.layers[i]);
      return prediction.noise;
    },
    // the traced view never owns the model
    dispose: () => Promise.resolve(),
  }, "traced model");
}

/**
 * The DDIM run of `eval_daam.py`: the inversion of the data under the prompt, then the
 * regeneration from its x_T; `traced` runs the part that is gathered.
 */
async function ddimTrajectory(
  model: Denoiser,
  traced: Denoiser,
  data: Float32Array,
  prompt: string,
  at: "regeneration" | "inversion",
  options: WordAttentionOptions,
): Promise<void> {
  const ddim = { steps: options.steps ?? 50 };
  const invert = at === "inversion" ? traced : model;
  const [noise] = await ddimBatch(invert, [{ prompt, start: data }], "invert", ddim);
  if (at === "regeneration") {
    await ddimBatch(traced, [{ prompt, start: noise }], "generate", ddim);
  }
}

/** The capability whose maps `options` ask for: attention, concept attention, with or without words. */
function wordMaps(model: Denoiser, options: WordAttentionOptions): CrossAttention {
  const { maps = "attention", concepts } = options;
  if (maps !== "attention" && maps !== "concept") {
    throw new InvalidArgumentError(
      `unknown attention maps: ${JSON.stringify(maps)}; expected "attention" or "concept"`,
    );
  }
  if (concepts === undefined) {
    return maps === "concept" ? requireConceptAttention(model) : requireAttention(model);
  }
  if (maps !== "concept") {
    throw new InvalidArgumentError(
      `concepts are concept attention's extra words; expected maps: "concept" with them`,
    );
  }
  return requireConceptWords(model, concepts);
}

function checkGathering(at: string): AttentionGathering {
  if (!(ATTENTION_GATHERING as readonly string[]).includes(at)) {
    throw new InvalidArgumentError(
      `unknown attention gathering at: "${at}"; expected one of ${ATTENTION_GATHERING.join(", ")}`,
    );
  }
  return at as AttentionGathering;
}

/**
 * Token positions (in the padded input ids) of a word or phrase of the prompt: the sub-tokens of
 * its every occurrence, as DAAM aggregates a word (a phrase: all its words' sub-tokens). On a
 * capability with extra concept words (`attention.concepts`) a concept (case-insensitive) is its
 * own token after the prompt's, looked up before the prompt's words.
 *
 * @example
 * ```ts
 * import { wordTokenPositions } from "./word-attention.ts";
 * const attention = { wordTokens: (p: string) => p.split(" ").map((word, i) => ({ word, positions: [i + 1] })) };
 * const positions = wordTokenPositions(attention as never, "a teddy bear and a teddy bear", "teddy bear");
 * console.assert(positions.join() === "2,3,6,7");
 * ```
 */
export function wordTokenPositions(
  attention: CrossAttention,
  prompt: string,
  word: string,
): number[] {
  if (typeof prompt !== "string") {
    throw new PromptError(`prompt must be a string, got ${typeof prompt}`);
  }
  const concepts = attention.concepts ?? [];
  const concept = typeof word === "string"
    ? concepts.findIndex((c) => c.toLowerCase() === word.trim().toLowerCase())
    : -1;
  if (concept >= 0) return [attention.contextLength - concepts.length + concept];
  const words = attention.wordTokens(prompt);
  const occurrences = phraseOccurrences(prompt, word);
  if (occurrences.length === 0) {
    throw new PromptError(
      `"${word}" is not in the prompt "${prompt}"${
        concepts.length ? ` nor among the concepts ${concepts.join(", ")}` : ""
      }; expected one of its words: ${words.map((w) => w.word).join(", ") || "(no words)"}`,
    );
  }
  const positions = occurrences.flat().flatMap((index) => words[index].positions);
  if (positions.length === 0) {
    throw new PromptError(
      `"${word}" of the prompt "${prompt}" lies beyond the tokenizer's ${attention.contextLength} ` +
        `tokens and was cut off; expected a word within the context`,
    );
  }
  return [...new Set(positions)];
}

/**
 * DAAM's aggregation (castorini/daam v0.0.13, REFERENCE §12): per (layer, head, sub-token) the
 * probabilities summed over the gathered items; the mid block and maps 8× coarser than the data
 * are skipped; each kept map is upsampled bicubically to the data grid and clamped at 0 (bicubic
 * overshoots), averaged over all (layer, head) maps, then over the word's sub-tokens, and min–max
 * normalised. (The reference traces with guidance scale 1 and keeps only half of the heads, a quirk
 * of `map_[map_.size(0) // 2:]`; every head is kept here.)
 *
 * @example
 * ```ts
 * import { DaamAccumulator } from "./word-attention.ts";
 * const layer = { node: "/down_blocks.0/attn2/Softmax", heads: 1, height: 2, width: 2, tokens: 2,
 *   probs: new Float32Array([0.9, 0.1, 0.1, 0.9, 0.5, 0.5, 0.5, 0.5]) };
 * const daam = new DaamAccumulator([0]);
 * daam.add([layer]);
 * const map = daam.heatmap(2, 2);
 * console.assert(map.data[0] === 1 && map.data[1] === 0);
 * ```
 */
export class DaamAccumulator {
  readonly #positions: readonly number[];
  #layers: {
    node: string;
    sum: Float64Array;
    heads: number;
    width: number;
    height: number;
  }[] = [];
  #items = 0;

  /** @param positions the word's sub-token positions in the context */
  constructor(positions: readonly number[]) {
    this.#positions = positions;
  }

  /** Adds one item's layers (the same layers, in the same order, for every item). */
  add(layers: readonly AttentionLayerMap[]): void {
    const k = this.#positions.length;
    if (this.#items === 0) {
      this.#layers = layers.map((l) => ({
        node: l.node,
        sum: new Float64Array(l.heads * k * l.height * l.width),
        heads: l.heads,
        width: l.width,
        height: l.height,
      }));
    }
    layers.forEach((layer, l) => {
      const { sum } = this.#layers[l];
      const cells = layer.height * layer.width;
      // token-outer: each (head, sub-token) map is a contiguous run of `sum`
      for (let h = 0; h < layer.heads; h++) {
        for (let j = 0; j < k; j++) {
          const t = this.#positions[j], to = (h * k + j) * cells;
          for (let p = 0; p < cells; p++) {
            sum[to + p] += layer.probs[(h * cells + p) * layer.tokens + t];
          }
        }
      }
    });
    this.#items++;
  }

  /** The word's map on the width×height data grid, min–max normalised unless `normalize` is false. */
  heatmap(width: number, height: number, normalize = true): Heatmap {
    if (this.#items === 0) {
      throw new ModelRuntimeError(
        "no attention was gathered; expected at least one UNet evaluation",
      );
    }
    const kept = this.#layers.filter((l) =>
      !/mid_block/.test(l.node) && !(l.width * 8 <= width && l.height * 8 <= height)
    );
    if (kept.length === 0) {
      throw new ModelRuntimeError(
        `every cross-attention layer is in the mid block or 8× coarser than the ${width}×${height} ` +
          `data, which DAAM skips; no map is left`,
      );
    }
    const k = this.#positions.length;
    const total = new Float64Array(width * height);
    let maps = 0;
    for (const layer of kept) {
      const cells = layer.width * layer.height;
      for (let h = 0; h < layer.heads; h++) {
        for (let j = 0; j < k; j++) {
          const from = (h * k + j) * cells;
          const map = new Heatmap(
            layer.width,
            layer.height,
            Float32Array.from(layer.sum.subarray(from, from + cells), (v) => v / this.#items),
          );
          const atData = layer.width === width && layer.height === height
            ? map
            : map.upsample(width, height, { method: "bicubic" });
          for (let i = 0; i < total.length; i++) total[i] += Math.max(0, atData.data[i]);
        }
        maps++;
      }
    }
    // mean over (layer, head) maps, then over the word's sub-tokens
    const map = new Heatmap(width, height, Float32Array.from(total, (v) => v / (maps * k)));
    return normalize ? map.normalize() : map;
  }
}
