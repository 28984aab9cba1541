/**
 * The one engine behind every estimator. It evaluates a set of prompts on the SAME (α, ε) draws of
 * one image, in as few batched model calls as the batch size allows, and reduces the noise
 * predictions on the fly into "contrasts" (the information of one condition over another: a total,
 * a word's conditional information, a PID term) and denoising errors (for the likelihood).
 *
 * @module
 */
import { ModelRuntimeError } from "../errors.ts";
import type { Condition, Denoiser } from "../models/denoiser.ts";
import { shapeSize } from "../models/denoiser.ts";
import { meanWithError } from "../numerics/statistics.ts";
import { Heatmap } from "../images/heatmap.ts";
import { drawsPerLogSnr, modelDrawBlocks, noisyData } from "./draws.ts";
import type { DrawBlock } from "./draws.ts";
import { Estimate } from "./estimate.ts";
import type { EstimatorName, ResolvedOptions } from "./options.ts";

/** i(x; with-condition) − i(x; without-condition), as indices into the plan's prompts. */
export interface Contrast {
  /** index of the richer condition (e.g. the full prompt) */
  readonly with: number;
  /** index of the poorer condition (e.g. the prompt without a word, or the null prompt) */
  readonly without: number;
  /**
   * the estimator form of this contrast (default: the options' `estimator`). Two contrasts of the
   * same pair with different forms come from the same model calls: the intervention study's
   * image-level standard and pixel-level orthogonal information, as the reference computes them.
   */
  readonly estimator?: EstimatorName;
}

/** What to evaluate: distinct prompts, and which contrasts and denoising errors to reduce. */
export interface ContrastPlan {
  /** the distinct prompts (conditions) evaluated on every draw */
  readonly prompts: readonly string[];
  /** the informations to estimate */
  readonly contrasts: readonly Contrast[];
  /** prompts (indices) whose pointwise denoising error is wanted, for the likelihood */
  readonly denoisingErrors?: readonly number[];
}

/**
 * Builds a plan from (richer, poorer) prompt pairs: each distinct prompt is evaluated once, in
 * first-seen order, and the contrasts come out in the order of the pairs.
 *
 * @example
 * ```ts
 * import { contrastPlan } from "./contrasts.ts";
 * const plan = contrastPlan([["a red circle", ""], ["a red circle", "a circle"]]);
 * console.assert(plan.prompts.length === 3 && plan.contrasts[1].without === 2);
 * ```
 */
export function contrastPlan(pairs: readonly (readonly [string, string])[]): ContrastPlan {
  const prompts: string[] = [];
  const index = (p: string) => {
    const found = prompts.indexOf(p);
    return found >= 0 ? found : prompts.push(p) - 1;
  };
  const contrasts = pairs.map(([withPrompt, withoutPrompt]) => ({
    with: index(withPrompt),
    without: index(withoutPrompt),
  }));
  return { prompts, contrasts };
}

/** How a plan's draws are cut into model calls. */
export interface CallSchedule {
  /** draws evaluated together (every condition of a draw is in the same block) */
  readonly blockSize: number;
  /** model calls in all */
  readonly calls: number;
  /** items (noisy datum × condition) in all */
  readonly items: number;
}

/**
 * The model calls a plan with `prompts` conditions costs at `samples` draws and `batchSize` items
 * per call: draws go in blocks of ⌊batchSize / prompts⌋ (at least 1) — or, on scalar-timestep
 * models, one block per group of `drawsPerLogSnr` draws sharing an α — and each block's items are
 * cut into calls of at most `batchSize`. {@link estimateContrasts} runs exactly this schedule.
 *
 * @example
 * ```ts
 * import { callSchedule } from "./contrasts.ts";
 * // 9 conditions at batch 8: one draw per block, its 9 items in 2 calls
 * const s = callSchedule(100, 9, 8);
 * console.assert(s.blockSize === 1 && s.calls === 200 && s.items === 900);
 * ```
 */
export function callSchedule(
  samples: number,
  prompts: number,
  batchSize: number,
  drawsPerLogSnr = 1,
): CallSchedule {
  // draws that share an α go in a block of their own; others fill the batch
  const blockSize = drawsPerLogSnr > 1
    ? drawsPerLogSnr
    : Math.max(1, Math.floor(batchSize / prompts));
  const full = Math.floor(samples / blockSize), rest = samples % blockSize;
  const callsPerBlock = (draws: number) => Math.ceil((draws * prompts) / batchSize);
  return {
    blockSize,
    calls: full * callsPerBlock(blockSize) + (rest > 0 ? callsPerBlock(rest) : 0),
    items: samples * prompts,
  };
}

