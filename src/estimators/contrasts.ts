/**
 * The one engine behind every estimator. It evaluates a set of prompts on the SAME (α, ε) draws of
 * one image, in as few batched model calls as the batch size allows, and reduces the noise
 * predictions on the fly into "contrasts" (the information of one condition over another: a total,
 * a word's conditional information, a PID term) and denoising errors (for the likelihood).
 *
 * @module
 */
import { InvalidArgumentError, ModelRuntimeError } from "../errors.ts";
import type { Condition, Denoiser } from "../models/denoiser.ts";
import { shapeSize } from "../models/denoiser.ts";
import { meanWithError, skewCorrectedInterval } from "../numerics/statistics.ts";
import { Heatmap } from "../images/heatmap.ts";
import {
  drawsPerLogSnr,
  errorDraws,
  isStratified,
  missingErrorReason,
  modelDrawBlocks,
  noiseInto,
} from "./draws.ts";
import { planProposal } from "./contrast-profile.ts";
import { fitProfile, outcomeDraws, PROFILE_BINS, profileEdges } from "./profile-fit.ts";
import type { ResolvedProposal } from "../numerics/proposal.ts";
import { sigmoid } from "../numerics/log-snr.ts";
import type { DrawBlock } from "./draws.ts";
import { Estimate } from "./estimate.ts";
import { warn } from "../warnings.ts";
import type { EstimatorName, ResolvedOptions } from "./options.ts";
import { checkTruncation, type PromptTruncation, warnTruncation } from "./truncation.ts";

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
  /**
   * the contrasts (indices) of single words, which a precision target of `"words"` covers
   * (`perToken` names them); absent: the plan has none, and such a target is refused
   */
  readonly words?: readonly number[];
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
 * per call. On models with per-item α every call is full: draws go in blocks of
 * batchSize / gcd(batchSize, prompts), whose items fill a whole number of calls (9 conditions at
 * batch 8: blocks of 8 draws, 72 items, 9 calls); only the last block may leave its last call
 * part-full. On scalar-timestep models (`sharedLogSnr`) one block is one group of
 * `drawsPerLogSnr` draws sharing an α, since a call evaluates one noise level. Each block's items
 * are cut into calls of at most `batchSize`. {@link estimateContrasts} runs exactly this schedule;
 * the numbers never depend on it.
 *
 * @example
 * ```ts
 * import { callSchedule } from "./contrasts.ts";
 * // 9 conditions at batch 8: 900 items in 113 calls (⌈900 / 8⌉), not 200 calls of 8 + 1
 * const s = callSchedule(100, 9, 8);
 * console.assert(s.blockSize === 8 && s.calls === 113 && s.items === 900);
 * // a scalar-timestep model: one call per α group
 * console.assert(callSchedule(100, 3, 8, 2, true).calls === 50);
 * ```
 */
export function callSchedule(
  samples: number,
  prompts: number,
  batchSize: number,
  drawsPerLogSnr = 1,
  sharedLogSnr = false,
): CallSchedule {
  const blockSize = sharedLogSnr ? drawsPerLogSnr : batchSize / gcd(batchSize, prompts);
  const full = Math.floor(samples / blockSize), rest = samples % blockSize;
  const callsPerBlock = (draws: number) => Math.ceil((draws * prompts) / batchSize);
  return {
    blockSize,
    calls: full * callsPerBlock(blockSize) + (rest > 0 ? callsPerBlock(rest) : 0),
    items: samples * prompts,
  };
}

function gcd(a: number, b: number): number {
  while (b > 0) [a, b] = [b, a % b];
  return a;
}

/** One estimated contrast: the scalar, its per-pixel map (summing to it) and the per-draw values. */
export interface ContrastResult {
  /** the estimate in nats with its standard error */
  readonly estimate: Estimate;
  /** per-pixel decomposition (height × width of the data); sums to the estimate */
  readonly map: Heatmap;
  /** ½·w·Σ(differences) of each draw; their mean is the estimate */
  readonly perDraw: Float64Array;
  /**
   * the independent unit of each draw (its α group: an antithetic pair, draws sharing a scalar
   * timestep); resampling for errors must resample units, not draws
   */
  readonly units: Int32Array;
}

/** Result of {@link estimateContrasts}. */
export interface ContrastOutcome {
  /** one result per contrast of the plan, in order */
  readonly contrasts: ContrastResult[];
  /** ½∫(mmse(α) − d·σ(α))dα for each requested prompt (add d/2·log 2πe for −log p) */
  readonly denoisingErrors: Estimate[];
  /** draws of each round (one round unless a precision target asked for more) */
  readonly rounds: readonly number[];
  /**
   * α and importance weight of every draw, in draw order (what calibration fits); a weight is
   * 1/q(α) times its round's W_r·N/n_r where the rounds do not weigh by their draws
   */
  readonly draws: { readonly logSnr: Float64Array; readonly weight: Float64Array };
  /** every prompt of the plan that a text encoder's context cuts, per encoder (empty: none) */
  readonly truncation: readonly PromptTruncation[];
  /** time spent inside model.predictNoise and in all, in milliseconds */
  readonly timing: {
    readonly modelMs: number;
    readonly totalMs: number;
    readonly modelCalls: number;
  };
}

