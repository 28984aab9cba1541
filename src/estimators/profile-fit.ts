/**
 * Fitting a log-SNR profile from draws (issue 15, issue 26): where along α contrasts' integrands
 * live, from any draws whose α, weight and value are known — `calibrateProfile`'s calibration
 * runs, a study's calibration rows and a query's earlier rounds all fit with this one function.
 *
 * Every draw's unweighted integrand f = value / weight is squared and averaged per α bin. Contrasts
 * whose information is not at least twice its standard error are left out: a word the model
 * ignores says nothing about where information lies. Each remaining contrast's bin means are
 * normalised to sum to 1 (so every contrast counts the same) and averaged over every contrast
 * (the model's profile), over the contrasts that removed one word (that word's profile, shrunk
 * towards the model's by counting it as one more contrast) and over the whole-prompt contrasts.
 * Each average is smoothed across bins (a Gaussian of one bin's width) before the masses are
 * fitted ∝ √(mean f²), the variance-optimal importance density for a piecewise-constant integrand
 * scale. Bins no draw reached get the smallest mass of the bins that were reached; the defensive
 * mixture with the logistic covers whatever the profile misses.
 *
 * @module
 */
import type { Denoiser } from "../models/denoiser.ts";
import { logSnrInterval, type LogSnrSampling } from "../numerics/log-snr.ts";
import { DEFENSIVE_SHARE, type LogSnrProfile } from "../numerics/proposal.ts";
import { profileMasses, removedWords, unitSum } from "./contrast-profile.ts";

/** The α bins of a fitted profile over the sampled interval (calibration's default). */
export const PROFILE_BINS = 24;

/** The model a profile is fitted on, as the profile names it. */
export type ProfileModel = Pick<Denoiser, "name" | "shape" | "logSnrRange">;

/** What a profile is fitted from: one contrast's draws, and the words it removes. */
export interface ContrastDraws {
  /** α of each draw, as the model evaluated it */
  readonly logSnr: ArrayLike<number>;
  /**
   * importance weight of each draw: 1/q(α), times its round's W_r·N/n_r where an adaptive estimate's
   * rounds do not weigh by their draws (the value over the weight is the integrand either way)
   */
  readonly weight: ArrayLike<number>;
  /** each draw's value (weight × integrand); their mean is the estimate */
  readonly perDraw: ArrayLike<number>;
  /** the contrast's estimate: one whose information is not beyond 2 SE is left out */
  readonly estimate: { readonly nats: number; readonly se: number };
  /** the words the contrast removes ({@link removedWords}); undefined: against the null prompt */
  readonly removed: readonly string[] | undefined;
}

/**
 * Each contrast of an outcome as a fit reads it, filed under the words it removes.
 *
 * @example
 * ```ts
 * import { outcomeDraws } from "./profile-fit.ts";
 * import { estimateContrasts, contrastPlan } from "./contrasts.ts";
 * import { resolveOptions } from "./options.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * import { EXAMPLE_PROMPT } from "../models/example.ts";
 * const model = exampleOracle();
 * const plan = contrastPlan([[EXAMPLE_PROMPT, ""]]);
 * const outcome = await estimateContrasts(model, model.sample(EXAMPLE_PROMPT, { seed: 1 }), plan,
 *   resolveOptions(model, { samples: 8 }));
 * const [whole] = outcomeDraws(plan, outcome);
 * console.assert(whole.removed === undefined && whole.perDraw.length === 8);
 * ```
 */
export function outcomeDraws(
  plan: {
    readonly prompts: readonly string[];
    readonly contrasts: readonly { readonly with: number; readonly without: number }[];
  },
  outcome: {
    readonly contrasts: readonly {
      readonly perDraw: Float64Array;
      readonly estimate: { readonly nats: number; readonly se: number };
    }[];
    readonly draws: { readonly logSnr: Float64Array; readonly weight: Float64Array };
  },
): ContrastDraws[] {
  return outcome.contrasts.map((result, c) => ({
    logSnr: outcome.draws.logSnr,
    weight: outcome.draws.weight,
    perDraw: result.perDraw,
    estimate: result.estimate,
    removed: removedWords(
      plan.prompts[plan.contrasts[c].with],
      plan.prompts[plan.contrasts[c].without],
    ),
  }));
}

/**
 * Equal-width bin edges over the interval a sampling draws from (the last edge exactly its end).
 *
 * @example
 * ```ts
 * import { profileEdges } from "./profile-fit.ts";
 * console.assert(profileEdges({ loc: 1, scale: 2, clip: 3 }, 4).join() === "-5,-2,1,4,7");
 * ```
 */
export function profileEdges(sampling: LogSnrSampling, bins: number): number[] {
  const { min, max } = logSnrInterval(sampling);
  const width = (max - min) / bins;
  return Array.from({ length: bins + 1 }, (_, b) => b === bins ? max : min + b * width);
}