/** One estimated contrast: the scalar, its per-pixel map (summing to it) and the per-draw values. */
export interface ContrastResult {
  /** the estimate in nats with its standard error */
  readonly estimate: Estimate;
  /** per-pixel decomposition (height × width of the data); sums to the estimate */
  readonly map: Heatmap;
  /** ½·w·Σ(differences) of each draw; their mean is the estimate */
  readonly perDraw: Float64Array;
}

/** Result of {@link estimateContrasts}. */
export interface ContrastOutcome {
  /** one result per contrast of the plan, in order */
  readonly contrasts: ContrastResult[];
  /** ½∫(mmse(α) − d·σ(α))dα for each requested prompt (add d/2·log 2πe for −log p) */
  readonly denoisingErrors: Estimate[];
  /** time spent inside model.predictNoise and in all, in milliseconds */
  readonly timing: {
    readonly modelMs: number;
    readonly totalMs: number;
    readonly modelCalls: number;
  };
}

/**
 * Runs a contrast plan on one datum.
 *
 * @example
 * ```ts
 * import { mixtureModel } from "../query/oracles.ts";
 * import { resolveOptions } from "./options.ts";
 * import { estimateContrasts } from "./contrasts.ts";
 * const model = mixtureModel({ shape: [1, 1, 2], components: [
 *   { words: ["red"], mean: [1, 0], variance: 0.2 }, { words: ["blue"], mean: [0, 1], variance: 0.2 }] });
 * const x = model.sample("red", { seed: 1 });
 * const out = await estimateContrasts(model, x, { prompts: ["red", ""], contrasts: [{ with: 0, without: 1 }] },
 *   resolveOptions(model, { samples: 20 }));
 * console.assert(out.contrasts[0].estimate.nats > 0);
 * ```
 */
export async function estimateContrasts(
  model: Denoiser,
  data: Float32Array,
  plan: ContrastPlan,
  options: ResolvedOptions,
): Promise<ContrastOutcome> {
  const started = performance.now();
  const [channels, height, width] = model.shape;
  const d = shapeSize(model.shape), pixels = height * width;
  const conditions = await Promise.all(plan.prompts.map((p) => model.encode(p)));
  const K = conditions.length;
  const group = drawsPerLogSnr(model, options, K);
  const { blockSize } = callSchedule(options.samples, K, options.batchSize, group);
  const n = options.samples;
  const reduction = {
    perDraw: plan.contrasts.map(() => new Float64Array(n)),
    maps: plan.contrasts.map(() => new Float64Array(pixels)),
    errors: (plan.denoisingErrors ?? []).map(() => new Float64Array(n)),
  };
  const timing = { modelMs: 0, modelCalls: 0 };
  const blockOf = new Int32Array(n);

  for (const block of modelDrawBlocks(model, options, blockSize, K)) {
    const predictions = await predictBlock(
      model,
      data,
      block,
      conditions,
      options.batchSize,
      timing,
    );
    for (let i = 0; i < block.count; i++) {
      const draw = block.start + i;
      blockOf[draw] = Math.floor(draw / group);
      const noise = block.noise.subarray(i * d, (i + 1) * d);
      const at = (k: number) => predictions.item(i * K + k);
      const half = 0.5 * block.weight[i];
      plan.contrasts.forEach((c, index) => {
        const total = reduceContrast(
          c.estimator ?? options.estimator,
          at(c.with),
          at(c.without),
          noise,
          channels,
          pixels,
          reduction.maps[index],
          half / n,
        );
        reduction.perDraw[index][draw] = half * total;
      });
      (plan.denoisingErrors ?? []).forEach((k, index) => {
        const s = 1 / (1 + Math.exp(-block.logSnr[i]));
        // E‖ε‖² = d exactly, so σ(α)·‖ε‖² can replace d·σ(α): same expectation, but it cancels
        // the χ² noise of ‖ε − ε̂‖² where ε̂ ≈ 0 or ε̂ ≈ ε, i.e. where the weights are largest.
        reduction.errors[index][draw] = half *
          (squaredError(noise, at(k)) - s * squaredNorm(noise));
      });
    }
    options.onProgress?.({ done: block.start + block.count, total: n });
  }

  const summarise = (values: Float64Array) => {
    checkFinite(values);
    const { mean } = meanWithError(values);
    return new Estimate(mean, standardError(values, group > 1 ? blockOf : undefined), n);
  };
  return {
    contrasts: plan.contrasts.map((_, index) => ({
      estimate: summarise(reduction.perDraw[index]),
      map: new Heatmap(width, height, Float32Array.from(reduction.maps[index])),
      perDraw: reduction.perDraw[index],
    })),
    denoisingErrors: reduction.errors.map(summarise),
    timing: { ...timing, totalMs: performance.now() - started },
  };
}

/**
 * Evaluates every condition on every draw of a block, in calls of at most `batchSize` items, and
 * gives access to the prediction of item `draw · K + condition`.
 */