/**
 * Runs a contrast plan on one datum. Before any model call it reads every prompt through the
 * model's text encoders (`encoderTokens`): a contrast whose two prompts the context cuts
 * differently is refused unless `allowTruncation` is set, and a plan with cut prompts is warned
 * about once (see `truncation.ts`).
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
  const targets = precisionTargets(plan, options);
  const truncation = checkTruncation(model, plan, options.allowTruncation ?? false);
  warnTruncation(model, truncation);
  // draw α where this plan's contrasts carry information (their words' calibrated profiles)
  options = { ...options, proposal: planProposal(options.proposal, plan) };
  const conditions = await Promise.all(plan.prompts.map((p) => model.encode(p)));
  const timing = { modelMs: 0, modelCalls: 0 };
  const rounds: Round[] = [];
  let drawn = 0;
  const group = drawsPerLogSnr(model, options, conditions.length);
  // with a precision target the first round is only a start: at least what a standard error
  // needs, within the budget; an adaptive budget starts with its pilot
  const planned = adaptiveRounds(options, group);
  const first = options.precision
    ? Math.min(options.precision.maxSamples, Math.max(options.samples, errorDraws(group)))
    : planned?.[0] ?? options.samples;
  for (let size = first; size > 0;) {
    const seed = rounds.length === 0 ? options.seed : roundSeed(options.seed, rounds.length);
    // later rounds of an adaptive estimate draw where the rounds so far found the information
    const proposal = rounds.length > 0 && options.adapt
      ? adaptedProposal(model, plan, rounds, options)
      : options.proposal;
    const round = await estimateRound(
      model,
      data,
      plan,
      conditions,
      { ...options, seed, proposal },
      { size, offset: drawn, timing },
    );
    rounds.push(round);
    drawn += size;
    size = planned !== undefined
      ? planned[rounds.length] ?? 0
      : nextRound(rounds, options, drawn, targets);
  }
  const weights = roundWeights(rounds, options);
  const outcome = combineRounds(model, rounds, weights, options.design);
  const worst = worstStandardError(rounds, targets);
  if (options.precision && worst > options.precision.se) {
    warn(
      `infodiff: target standard error ${options.precision.se} nats not reached within ` +
        `${options.precision.maxSamples} draws: ${worst.toPrecision(3)} nats after ` +
        `${drawn} draws (raise precision's maxSamples, or accept the larger error` +
        (options.precision.of === undefined && plan.words?.length
          ? `; { of: "words" } sets the target for the words alone, not the whole prompt)`
          : ")"),
    );
  }
  // each draw's weight as the combined estimate counts it (its round's share in it), so that a
  // draw's value over its weight is still the integrand at its α
  const draws = {
    logSnr: concatenate(rounds.map((r) => r.logSnr)),
    weight: scaledConcatenation(rounds.map((r) => r.weight), weights),
  };
  options.onDraws?.(outcomeDraws(plan, { contrasts: outcome.contrasts, draws }));
  return {
    contrasts: outcome.contrasts,
    denoisingErrors: outcome.denoisingErrors,
    rounds: rounds.map((r) => r.size),
    truncation: truncation.truncation,
    draws,
    timing: { ...timing, totalMs: performance.now() - started },
  };
}

/** One round of draws: an independent replicate of the design with its own seed and size. */
interface Round {
  readonly size: number;
  readonly group: number;
  readonly logSnr: Float64Array;
  readonly weight: Float64Array;
  readonly perDraw: Float64Array[];
  readonly errors: Float64Array[];
  readonly maps: Float64Array[];
  /** per number (the contrasts, then the denoising errors): its units and their SEs */
  readonly stats: readonly UnitStats[];
}

/** A number's independent units in one round, and the SE of their mean two ways. */
interface UnitStats {
  readonly units: Float64Array;
  /** the design's SE (collapsed strata under stratification) */
  readonly se: number;
  /** the SE of the units taken as independent (the same unless stratified) */
  readonly plainSe: number;
}

