/**
 * DAAM-style attention maps of a word (REFERENCE §10): the cross-attention probabilities of every
 * cross-attention layer, gathered over noise levels, upsampled bicubically to a common grid,
 * averaged over layers and heads and over the word's sub-tokens, at data resolution, min–max
 * normalised. The attention baseline of the localization and intervention studies.
 *
 * @module
 */
import { InvalidArgumentError, ModelRuntimeError, PromptError } from "../errors.ts";
import { modelDrawBlocks, noisyData } from "../estimators/draws.ts";
import { resolveOptions } from "../estimators/options.ts";
import { ddimBatch } from "../generation/ddim.ts";
import { Heatmap } from "../images/heatmap.ts";
import type {
  AttentionLayerMap,
  CrossAttention,
  Denoiser,
  NoiseBatch,
} from "../models/denoiser.ts";
import { checkModelData } from "../models/denoiser.ts";
import { phraseOccurrences } from "../text/prompt.ts";
import { requireAttention } from "./capability.ts";

/**
 * Where attention is gathered, in one frozen table: at the estimators' sampled (α, ε) draws, or
 * along the DDIM inversion trajectory.
 *
 * @example
 * ```ts
 * import { ATTENTION_GATHERING } from "./word-attention.ts";
 * console.assert(ATTENTION_GATHERING.length === 2);
 * ```
 */
export const ATTENTION_GATHERING: readonly ["sampled", "trajectory"] = Object.freeze(
  ["sampled", "trajectory"] as const,
);

/** One of {@link ATTENTION_GATHERING}. */
export type AttentionGathering = typeof ATTENTION_GATHERING[number];

/** Options of {@link wordAttention}. */
export interface WordAttentionOptions {
  /**
   * Where the attention is gathered: `"sampled"` (default) at the estimators' (α, ε) draws
   * (α from the model's default proposal — its calibrated model profile, not a word's — and the
   * data noised with ε; the same draws as an estimate with that proposal, same seed, on models
   * with per-item timesteps), or `"trajectory"` at every step of the deterministic DDIM
   * inversion of the data under the prompt (DAAM's sum over denoising steps).
   */
  readonly at?: AttentionGathering;
  /** number of (α, ε) draws for `"sampled"` (default 100, as the estimators) */
  readonly samples?: number;
  /** seed of the draws for `"sampled"` (default 0) */
  readonly seed?: number;
  /** DDIM steps for `"trajectory"` (default 50) */
  readonly steps?: number;
  /** items per UNet call (default: the model's batch size) */
  readonly batchSize?: number;
  /**
   * min–max normalise the map (default true); `false` gives DAAM's raw map (the mean attention
   * probability per pixel), whose sum measures how much the word is attended, not only where
   */
  readonly normalize?: boolean;
}

/**
 * The attention map of a word of the prompt on the data (model data space, e.g. a VAE latent),
 * aggregated as DAAM does ({@link DaamAccumulator}): the probabilities of the word's sub-tokens (of
 * every occurrence of the word; a phrase such as "dining table": of all its words), summed over the
 * gathered noise levels; the mid block and 8×-coarser maps skipped; each (layer, head, sub-token)
 * map upsampled bicubically to the data grid and clamped at 0; averaged over (layer, head) and then
 * the sub-tokens; min–max normalised to [0, 1]. Upsample the result to the image size bicubically,
 * as DAAM does: `map.upsample(width, height, { method: "bicubic" })`.
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
  const attention = requireAttention(model);
  checkModelData(model.shape, data, "data (from model.prepare(image))");
  const positions = wordTokenPositions(attention, prompt, word);
  const at = options.at ?? "sampled";
  const maps = new DaamAccumulator(positions);
  const gather = async (batch: NoiseBatch): Promise<Float32Array> => {
    const prediction = await attention.predict(batch);
    for (const layers of prediction.layers) maps.add(layers);
    return prediction.noise;
  };
  if (at === "sampled") {
    await gatherAtSampledLogSnr(model, data, prompt, options, gather);
  } else if (at === "trajectory") {
    await gatherAlongInversion(model, data, prompt, options, gather);
  } else {
    throw new InvalidArgumentError(
      `unknown attention gathering at: "${at}"; expected one of ${ATTENTION_GATHERING.join(", ")}`,
    );
  }
  const [, height, width] = model.shape;
  return maps.heatmap(width, height, options.normalize ?? true);
}

/** Evaluates the UNet at the estimators' (α, ε) draws of the data. */
async function gatherAtSampledLogSnr(
  model: Denoiser,
  data: Float32Array,
  prompt: string,
  options: WordAttentionOptions,
  gather: (batch: NoiseBatch) => Promise<Float32Array>,
): Promise<void> {
  const resolved = resolveOptions(model, {
    samples: options.samples,
    seed: options.seed,
    batchSize: options.batchSize,
  });
  const condition = await model.encode(prompt);
  for (const block of modelDrawBlocks(model, resolved, resolved.batchSize)) {
    await gather({
      noisy: noisyData(data, block),
      logSnr: block.logSnr,
      conditions: new Array(block.count).fill(condition),
    });
  }
}

/** Runs the DDIM inversion of the data with a model whose every ε̂ call also gathers attention. */
async function gatherAlongInversion(
  model: Denoiser,
  data: Float32Array,
  prompt: string,
  options: WordAttentionOptions,
  gather: (batch: NoiseBatch) => Promise<Float32Array>,
): Promise<void> {
  const tapped: Denoiser = {
    name: model.name,
    shape: model.shape,
    logSnrRange: model.logSnrRange,
    batchSize: options.batchSize ?? model.batchSize,
    sharedLogSnr: model.sharedLogSnr,
    imageSize: model.imageSize,
    // the DDIM ladder follows the model's trained timesteps when it has a schedule
    schedule: model.schedule,
    snapLogSnr: model.snapLogSnr?.bind(model),
    encode: (text) => model.encode(text),
    predictNoise: gather,
    prepare: (image) => model.prepare(image),
    dispose: () => Promise.resolve(),
  };
  await ddimBatch(tapped, [{ prompt, start: data }], "invert", { steps: options.steps ?? 50 });
}

/**
 * Token positions (in the padded input ids) of a word or phrase of the prompt: the sub-tokens of
 * its every occurrence, as DAAM aggregates a word (a phrase: all its words' sub-tokens).
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
  const words = attention.wordTokens(prompt);
  const occurrences = phraseOccurrences(prompt, word);
  if (occurrences.length === 0) {
    throw new PromptError(
      `"${word}" is not in the prompt "${prompt}"; expected one of its words: ${
        words.map((w) => w.word).join(", ") || "(no words)"
      }`,
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
