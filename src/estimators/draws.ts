/**
 * Common random numbers: the (α, ε) draws that every condition of one image is evaluated on.
 * Using the same draws for the conditions being compared is what keeps their differences from
 * drowning in noise (REFERENCE §2).
 *
 * @module
 */
import type { LogSnrSampling } from "../numerics/log-snr.ts";
import type { Denoiser } from "../models/denoiser.ts";
import { proposalFor, type ResolvedProposal } from "../numerics/proposal.ts";
import { Random } from "../numerics/random.ts";
import { sigmoid } from "../numerics/log-snr.ts";

/** A block of consecutive draws, evaluated together. */
export interface DrawBlock {
  /** index of the first draw of the block */
  readonly start: number;
  /** number of draws in the block */
  readonly count: number;
  /** α of each draw, already snapped to the model's timesteps */
  readonly logSnr: Float64Array;
  /** importance weight 1/q(α) of each draw */
  readonly weight: Float64Array;
  /** ε of each draw, draw-major (`count · d` values) */
  readonly noise: Float32Array;
}

/**
 * How the (α, ε) draws are laid out (issue 15). Every design estimates the same integral; they
 * differ in variance per model call:
 * - "iid": every α from the truncated logistic, every ε ~ N(0, I), independently;
 * - "stratified": the G α values (one per group of draws sharing an α) one in each quantile
 *   stratum [k/G, (k+1)/G) of the same truncated logistic, each at a uniform point of its stratum;
 * - "antithetic": draws in pairs sharing α, the second with −ε;
 * - "stratified-antithetic" (default): both;
 * - "reference": the reference's own scheme — "iid" from the logistic with loc 1, scale 2, clip 4
 *   by default (its localization and ARO call `logistic_integrate` without `clip`:
 *   `REFERENCE_UNCLIPPED_LOG_SNR`, α ∈ [−7, 9]); α beyond the trained range is evaluated at the
 *   nearest end timestep, with a warning.
 */
export const DRAW_DESIGNS: readonly [
  "stratified-antithetic",
  "stratified",
  "antithetic",
  "iid",
  "reference",
] = Object.freeze(
  ["stratified-antithetic", "stratified", "antithetic", "iid", "reference"] as const,
);

/** One of {@link DRAW_DESIGNS}. */
export type DrawDesign = typeof DRAW_DESIGNS[number];

/**
 * The default design, on the logistic and on a fitted proposal alike (the lowest variance measured
 * on both; docs/performance.md, "Variance per model call"): stratified α with antithetic ε pairs.
 */
export const DEFAULT_DRAW_DESIGN: DrawDesign = "stratified-antithetic";

/**
 * Whether a design puts one α in each quantile stratum.
 *
 * @example
 * ```ts
 * import { isStratified } from "./draws.ts";
 * console.assert(isStratified("stratified-antithetic") && !isStratified("antithetic"));
 * ```
 */
export function isStratified(design: DrawDesign | undefined): boolean {
  return design === "stratified" || design === "stratified-antithetic";
}

/**
 * Whether a design pairs each ε with −ε at the same α.
 *
 * @example
 * ```ts
 * import { isAntithetic } from "./draws.ts";
 * console.assert(isAntithetic("stratified-antithetic") && !isAntithetic("stratified"));
 * ```
 */
export function isAntithetic(design: DrawDesign | undefined): boolean {
  return design === "antithetic" || design === "stratified-antithetic";
}

/** How to cut the draws into blocks. */
export interface DrawPlan {
  /** total number of draws */
  readonly samples: number;
  /** seed of the draws */
  readonly seed: number;
  /** log-SNR sampling */
  readonly logSnr: LogSnrSampling;
  /** values per draw (c·h·w) */
  readonly size: number;
  /** draws per block */
  readonly blockSize: number;
  /** consecutive draws that share one α (1: every draw its own; >1: scalar-timestep models) */
  readonly drawsPerLogSnr: number;
  /** the layout of the draws (default "iid") */
  readonly design?: DrawDesign;
  /** where α comes from (default: the truncated logistic of `logSnr`) */
  readonly proposal?: ResolvedProposal;
  /** the model's timestep snapping, if any */
  readonly snap?: (logSnr: number) => number;
}

/**
 * Yields the draws in blocks. α and ε come from two separate streams of the seed, and draws
 * share α in fixed groups of `drawsPerLogSnr`, so the numbers never depend on the block size.
 * Stratified designs give group g the stratum g of G = ⌈samples / drawsPerLogSnr⌉; antithetic
 * designs negate the ε of every even draw of a group for the odd draw after it.
 *
 * @example
 * ```ts
 * import { drawBlocks } from "./draws.ts";
 * const plan = { samples: 5, seed: 1, logSnr: { loc: 1, scale: 2, clip: 3 }, size: 4, blockSize: 2, drawsPerLogSnr: 1 };
 * const blocks = [...drawBlocks(plan)];
 * console.assert(blocks.length === 3 && blocks[2].count === 1);
 * const pairs = [...drawBlocks({ ...plan, samples: 4, drawsPerLogSnr: 2, design: "antithetic" })];
 * console.assert(pairs[0].noise[4] === -pairs[0].noise[0] && pairs[0].logSnr[1] === pairs[0].logSnr[0]);
 * ```
 */