/** The seed of round r ≥ 1 of an adaptive estimate (round 0 keeps the options' seed). */
function roundSeed(seed: number, round: number): number {
  let h = (Math.abs(seed) % 2 ** 32) ^ Math.imul(round, 0x9e3779b9);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * How many draws the next round takes: 0 without a precision target or once every number has
 * reached it; else enough for the worst number to reach it by SE ∝ 1/√draws (plus 20 %), within
 * the draw budget.
 */
function nextRound(
  rounds: readonly Round[],
  options: ResolvedOptions,
  drawn: number,
  targets: readonly number[] | undefined,
): number {
  const target = options.precision;
  if (!target || drawn >= target.maxSamples) return 0;
  const worst = worstStandardError(rounds, targets);
  if (!(worst > target.se)) return 0;
  const wanted = Math.ceil(drawn * ((worst / target.se) ** 2 - 1) * 1.2);
  const size = Math.min(target.maxSamples - drawn, Math.max(wanted, options.samples));
  // a round too small for its own standard error would leave the combined one undefined
  return size < errorDraws(rounds[0].group) ? 0 : size;
}

/**
 * The pilot of an adaptive budget (no precision target): the options' pilot rounded to whole
 * groups of `group` draws sharing an α, leaving both rounds enough units for a standard error;
 * undefined (no split: every draw from the prior) when the options do not adapt or `samples`
 * cannot give both rounds that many.
 *
 * @example
 * ```ts
 * import { adaptivePilot } from "./contrasts.ts";
 * import { resolveOptions } from "./options.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * const model = exampleOracle();
 * console.assert(adaptivePilot(resolveOptions(model, { samples: 100 }), 2) === 50);
 * console.assert(adaptivePilot(resolveOptions(model, { samples: 100, adapt: false }), 2) === undefined);
 * ```
 */
export function adaptivePilot(options: ResolvedOptions, group: number): number | undefined {
  if (!options.adapt || options.precision) return undefined;
  const least = errorDraws(group);
  const pilot = Math.max(least, group * Math.round(options.adapt.pilot / group));
  return options.samples - pilot >= least ? pilot : undefined;
}

/**
 * The rounds of an adaptive budget (no precision target), their draws in order: the pilot
 * ({@link adaptivePilot}) and the rest, or with `adapt.splitPilot` the pilot's first part from
 * the prior (about half, whole groups), its second part from a refit on the first, and the rest;
 * the pilot stays whole when either part would be too small for a standard error. Undefined when
 * the budget is not split.
 *
 * @example
 * ```ts
 * import { adaptiveRounds } from "./contrasts.ts";
 * import { resolveOptions } from "./options.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * const model = exampleOracle();
 * console.assert(adaptiveRounds(resolveOptions(model, { samples: 100 }), 2)?.join() === "26,24,50");
 * console.assert(adaptiveRounds(resolveOptions(model, { samples: 200 }), 2)?.join() === "50,150");
 * ```
 */
export function adaptiveRounds(options: ResolvedOptions, group: number): number[] | undefined {
  const pilot = adaptivePilot(options, group);
  if (pilot === undefined) return undefined;
  const rest = options.samples - pilot;
  if (!options.adapt!.splitPilot) return [pilot, rest];
  const least = errorDraws(group);
  const first = group * Math.round(pilot / 2 / group);
  return first >= least && pilot - first >= least ? [first, pilot - first, rest] : [pilot, rest];
}

/**
 * The proposal of an adaptive estimate's next round: a profile fitted on every draw of the rounds
 * so far (`fitProfile`, as calibration fits, over the sampling's interval), drawn from as a query
 * draws from a calibrated profile (`planProposal`), mixed with the logistic at the options'
 * `adapt.refitShare` (less after a pilot from a fitted profile, as a study's rows draw, than after
 * one from a prior); the prior again when no contrast carries information beyond 2 SE yet. Each
 * round stays an unbiased replicate given the rounds before it, whatever it draws from.
 */
function adaptedProposal(
  model: Denoiser,
  plan: ContrastPlan,
  rounds: readonly Round[],
  options: ResolvedOptions,
): ResolvedProposal {
  const logSnr = concatenate(rounds.map((r) => r.logSnr));
  const weight = concatenate(rounds.map((r) => r.weight));
  const contrasts = plan.contrasts.map((_, k) => {
    const perDraw = concatenate(rounds.map((r) => r.perDraw[k]));
    return {
      perDraw,
      estimate: {
        nats: meanWithError(perDraw).mean,
        se: combinedError(rounds, drawWeights(rounds), k, (s) => s.se),
      },
    };
  });
  const edges = profileEdges(options.logSnr, PROFILE_BINS);
  const profile = fitProfile(
    model,
    edges,
    outcomeDraws(plan, { contrasts, draws: { logSnr, weight } }),
    {
      adapted: { rounds: rounds.length, draws: logSnr.length },
    },
  );
  if (!profile) return options.proposal;
  return planProposal({ kind: "fitted", lambda: options.adapt!.refitShare, profile }, plan);
}

/**
 * The largest combined SE of any number over the rounds ({@link combinedError}), each round's taken
 * as the larger of the design's and the units' plain SE — as the interval takes it: with
 * heavy-tailed draws a stratified round's collapsed-strata SE can be a fraction of the units' own
 * (every draw missed the α band that holds a word's information), and a precision target checked
 * on it alone stopped such runs early, a nat off with an SE of 0.16 on the example oracle.
 */
function worstStandardError(rounds: readonly Round[], targets?: readonly number[]): number {
  let worst = 0;
  for (const k of targets ?? rounds[0].stats.keys()) {
    const se = combinedError(rounds, drawWeights(rounds), k, (s) => Math.max(s.se, s.plainSe));
    worst = Math.max(worst, Number.isFinite(se) ? se : Infinity);
  }
  return worst;
}

/**
 * The numbers (contrasts, then denoising errors) a precision target covers: all of them (undefined)
 * unless it names the plan's words.
 *
 * @throws {InvalidArgumentError} a target of `"words"` on a plan without words to cover
 */
function precisionTargets(
  plan: ContrastPlan,
  options: ResolvedOptions,
): readonly number[] | undefined {
  if (options.precision?.of !== "words") return undefined;
  if (!plan.words?.length) {
    throw new InvalidArgumentError(
      `precision({ of: "words" }) covers a perToken query's words; this estimate has ` +
        `${
          plan.words ? "no word left to estimate" : "no per-word contrasts"
        }, so its target must ` +
        `cover every number (of: "all", the default)`,
    );
  }
  return plan.words;
}

/**
 * Each round's share of the estimate: fixed before any draw, so the combination of rounds each
 * unbiased given the ones before stays unbiased. A fixed budget split into a pilot (one round, or
 * two when it is split) and an adapted round gives each pilot round its share of the draws times
 * the options' `pilotDiscount` when set; otherwise every round weighs by its draws (n_r / N).
 */
function roundWeights(rounds: readonly Round[], options: ResolvedOptions): number[] {
  const discount = options.adapt?.pilotDiscount;
  if (discount === undefined || options.precision || rounds.length < 2) {
    return drawWeights(rounds);
  }
  return discountedWeights(rounds.map((r) => r.size), discount);
}

/**
 * The shares of a split budget's rounds, given their draws in order: each pilot round (every
 * round but the last: one, or two when the pilot is split) weighs `discount` times its share of
 * the draws ({@link pilotShare}); the adapted round takes the rest.
 *
 * @example
 * ```ts
 * import { discountedWeights } from "./contrasts.ts";
 * const [a, b, last] = discountedWeights([26, 24, 50], 0.8);
 * console.assert(Math.abs(a - 0.208) < 1e-12 && Math.abs(b - 0.192) < 1e-12);
 * console.assert(Math.abs(last - 0.6) < 1e-12);
 * ```
 */
export function discountedWeights(sizes: readonly number[], discount: number): number[] {
  const N = sizes.reduce((sum, n) => sum + n, 0);
  const pilots = sizes.slice(0, -1).map((n) => pilotShare(n, N, discount));
  return [...pilots, 1 - pilots.reduce((sum, w) => sum + w, 0)];
}

/**
 * The pilot round's share of a split budget's estimate: its share of the draws times the
 * discount (`ResolvedOptions.adapt.pilotDiscount`); the adapted round takes the rest.
 *
 * @example
 * ```ts
 * import { pilotShare } from "./contrasts.ts";
 * console.assert(pilotShare(50, 100, 0.8) === 0.4);
 * ```
 */
export function pilotShare(pilot: number, samples: number, discount: number): number {
  return (discount * pilot) / samples;
}

/** Each round's share of the draws, n_r / N. */
function drawWeights(rounds: readonly Round[]): number[] {
  const N = rounds.reduce((sum, r) => sum + r.size, 0);
  return rounds.map((r) => r.size / N);
}

/** Number k's SE over independent rounds of shares W_r: SE² = Σ W_r²·SE_r². */
function combinedError(
  rounds: readonly Round[],
  weights: readonly number[],
  k: number,
  pick: (stats: UnitStats) => number,
): number {
  return Math.sqrt(rounds.reduce((sum, r, i) => sum + weights[i] ** 2 * pick(r.stats[k]) ** 2, 0));
}

/**
 * The rounds' values of one number end to end, each round's scaled by W_r·N/n_r, so their plain
 * mean is the combined estimate Σ W_r·mean_r (unscaled when the rounds weigh by their draws).
 */
function scaledConcatenation(
  parts: readonly Float64Array[],
  weights: readonly number[],
): Float64Array {
  const N = parts.reduce((s, p) => s + p.length, 0);
  const all = concatenate(parts);
  let at = 0;
  parts.forEach((part, r) => {
    const scale = (weights[r] * N) / part.length;
    if (scale !== 1) {
      for (let i = at; i < at + part.length; i++) all[i] *= scale;
    }
    at += part.length;
  });
  return all;
}

function concatenate(parts: readonly Float64Array[]): Float64Array {
  const all = new Float64Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const part of parts) all.set(part, (at += part.length) - part.length);
  return all;
}