async function predictBlock(
  model: Denoiser,
  data: Float32Array,
  block: DrawBlock,
  conditions: readonly Condition[],
  batchSize: number,
  timing: { modelMs: number; modelCalls: number },
): Promise<{ item(index: number): Float32Array }> {
  const d = data.length, K = conditions.length, items = block.count * K;
  const noisy = noisyData(data, block);
  const outputs: Float32Array[] = []; // one per call; items are read in place, not copied out
  for (let first = 0; first < items; first += batchSize) {
    const size = Math.min(batchSize, items - first);
    const batchNoisy = new Float32Array(size * d);
    const logSnr = new Float64Array(size);
    const batchConditions: Condition[] = [];
    for (let item = 0; item < size; item++) {
      const draw = Math.floor((first + item) / K), k = (first + item) % K;
      batchNoisy.set(noisy.subarray(draw * d, (draw + 1) * d), item * d);
      logSnr[item] = block.logSnr[draw];
      batchConditions.push(conditions[k]);
    }
    const t0 = performance.now();
    const out = await model.predictNoise({
      noisy: batchNoisy,
      logSnr,
      conditions: batchConditions,
    });
    timing.modelMs += performance.now() - t0;
    timing.modelCalls++;
    if (out.length !== size * d) {
      throw new ModelRuntimeError(
        `${model.name}: predictNoise returned ${out.length} values for ${size} items, expected ${
          size * d
        }`,
      );
    }
    outputs.push(out);
  }
  return {
    item(index: number): Float32Array {
      const call = Math.floor(index / batchSize), offset = (index - call * batchSize) * d;
      return outputs[call].subarray(offset, offset + d);
    },
  };
}

/**
 * Σ over the datum of the contrast's squared differences, adding `mapScale`·(per-pixel sum over
 * channels) into `map`. Orthogonal: ‖ε̂_with − ε̂_without‖². Standard: ‖ε − ε̂_without‖² − ‖ε − ε̂_with‖².
 */
function reduceContrast(
  estimator: EstimatorName,
  withPrediction: Float32Array,
  withoutPrediction: Float32Array,
  noise: Float32Array,
  channels: number,
  pixels: number,
  map: Float64Array,
  mapScale: number,
): number {
  // Channel-outer loops keep every access contiguous; `scratch` collects the per-pixel sums.
  const scratch = pixelScratch(pixels);
  if (estimator === "orthogonal") {
    for (let c = 0, base = 0; c < channels; c++, base += pixels) {
      for (let p = 0; p < pixels; p++) {
        const diff = withPrediction[base + p] - withoutPrediction[base + p];
        scratch[p] += diff * diff;
      }
    }
  } else {
    for (let c = 0, base = 0; c < channels; c++, base += pixels) {
      for (let p = 0; p < pixels; p++) {
        const j = base + p;
        const a = noise[j] - withoutPrediction[j], b = noise[j] - withPrediction[j];
        scratch[p] += a * a - b * b;
      }
    }
  }
  let total = 0;
  for (let p = 0; p < pixels; p++) {
    total += scratch[p];
    map[p] += mapScale * scratch[p];
  }
  return total;
}

let scratchBuffer = new Float64Array(0);

/** A zeroed per-pixel buffer, reused across calls (the reduction runs once per draw and contrast). */
function pixelScratch(pixels: number): Float64Array {
  if (scratchBuffer.length < pixels) scratchBuffer = new Float64Array(pixels);
  const view = scratchBuffer.subarray(0, pixels);
  view.fill(0);
  return view;
}

function squaredNorm(values: Float32Array): number {
  let sum = 0;
  for (let j = 0; j < values.length; j++) sum += values[j] * values[j];
  return sum;
}

function squaredError(noise: Float32Array, prediction: Float32Array): number {
  let sum = 0;
  for (let j = 0; j < noise.length; j++) sum += (noise[j] - prediction[j]) ** 2;
  return sum;
}

/** Standard error of the mean; draws that share an α (same block) are averaged into one unit first. */
function standardError(values: Float64Array, groups?: Int32Array): number {
  if (!groups) return meanWithError(values).se;
  const sums = new Map<number, { sum: number; count: number }>();
  values.forEach((v, i) => {
    const g = sums.get(groups[i]) ?? { sum: 0, count: 0 };
    g.sum += v;
    g.count++;
    sums.set(groups[i], g);
  });
  if (sums.size < 2) return NaN;
  return meanWithError([...sums.values()].map((g) => g.sum / g.count)).se;
}

function checkFinite(values: Float64Array): void {
  const bad = values.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) {
    throw new ModelRuntimeError(
      `estimate of draw ${bad} is ${values[bad]}: the model's noise prediction was not finite`,
    );
  }
}