export function* drawBlocks(plan: DrawPlan): Generator<DrawBlock> {
  const design = plan.design ?? "iid";
  const root = new Random(plan.seed);
  const alphas = root.fork(), noises = root.fork();
  const group = plan.drawsPerLogSnr;
  const strata = Math.ceil(plan.samples / group);
  const stratified = isStratified(design), antithetic = isAntithetic(design);
  const proposal = proposalFor(plan.logSnr, plan.proposal);
  let current = { logSnr: NaN, weight: NaN };
  const previous = new Float32Array(plan.size); // the last draw's ε, for its antithetic partner
  for (let start = 0; start < plan.samples; start += plan.blockSize) {
    const count = Math.min(plan.blockSize, plan.samples - start);
    const logSnr = new Float64Array(count), weight = new Float64Array(count);
    const noise = new Float32Array(count * plan.size);
    for (let i = 0; i < count; i++) {
      const draw = start + i, within = draw % group;
      if (within === 0) {
        const p = stratified
          ? (Math.floor(draw / group) + alphas.uniform()) / strata
          : alphas.uniform();
        const at = proposal.at(p);
        current = { logSnr: plan.snap ? plan.snap(at.logSnr) : at.logSnr, weight: at.weight };
      }
      logSnr[i] = current.logSnr;
      weight[i] = current.weight;
      const target = noise.subarray(i * plan.size, (i + 1) * plan.size);
      if (antithetic && within % 2 === 1) negateInto(previous, target);
      else {
        noises.fillGaussian(target);
        if (antithetic) previous.set(target);
      }
    }
    yield { start, count, logSnr, weight, noise };
  }
}

/**
 * out = −values: an antithetic partner's ε. A function of its own, not a loop inside
 * drawBlocks' loop over draws, where V8 ran it on on-stack-replaced code it threw away again and
 * again (--trace-deopt).
 */
function negateInto(values: Float32Array, out: Float32Array): void {
  for (let j = 0; j < values.length; j++) out[j] = -values[j];
}

/**
 * The draws a model is evaluated on under resolved estimator options: the model's snapping and
 * shared-α constraint applied, so every caller (estimators, attention) sees the same draws.
 *
 * @example
 * ```ts
 * import { modelDrawBlocks } from "./draws.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * import { resolveOptions } from "./options.ts";
 * const model = exampleOracle();
 * const blocks = [...modelDrawBlocks(model, resolveOptions(model, { samples: 4 }), 2)];
 * console.assert(blocks.length === 2 && blocks[0].noise.length === 2 * 3 * 16 * 16);
 * ```
 */
export function modelDrawBlocks(
  model: Denoiser,
  options: {
    readonly samples: number;
    readonly seed: number;
    readonly logSnr: LogSnrSampling;
    readonly drawsPerLogSnr?: number;
    readonly design?: DrawDesign;
    readonly proposal?: ResolvedProposal;
  },
  blockSize: number,
  conditions = 1,
): Generator<DrawBlock> {
  return drawBlocks({
    samples: options.samples,
    seed: options.seed,
    logSnr: options.logSnr,
    size: model.shape[0] * model.shape[1] * model.shape[2],
    blockSize,
    drawsPerLogSnr: drawsPerLogSnr(model, options, conditions),
    design: options.design,
    proposal: options.proposal,
    snap: model.snapLogSnr?.bind(model),
  });
}

/**
 * How many consecutive draws share one α: `options.drawsPerLogSnr` when given (any model: the
 * reference's intervention design is 20 α × 120 ε, i.e. `samples: 2400, drawsPerLogSnr: 120`);
 * otherwise 1 for models with per-item α, and for scalar-timestep models ⌊model.batchSize /
 * conditions⌋ (at least 1) — one full call of the model's own batch size per α, whatever batch
 * size a query asks for. Antithetic designs need pairs sharing α: at least 2 by default.
 *
 * @example
 * ```ts
 * import { drawsPerLogSnr } from "./draws.ts";
 * const scalar = { sharedLogSnr: true, batchSize: 8 } as never;
 * console.assert(drawsPerLogSnr(scalar, {}, 3) === 2 && drawsPerLogSnr(scalar, { drawsPerLogSnr: 5 }, 3) === 5);
 * const perItem = { sharedLogSnr: false, batchSize: 8 } as never;
 * console.assert(drawsPerLogSnr(perItem, {}, 3) === 1 && drawsPerLogSnr(perItem, { drawsPerLogSnr: 120 }, 3) === 120);
 * console.assert(drawsPerLogSnr(perItem, { design: "antithetic" }, 3) === 2);
 * ```
 */