/**
 * Runs one round's draws and reduces them per draw (contrasts, denoising errors) and per pixel
 * (each contrast's map, as this round's mean).
 */
async function estimateRound(
  model: Denoiser,
  data: Float32Array,
  plan: ContrastPlan,
  conditions: readonly Condition[],
  options: ResolvedOptions,
  where: {
    readonly size: number;
    readonly offset: number;
    readonly timing: { modelMs: number; modelCalls: number };
  },
): Promise<Round> {
  const [channels, height, width] = model.shape;
  const d = shapeSize(model.shape), pixels = height * width;
  const K = conditions.length, n = where.size;
  const group = drawsPerLogSnr(model, options, K);
  const { blockSize } = callSchedule(n, K, options.batchSize, group, model.sharedLogSnr ?? false);
  const errorPrompts = plan.denoisingErrors ?? [];
  const round = {
    size: n,
    group,
    logSnr: new Float64Array(n),
    weight: new Float64Array(n),
    perDraw: plan.contrasts.map(() => new Float64Array(n)),
    maps: plan.contrasts.map(() => new Float64Array(pixels)),
    errors: errorPrompts.map(() => new Float64Array(n)),
  };
  const total = options.precision ? undefined : n;
  // one input buffer for every call of the round: a call's input is dead once it resolves
  const inputs = new Float32Array(options.batchSize * data.length);
  const draws = new Float32Array(blockSize * data.length);
  let blocks = 0;
  for (const block of modelDrawBlocks(model, { ...options, samples: n }, blockSize, K)) {
    const reversed = blocks++ % 2 === 1; // each block starts as the one before ended
    const predictions = await predictBlock(
      model,
      data,
      block,
      conditions,
      { inputs, draws, reversed },
      where.timing,
    );
    for (let i = 0; i < block.count; i++) {
      const draw = block.start + i;
      round.logSnr[draw] = block.logSnr[i];
      round.weight[draw] = block.weight[i];
      const noise = block.noise.subarray(i * d, (i + 1) * d);
      const at = (k: number) => predictions.item(i * K + k);
      const half = 0.5 * block.weight[i];
      plan.contrasts.forEach((c, index) => {
        const sum = reduceContrast(
          c.estimator ?? options.estimator,
          at(c.with),
          at(c.without),
          noise,
          channels,
          pixels,
          round.maps[index],
          half / n,
        );
        if (!Number.isFinite(sum)) nonFinitePrediction(model, draw, block.logSnr[i], c);
        round.perDraw[index][draw] = half * sum;
      });
      if (errorPrompts.length > 0) {
        // E‖ε‖² = d exactly, so σ(α)·‖ε‖² can replace d·σ(α): same expectation, but it cancels
        // the χ² noise of ‖ε − ε̂‖² where ε̂ ≈ 0 or ε̂ ≈ ε, i.e. where the weights are largest.
        const control = sigmoid(block.logSnr[i]) * squaredNorm(noise);
        errorPrompts.forEach((k, index) => {
          const error = squaredError(noise, at(k));
          if (!Number.isFinite(error)) nonFinitePrediction(model, draw, block.logSnr[i]);
          round.errors[index][draw] = half * (error - control);
        });
      }
    }
    const done = where.offset + block.start + block.count;
    options.onProgress?.({ done, total: total ?? Math.max(done, options.precision!.maxSamples) });
  }
  const stratified = isStratified(options.design);
  const stats = [...round.perDraw, ...round.errors].map((values) => {
    const units = designUnits(values, group);
    return {
      units,
      se: unitsStandardError(units, stratified),
      plainSe: unitsStandardError(units, false),
    };
  });
  return { ...round, stats };
}

