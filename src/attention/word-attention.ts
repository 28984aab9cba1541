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
   * (truncated-logistic α, the data noised with ε; same seed, same draws as the estimators for
   * models with per-item timesteps), or `"trajectory"` at every step of the deterministic DDIM
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
}

/**
 * The attention map of a word of the prompt on the data (model data space, e.g. a VAE latent),
 * DAAM-style: per cross-attention layer the probabilities of the word's sub-tokens (of every
 * occurrence of the word; a phrase such as "dining table": of all its words), averaged over the
 * gathered noise levels; each layer upsampled
 * (bicubic) to the largest layer's grid, averaged over all (layer, head) pairs and the sub-tokens,
 * upsampled (bicubic) to the data resolution and min–max normalised to [0, 1]. Upsample the result
 * to the image size with `map.upsample(width, height)`.
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
  const maps = new LayerAccumulator(positions);
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
  return maps.heatmap(width, height);
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

/** Per layer: the word's attention summed over heads, sub-tokens and gathered items. */
class LayerAccumulator {
  readonly #positions: readonly number[];
  #layers: { sum: Float64Array; heads: number; width: number; height: number }[] = [];
  #items = 0;

  constructor(positions: readonly number[]) {
    this.#positions = positions;
  }

  /** Adds one item's layers. */
  add(layers: readonly AttentionLayerMap[]): void {
    if (this.#items === 0) {
      this.#layers = layers.map((l) => ({
        sum: new Float64Array(l.height * l.width),
        heads: l.heads,
        width: l.width,
        height: l.height,
      }));
    }
    layers.forEach((layer, l) => {
      const { sum } = this.#layers[l];
      const cells = layer.height * layer.width;
      for (let h = 0; h < layer.heads; h++) {
        for (let p = 0; p < cells; p++) {
          const row = (h * cells + p) * layer.tokens;
          let value = 0;
          for (const t of this.#positions) value += layer.probs[row + t];
          sum[p] += value;
        }
      }
    });
    this.#items++;
  }

  /** Mean over (layer, head) pairs, items and sub-tokens, at width×height, min–max normalised. */
  heatmap(width: number, height: number): Heatmap {
    if (this.#items === 0) {
      throw new ModelRuntimeError(
        "no attention was gathered; expected at least one UNet evaluation",
      );
    }
    const largest = this.#layers.reduce((
      a,
      b,
    ) => (b.width * b.height > a.width * a.height ? b : a));
    const total = new Float32Array(largest.width * largest.height);
    let heads = 0;
    const perItem = this.#items * this.#positions.length;
    for (const layer of this.#layers) {
      const mean = new Heatmap(
        layer.width,
        layer.height,
        Float32Array.from(layer.sum, (v) => v / perItem),
      );
      const common = layer.width === largest.width && layer.height === largest.height
        ? mean
        : mean.upsample(largest.width, largest.height, { method: "bicubic" });
      for (let i = 0; i < total.length; i++) total[i] += common.data[i];
      heads += layer.heads;
    }
    for (let i = 0; i < total.length; i++) total[i] /= heads;
    const map = new Heatmap(largest.width, largest.height, total);
    const atData = largest.width === width && largest.height === height
      ? map
      : map.upsample(width, height, { method: "bicubic" });
    return atData.normalize();
  }
}