export function drawsPerLogSnr(
  model: Denoiser,
  options: { readonly drawsPerLogSnr?: number; readonly design?: DrawDesign },
  conditions: number,
): number {
  if (options.drawsPerLogSnr !== undefined) return options.drawsPerLogSnr;
  const paired = isAntithetic(options.design);
  const natural = model.sharedLogSnr ? Math.floor(model.batchSize / conditions) : 1;
  return Math.max(paired ? 2 : 1, natural);
}

/**
 * The fewest independent units (groups of draws sharing an α, see `drawsPerLogSnr`) a standard
 * error is computed from: 3, i.e. 2 degrees of freedom under every design (units − 1; under
 * stratification the strata collapse in pairs, or one triple, each set giving its size − 1). With
 * 2 units the SE is one difference — 0 whenever both units happen to agree, as they do when a few
 * draws all miss the band of α where a word's information lies — and the 95 % interval's Student-t
 * quantile (12.7 at 1 degree of freedom) is beyond the expansion the intervals use.
 */
export const MIN_ERROR_UNITS = 3;

/**
 * Why `samples` draws in groups of `group` (draws sharing an α) under `design` give no standard
 * error — fewer than {@link MIN_ERROR_UNITS} independent units — or undefined when they give one.
 *
 * @example
 * ```ts
 * import { missingErrorReason } from "./draws.ts";
 * console.assert(missingErrorReason(4, 2, "stratified-antithetic")?.includes("at least 5 draws"));
 * console.assert(missingErrorReason(3, 1, "iid") === undefined);
 * ```
 */
export function missingErrorReason(
  samples: number,
  group: number,
  design: DrawDesign,
): string | undefined {
  const units = Math.ceil(samples / group);
  if (units >= MIN_ERROR_UNITS) return undefined;
  const shared = isAntithetic(design) && group === 2 ? "antithetic pairs" : `groups of ${group}`;
  const layout = group === 1 ? "" : ` (${shared} share an α)`;
  return `${samples} draw${samples === 1 ? " is" : "s are"} ${units} independent ` +
    `unit${units === 1 ? "" : "s"} under design "${design}"${layout}; a standard error needs ` +
    `${MIN_ERROR_UNITS}: take at least ${errorDraws(group)} draws`;
}

/**
 * The fewest draws in groups of `group` that give a standard error ({@link MIN_ERROR_UNITS}
 * units, the last of them possibly partial).
 *
 * @example
 * ```ts
 * import { errorDraws } from "./draws.ts";
 * console.assert(errorDraws(1) === 3 && errorDraws(2) === 5);
 * ```
 */
export function errorDraws(group: number): number {
  return (MIN_ERROR_UNITS - 1) * group + 1;
}

/**
 * Noises the data at each draw of a block: x_α = √σ(α)·x + √σ(−α)·ε, draw-major.
 *
 * @example
 * ```ts
 * import { noisyData } from "./draws.ts";
 * const z = noisyData(new Float32Array([1]), { start: 0, count: 1, logSnr: new Float64Array([0]), weight: new Float64Array([1]), noise: new Float32Array([1]) });
 * console.assert(Math.abs(z[0] - 2 * Math.sqrt(0.5)) < 1e-6);
 * ```
 */
export function noisyData(data: Float32Array, block: DrawBlock): Float32Array {
  const out = new Float32Array(block.count * data.length);
  for (let i = 0; i < block.count; i++) noiseInto(out, i * data.length, data, block, i);
  return out;
}

/**
 * Writes x_α of one draw of a block (its α and ε) into `target` at `offset`.
 *
 * @example
 * ```ts
 * import { noiseInto } from "./draws.ts";
 * const target = new Float32Array(2);
 * noiseInto(target, 1, new Float32Array([1]), { start: 0, count: 1, logSnr: new Float64Array([0]), weight: new Float64Array([1]), noise: new Float32Array([1]) }, 0);
 * console.assert(target[0] === 0 && Math.abs(target[1] - 2 * Math.sqrt(0.5)) < 1e-6);
 * ```
 */
export function noiseInto(
  target: Float32Array,
  offset: number,
  data: Float32Array,
  block: DrawBlock,
  draw: number,
): void {
  const s = sigmoid(block.logSnr[draw]);
  const a = Math.sqrt(s), b = Math.sqrt(1 - s), d = data.length, from = draw * d;
  for (let j = 0; j < d; j++) target[offset + j] = a * data[j] + b * block.noise[from + j];
}