/**
 * The rounds as one estimate per number: Σ W_r·mean_r over rounds each an unbiased replicate given
 * the ones before, with shares W_r fixed before any draw ({@link roundWeights}: by their draws,
 * the pilot of a split budget discounted), SE² = Σ W_r²·SE_r², maps averaged the same way, and
 * the per-draw values concatenated (scaled so that their plain mean is the estimate) with their
 * units numbered across rounds.
 */
function combineRounds(
  model: Denoiser,
  rounds: readonly Round[],
  weights: readonly number[],
  design: ResolvedOptions["design"],
): { contrasts: ContrastResult[]; denoisingErrors: Estimate[] } {
  const N = rounds.reduce((s, r) => s + r.size, 0);
  const stratified = isStratified(design);
  const units = new Int32Array(N);
  let offset = 0, unitOffset = 0;
  for (const r of rounds) {
    for (let i = 0; i < r.size; i++) units[offset + i] = unitOffset + Math.floor(i / r.group);
    offset += r.size;
    unitOffset += Math.ceil(r.size / r.group);
  }
  // the first round decides: later ones are never smaller than their own standard error needs
  const noError = missingErrorReason(rounds[0].size, rounds[0].group, design);
  const summarise = (values: Float64Array, k: number) => {
    if (noError) return Estimate.withoutError(meanWithError(values).mean, N, noError);
    const se = combinedError(rounds, weights, k, (s) => s.se);
    const plainSe = combinedError(rounds, weights, k, (s) => s.plainSe);
    const unitValues = scaledConcatenation(rounds.map((r) => r.stats[k].units), weights);
    const { mean } = meanWithError(values);
    // the interval never trusts the strata more than the units: with heavy-tailed draws the
    // collapsed-strata SE is too often small (intervals from it covered 84–94 % on the exact
    // oracle), so the interval takes the larger of it and the units' plain SE; the plain SE's
    // degrees of freedom are the units less one per round
    const interval = skewCorrectedInterval(
      unitValues,
      mean,
      stratified ? Math.max(se, plainSe) : se,
      2,
      unitValues.length - (stratified ? 1 : rounds.length),
    );
    return new Estimate(mean, se, N, interval);
  };
  const [, height, width] = model.shape;
  const contrasts = rounds[0].perDraw.map((_, index) => {
    const perDraw = scaledConcatenation(rounds.map((r) => r.perDraw[index]), weights);
    const map = new Float32Array(height * width);
    rounds.forEach((r, i) => r.maps[index].forEach((v, p) => map[p] += weights[i] * v));
    return {
      estimate: summarise(perDraw, index),
      map: new Heatmap(width, height, map),
      perDraw,
      units,
    };
  });
  const K = contrasts.length;
  const denoisingErrors = rounds[0].errors.map((_, index) =>
    summarise(scaledConcatenation(rounds.map((r) => r.errors[index]), weights), K + index)
  );
  return { contrasts, denoisingErrors };
}