/**
 * Fits a profile from contrasts' draws (see the module): each informative contrast's mean squared
 * integrand per bin, normalised, averaged over every contrast (the model's), over the contrasts
 * that remove each word (shrunk towards the model's by counting it as one more contrast) and over
 * the whole-prompt contrasts; each smoothed and fitted ∝ √. Undefined when no contrast carries
 * information beyond twice its standard error. The one fit of `calibrateProfile`, of a study's
 * calibration rows and of a query's adaptive rounds.
 *
 * @example
 * ```ts
 * import { fitProfile } from "./profile-fit.ts";
 * const model = { name: "m", shape: [1, 1, 1] as const };
 * // one contrast whose integrand lies in the first of two bins
 * const draws = { logSnr: [-1, -0.5, 0.5, 1], weight: [1, 1, 1, 1], perDraw: [4, 4, 0, 0],
 *   estimate: { nats: 2, se: 0.5 }, removed: ["red"] };
 * const profile = fitProfile(model, [-2, 0, 2], [draws], {})!;
 * console.assert(profile.words!.red.mass[0] > 0.5 && profile.wholePrompt === undefined);
 * console.assert(fitProfile(model, [-2, 0, 2], [{ ...draws, estimate: { nats: 0.1, se: 0.5 } }], {}) === undefined);
 * ```
 */
export function fitProfile(
  model: ProfileModel,
  edges: readonly number[],
  contrasts: Iterable<ContrastDraws>,
  calibration: Record<string, unknown>,
  { shrink = 1 }: {
    /** the model's profile counted as this many contrasts in each word's and the whole prompt's */
    readonly shrink?: number;
  } = {},
): LogSnrProfile | undefined {
  const bins = edges.length - 1, min = edges[0], width = (edges[bins] - min) / bins;
  const all = new ProfileSum(bins), whole = new ProfileSum(bins);
  const byWord = new Map<string, ProfileSum>();
  for (const contrast of contrasts) {
    const { nats, se } = contrast.estimate;
    if (!(nats > 2 * se)) continue; // no information to locate
    const sums = new Float64Array(bins), counts = new Float64Array(bins);
    for (let i = 0; i < contrast.perDraw.length; i++) {
      const b = Math.min(bins - 1, Math.max(0, Math.floor((contrast.logSnr[i] - min) / width)));
      sums[b] += (contrast.perDraw[i] / contrast.weight[i]) ** 2;
      counts[b]++;
    }
    const means = sums.map((s, b) => counts[b] > 0 ? s / counts[b] : 0);
    if (!(means.reduce((s, v) => s + v, 0) > 0)) continue;
    const normalised = unitSum(means);
    all.add(normalised);
    // filed under the word it removes, by the rule a query looks it up with
    const { removed } = contrast;
    if (removed === undefined) whole.add(normalised);
    else if (removed.length === 1) {
      const [word] = removed;
      byWord.set(word, (byWord.get(word) ?? new ProfileSum(bins)).add(normalised));
    }
  }
  if (all.contrasts === 0) return undefined;
  const shared = all.mean();
  const fit = (sum: ProfileSum) => ({
    mass: profileMasses(smoothBins(sum.mean(shared, shrink))),
    contrasts: sum.contrasts,
  });
  const words = Object.fromEntries(
    [...byWord.keys()].sort().map((word) => [word, fit(byWord.get(word)!)]),
  );
  const profile = profileOf(model, [...edges], profileMasses(smoothBins(shared)), {
    ...calibration,
    contrasts: all.contrasts,
  });
  return {
    ...profile,
    words,
    ...(whole.contrasts > 0 ? { wholePrompt: fit(whole) } : {}),
    defensiveShare: DEFENSIVE_SHARE,
  };
}

/** A running sum of normalised bin means over contrasts. */
class ProfileSum {
  readonly sum: Float64Array;
  contrasts = 0;
  constructor(bins: number) {
    this.sum = new Float64Array(bins);
  }
  add(normalised: ArrayLike<number>): this {
    for (let b = 0; b < this.sum.length; b++) this.sum[b] += normalised[b];
    this.contrasts++;
    return this;
  }
  /** the mean, with `prior` (if given) counted as `weight` more contrasts */
  mean(prior?: ArrayLike<number>, weight = 1): Float64Array {
    const w = prior ? weight : 0;
    return this.sum.map((v, b) => (v + (prior ? w * prior[b] : 0)) / (this.contrasts + w));
  }
}

/** Bin values smoothed by a Gaussian of one bin's width (out to 3 bins, renormalised at the ends). */
function smoothBins(values: ArrayLike<number>): Float64Array {
  const out = new Float64Array(values.length);
  for (let b = 0; b < values.length; b++) {
    let sum = 0, norm = 0;
    for (let j = Math.max(0, b - 3); j <= Math.min(values.length - 1, b + 3); j++) {
      const k = Math.exp(-0.5 * (j - b) ** 2);
      sum += k * values[j];
      norm += k;
    }
    out[b] = sum / norm;
  }
  return out;
}

/**
 * A profile of a model with the given edges and masses, without per-word profiles.
 *
 * @example
 * ```ts
 * import { profileOf } from "./profile-fit.ts";
 * const p = profileOf({ name: "m", shape: [1, 1, 1] }, [0, 1, 2], [0.5, 0.5], {});
 * console.assert(p.kind === "infodiff.logSnrProfile" && p.mass.length === 2);
 * ```
 */
export function profileOf(
  model: ProfileModel,
  edges: readonly number[],
  mass: readonly number[],
  calibration: Record<string, unknown>,
): LogSnrProfile {
  return {
    kind: "infodiff.logSnrProfile",
    version: 1,
    model: {
      name: model.name,
      shape: [...model.shape],
      ...(model.logSnrRange ? { logSnrRange: { ...model.logSnrRange } } : {}),
    },
    edges: [...edges],
    mass: [...mass],
    calibration,
  };
}