/**
 * Where a block's items go in its calls: `slots[call · batchSize + row]` is the item
 * `draw · conditions + condition` that the call's row holds. Calls are cut as
 * {@link callSchedule} cuts them (full, the last perhaps part-full), and the items, condition by
 * condition (each condition's draws in turn), fill the calls' rows one row after the other, so a
 * row keeps its condition from call to call and changes it about `conditions` times per block in
 * all, where a draw-major order changed every row at every call. A model that batches each row's
 * conditioning (SD 3's and FLUX.1's are megabytes per prompt) then rewrites only the rows whose
 * condition changed. `reversed` runs a block's full calls backwards, so that a block starts with
 * the rows the one before ended with. Each item's prediction depends on the item alone, so the
 * layout never changes a number.
 *
 * @example
 * ```ts
 * import { blockLayout } from "./contrasts.ts";
 * // 3 draws × 3 conditions at batch 2: row 0 holds condition 0 for three calls, then 1; row 1
 * // holds 1, then 2
 * const slots = blockLayout(3, 3, 2);
 * console.assert(slots.join() === "0,7,3,2,6,5,1,8,4");
 * console.assert(Array.from(slots, (item) => item % 3).join() === "0,1,0,2,0,2,1,2,1");
 * console.assert(blockLayout(2, 3, 2, true).join() === "1,5,3,2,0,4"); // forwards 0,4,3,2,1,5
 * ```
 */
export function blockLayout(
  draws: number,
  conditions: number,
  batchSize: number,
  reversed = false,
): Int32Array {
  const items = draws * conditions, calls = Math.ceil(items / batchSize);
  const last = items - (calls - 1) * batchSize; // rows of the last call
  const backwards = reversed && last === batchSize;
  const slots = new Int32Array(items);
  for (let row = 0, first = 0; row < Math.min(batchSize, items); row++) {
    const length = row < last ? calls : calls - 1; // this row's items
    for (let call = 0; call < length; call++) {
      const q = first + call, condition = Math.floor(q / draws), draw = q % draws;
      const at = backwards ? calls - 1 - call : call;
      slots[at * batchSize + row] = draw * conditions + condition;
    }
    first += length;
  }
  return slots;
}

/**
 * Evaluates every condition on every draw of a block, in calls of at most `batchSize` items laid
 * out by {@link blockLayout}, and gives access to the prediction of item `draw · K + condition`.
 * `draws` holds each draw's x_α (computed once, then copied into the calls that need it).
 */
async function predictBlock(
  model: Denoiser,
  data: Float32Array,
  block: DrawBlock,
  conditions: readonly Condition[],
  buffers: {
    readonly inputs: Float32Array;
    readonly draws: Float32Array;
    readonly reversed: boolean;
  },
  timing: { modelMs: number; modelCalls: number },
): Promise<{ item(index: number): Float32Array }> {
  const { inputs, draws } = buffers;
  const d = data.length, K = conditions.length, items = block.count * K;
  const batchSize = inputs.length / d;
  const slots = blockLayout(block.count, K, batchSize, buffers.reversed);
  const slotOf = new Int32Array(items);
  slots.forEach((item, slot) => slotOf[item] = slot);
  // each draw's x_α = √σ(α)·x + √σ(−α)·ε once; a call's rows copy it (a memcpy beats K passes)
  for (let draw = 0; draw < block.count; draw++) noiseInto(draws, draw * d, data, block, draw);
  const outputs: Float32Array[] = []; // one per call; items are read in place, not copied out
  for (let first = 0; first < items; first += batchSize) {
    const size = Math.min(batchSize, items - first);
    const batchNoisy = inputs.subarray(0, size * d);
    const logSnr = new Float64Array(size);
    const batchConditions: Condition[] = [];
    for (let row = 0; row < size; row++) {
      const item = slots[first + row], draw = Math.floor(item / K);
      batchNoisy.set(draws.subarray(draw * d, (draw + 1) * d), row * d);
      logSnr[row] = block.logSnr[draw];
      batchConditions.push(conditions[item % K]);
    }
    const t0 = performance.now();
    const out = await model.predictNoise({
      noisy: batchNoisy,
      logSnr,
      conditions: batchConditions,
      finiteChecked: true, // every value goes into a sum of squares, checked per draw below
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
      const slot = slotOf[index], call = Math.floor(slot / batchSize);
      const offset = (slot - call * batchSize) * d;
      return outputs[call].subarray(offset, offset + d);
    },
  };
}

/**
 * Σ over the datum of the contrast's squared differences, adding `mapScale`·(per-pixel sum over
 * channels) into `map`. Orthogonal: ‖ε̂_with − ε̂_without‖². Standard: ‖ε − ε̂_without‖² − ‖ε − ε̂_with‖².
 *
 * @example
 * ```ts
 * import { reduceContrast } from "./contrasts.ts";
 * // one channel, two pixels: differences 1 and 2
 * const map = new Float64Array(2);
 * const sum = reduceContrast("orthogonal", Float32Array.of(1, 2), Float32Array.of(0, 0),
 *   Float32Array.of(0, 0), 1, 2, map, 0.5);
 * console.assert(sum === 5 && map[0] === 0.5 && map[1] === 2);
 * ```
 */
export function reduceContrast(
  estimator: EstimatorName,
  withPrediction: Float32Array,
  withoutPrediction: Float32Array,
  noise: Float32Array,
  channels: number,
  pixels: number,
  map: Float64Array,
  mapScale: number,
): number {
  if (channels === 4) {
    return reduceFourChannels(
      estimator,
      withPrediction,
      withoutPrediction,
      noise,
      pixels,
      map,
      mapScale,
    );
  }
  // Channel-outer loops keep every access contiguous; `scratch` collects the per-pixel sums. Each
  // loop is a function of its own: nested here, V8 deoptimized this function again and again (34
  // times in one perToken() at SD 3's size, --trace-deopt), running the loops uncompiled meanwhile
  const scratch = pixelScratch(pixels);
  for (let c = 0, base = 0; c < channels; c++, base += pixels) {
    if (estimator === "orthogonal") {
      addOrthogonal(withPrediction, withoutPrediction, base, scratch);
    } else addStandard(noise, withPrediction, withoutPrediction, base, scratch);
  }
  let total = 0;
  for (let p = 0; p < pixels; p++) {
    total += scratch[p];
    map[p] += mapScale * scratch[p];
  }
  return total;
}

/** scratch[p] += (with − without)² over one channel's pixels, from `base`. */
function addOrthogonal(
  withPrediction: Float32Array,
  withoutPrediction: Float32Array,
  base: number,
  scratch: Float64Array,
): void {
  for (let p = 0; p < scratch.length; p++) {
    const diff = withPrediction[base + p] - withoutPrediction[base + p];
    scratch[p] += diff * diff;
  }
}

/** scratch[p] += (ε − without)² − (ε − with)² over one channel's pixels, from `base`. */
function addStandard(
  noise: Float32Array,
  withPrediction: Float32Array,
  withoutPrediction: Float32Array,
  base: number,
  scratch: Float64Array,
): void {
  for (let p = 0; p < scratch.length; p++) {
    const j = base + p;
    const a = noise[j] - withoutPrediction[j], b = noise[j] - withPrediction[j];
    scratch[p] += a * a - b * b;
  }
}

/**
 * {@link reduceContrast} for latents of four channels (every SD VAE's), in one pass over the
 * pixels with a view per channel: half the time of the general loops at SD sizes, and the same
 * sums in the same order, so the same bits.
 */
function reduceFourChannels(
  estimator: EstimatorName,
  withPrediction: Float32Array,
  withoutPrediction: Float32Array,
  noise: Float32Array,
  pixels: number,
  map: Float64Array,
  mapScale: number,
): number {
  const channel = (values: Float32Array, c: number) =>
    values.subarray(c * pixels, (c + 1) * pixels);
  const [w0, w1, w2, w3] = [0, 1, 2, 3].map((c) => channel(withPrediction, c));
  const [o0, o1, o2, o3] = [0, 1, 2, 3].map((c) => channel(withoutPrediction, c));
  let total = 0;
  if (estimator === "orthogonal") {
    for (let p = 0; p < pixels; p++) {
      const d0 = w0[p] - o0[p], d1 = w1[p] - o1[p], d2 = w2[p] - o2[p], d3 = w3[p] - o3[p];
      const value = d0 * d0 + d1 * d1 + d2 * d2 + d3 * d3;
      total += value;
      map[p] += mapScale * value;
    }
    return total;
  }
  const [n0, n1, n2, n3] = [0, 1, 2, 3].map((c) => channel(noise, c));
  const term = (n: number, without: number, within: number) => {
    const a = n - without, b = n - within;
    return a * a - b * b;
  };
  for (let p = 0; p < pixels; p++) {
    const value = term(n0[p], o0[p], w0[p]) + term(n1[p], o1[p], w1[p]) +
      term(n2[p], o2[p], w2[p]) + term(n3[p], o3[p], w3[p]);
    total += value;
    map[p] += mapScale * value;
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

/**
 * The design's independent units: consecutive groups of `group` draws (an α shared by a scalar
 * timestep or an antithetic pair) averaged into one value each, scaled so that their plain mean
 * is the mean of all draws (a short last group counts for what it holds).
 *
 * @example
 * ```ts
 * import { designUnits } from "./contrasts.ts";
 * // pairs (0, 2), (2, 4) and the short (4): means 1, 3, 4, scaled by 2·3/5 so they average 2.4
 * const units = designUnits(Float64Array.from([0, 2, 2, 4, 4]), 2);
 * console.assert(units.every((u, g) => Math.abs(u - [1.2, 3.6, 2.4][g]) < 1e-12));
 * ```
 */
export function designUnits(values: Float64Array, group = 1): Float64Array {
  const count = Math.ceil(values.length / group);
  const units = new Float64Array(count);
  const scale = (group * count) / values.length;
  for (let g = 0; g < count; g++) {
    let sum = 0;
    const end = Math.min(values.length, (g + 1) * group);
    for (let i = g * group; i < end; i++) sum += values[i];
    units[g] = (sum / group) * scale;
  }
  return units;
}

/**
 * Standard error of the mean from the design's independent units ({@link designUnits}). Under a
 * stratified design unit g is stratum g, and the strata are collapsed in adjacent pairs (a triple
 * at an odd end): Var ≈ (1/G²)·Σ_sets s/(s−1)·Σ_{g∈set}(u_g − ū_set)², which over-states the
 * variance by the spread of the strata means within each set — conservative.
 *
 * @example
 * ```ts
 * import { standardError } from "./contrasts.ts";
 * // pairs of draws → units 1, 3, 5, 7; strata collapsed into (1, 3) and (5, 7):
 * // Var = ((1 − 3)² + (5 − 7)²) / 4², so SE = √8 / 4
 * const se = standardError(Float64Array.from([0, 2, 2, 4, 4, 6, 6, 8]), 2, true);
 * console.assert(Math.abs(se - Math.sqrt(8) / 4) < 1e-12);
 * ```
 */
export function standardError(values: Float64Array, group = 1, stratified = false): number {
  return unitsStandardError(designUnits(values, group), stratified);
}

/** {@link standardError} of units already formed by {@link designUnits}. */
function unitsStandardError(units: Float64Array, stratified: boolean): number {
  const G = units.length;
  if (G < 2) return NaN;
  if (!stratified) return meanWithError(units).se;
  let variance = 0;
  for (let first = 0; first < G;) {
    const size = G - first === 3 ? 3 : 2;
    const set = units.subarray(first, first + size);
    const mean = set.reduce((a, b) => a + b, 0) / set.length;
    variance += (set.length / (set.length - 1)) * set.reduce((a, u) => a + (u - mean) ** 2, 0);
    first += size;
  }
  return Math.sqrt(variance) / G;
}

/**
 * A draw's sum of squares is not finite: some value of its noise predictions was not (the backend
 * was asked not to check, since these sums see every value).
 */
function nonFinitePrediction(
  model: Denoiser,
  draw: number,
  logSnr: number,
  contrast?: { readonly with: number; readonly without: number },
): never {
  const which = contrast ? ` (conditions ${contrast.with} and ${contrast.without})` : "";
  throw new ModelRuntimeError(
    `${model.name}: the noise prediction of draw ${draw} at log-SNR ${logSnr.toFixed(3)}${which} ` +
      "is not finite (NaN or ±Infinity); expected finite noise predictions",
  );
}
