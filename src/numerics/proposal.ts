/**
 * Proposals for the log-SNR α: the importance density q(α) the draws come from, with the
 * quantile function the stratified designs need. Every proposal estimates the same integral
 * (each draw carries its weight 1/q(α)); a proposal shaped like the integrand has less variance.
 *
 * - the truncated logistic of REFERENCE §3 ({@link logisticProposal});
 * - a flow model's training law ({@link trainingLawProposal}): a Gaussian in α (SD3 draws t from a
 *   logit-normal, so α = −2·logit t is Gaussian) truncated to the sampling's interval, made
 *   defensive like the fitted one;
 * - a fitted, defensive mixture ({@link fittedProposal}): λ·logistic + (1 − λ)·a piecewise-constant
 *   density whose bin masses are ∝ √(mean squared integrand) from a calibration run
 *   ({@link LogSnrProfile}; a query draws from its words' profiles, `planProposal`). The logistic
 *   share λ keeps q(α) ≥ λ·q_logistic(α) everywhere, so a word whose information lies where the
 *   profile put little mass costs at most 1/λ times the variance of the logistic alone.
 *
 * @module
 */
import { InvalidArgumentError } from "../errors.ts";
import { normalCdf, normalDensity } from "./normal.ts";
import {
  logSnrAtQuantile,
  logSnrCdf,
  logSnrInterval,
  type LogSnrSampling,
  logSnrWeight,
} from "./log-snr.ts";

/** An importance density of α with its quantile function. */
export interface LogSnrProposal {
  /** the α at quantile p ∈ [0, 1), with its importance weight 1/q(α) */
  at(p: number): { logSnr: number; weight: number };
  /** what it is, for results files and provenance */
  describe(): Record<string, unknown>;
}

/**
 * A calibrated integrand profile of a model: bin masses over a log-SNR interval, as
 * `infodiff calibrate` (or `calibrateProfile`) writes it.
 */
export interface LogSnrProfile {
  /** marks the file */
  readonly kind: "infodiff.logSnrProfile";
  /** format version */
  readonly version: 1;
  /** the model it was fitted on: name, data shape and trained log-SNR range */
  readonly model: {
    readonly name: string;
    readonly shape: readonly number[];
    readonly logSnrRange?: { readonly min: number; readonly max: number };
  };
  /** bin edges in α, increasing (bins + 1 values) */
  readonly edges: readonly number[];
  /** the fitted part's probability mass of each bin (sums to 1), for any contrast */
  readonly mass: readonly number[];
  /**
   * bin masses fitted from the calibration contrasts that removed this word (lower case): where
   * this word's information lies, used for queries about it
   */
  readonly words?: Readonly<Record<string, ContrastProfile>>;
  /** bin masses fitted from the calibration contrasts of a whole prompt against the null prompt */
  readonly wholePrompt?: ContrastProfile;
  /**
   * the logistic's share λ the profile is mixed with (written by calibration, which smooths its
   * profiles for {@link DEFENSIVE_SHARE}); a profile without it, written before per-word profiles,
   * keeps the 0.5 it was measured with
   */
  readonly defensiveShare?: number;
  /** how it was made (rows, contrasts, draws, seed, date) */
  readonly calibration: Record<string, unknown>;
}

/** The logistic's share for a profile that names none (one unsmoothed profile per model). */
export const LEGACY_DEFENSIVE_SHARE = 0.5;

/** The bin masses of one kind of contrast, and how many calibration contrasts they come from. */
export interface ContrastProfile {
  /** probability mass of each of the profile's bins (sums to 1) */
  readonly mass: readonly number[];
  /** the calibration contrasts behind it */
  readonly contrasts: number;
}

/**
 * A resolved proposal: the logistic, the defensive mixture with a profile and its share λ, a
 * discrete-time model's schedule (the uniform law over its trained timesteps, as a profile, in the
 * same mixture), or a flow model's training law (a Gaussian in α, with the law it comes from for
 * provenance).
 */
export type ResolvedProposal =
  | { readonly kind: "logistic" }
  | { readonly kind: "fitted"; readonly lambda: number; readonly profile: LogSnrProfile }
  | {
    readonly kind: "schedule";
    /** the logistic's share λ of the defensive mixture */
    readonly lambda: number;
    /** one bin per trained timestep, each of mass 1/T */
    readonly profile: LogSnrProfile;
  }
  | {
    readonly kind: "training-law";
    /** the logistic's share λ of the defensive mixture */
    readonly lambda: number;
    /** mean of α */
    readonly mean: number;
    /** standard deviation of α */
    readonly std: number;
    /** the model's training law of t and its trained range, as the model states them */
    readonly law: Readonly<Record<string, unknown>>;
  };

/**
 * The proposal a resolved choice draws from on the sampling's interval.
 *
 * @example
 * ```ts
 * import { proposalFor } from "./proposal.ts";
 * const sampling = { loc: 0, scale: 1, clip: 3 };
 * const q = proposalFor(sampling, { kind: "training-law", lambda: 0.1, mean: 0, std: 2, law: {} });
 * console.assert(q.describe().kind === "training-law" && Math.abs(q.at(0.5).logSnr) < 1e-9);
 * ```
 */
export function proposalFor(sampling: LogSnrSampling, resolved?: ResolvedProposal): LogSnrProposal {
  switch (resolved?.kind) {
    case "fitted":
      return fittedProposal(sampling, resolved.profile, resolved.lambda);
    case "schedule":
      return {
        ...fittedProposal(sampling, resolved.profile, resolved.lambda),
        describe: () => ({
          kind: "schedule",
          lambda: resolved.lambda,
          timesteps: resolved.profile.mass.length,
        }),
      };
    case "training-law":
      return trainingLawProposal(sampling, resolved.mean, resolved.std, resolved.lambda);
    default:
      return logisticProposal(sampling);
  }
}

/**
 * A flow model's training law as a proposal: the defensive mixture λ·logistic + (1 − λ)·N(mean,
 * std²) on the sampling's interval, the Gaussian truncated to it. The Gaussian alone is where a
 * flow model was trained; but over a flow model's wide trained range (SD3's α ∈ [−16, 11.6]) its
 * weight 1/q(α) reaches 10¹¹ at the ends, where a denoising error's own noise does not vanish (the
 * likelihood's per-draw ‖ε − ε̂‖² keeps a variance of about 2·d), and such draws make the error
 * bars lie. The logistic share bounds every weight by 1/λ times the logistic's, as it does for a
 * fitted profile.
 *
 * @throws {InvalidArgumentError} std ≤ 0, λ outside (0, 1], or a Gaussian with no mass in the
 *   interval
 *
 * @example
 * ```ts
 * import { trainingLawProposal } from "./proposal.ts";
 * import { logSnrWeight } from "./log-snr.ts";
 * const sampling = { loc: -2, scale: 2, clip: 3 }; // α ∈ [−8, 4]
 * const q = trainingLawProposal(sampling, -2, 1);
 * // the median of a mixture of two laws symmetric about −2 is −2
 * console.assert(Math.abs(q.at(0.5).logSnr + 2) < 1e-9);
 * // no weight beyond 1/λ = 10 times the logistic's
 * const { logSnr, weight } = q.at(0.9999);
 * console.assert(weight <= 10 * logSnrWeight(logSnr, sampling) && q.describe().kind === "training-law");
 * ```
 */
export function trainingLawProposal(
  sampling: LogSnrSampling,
  mean: number,
  std: number,
  lambda = DEFENSIVE_SHARE,
): LogSnrProposal {
  const { min, max } = logSnrInterval(sampling);
  if (![mean, std].every(Number.isFinite) || !(std > 0)) {
    throw new InvalidArgumentError(
      `a training-law proposal needs a finite mean and std > 0, got mean=${mean}, std=${std}`,
    );
  }
  const a = (min - mean) / std, b = (max - mean) / std;
  const low = normalCdf(a);
  // the Gaussian's mass in [min, max], from the tail on each side that keeps its precision
  const mass = b <= 0 ? normalCdf(b) - low : a >= 0 ? normalCdf(-a) - normalCdf(-b) : 1 - low -
    normalCdf(-b);
  if (!(mass > 0)) {
    throw new InvalidArgumentError(
      `the training law N(${mean}, ${std}²) of α puts no mass in [${min}, ${max}]; expected an ` +
        `interval within reach of its mean`,
    );
  }
  return defensiveMixture(sampling, lambda, {
    cdf: (alpha) => Math.min(1, Math.max(0, (normalCdf((alpha - mean) / std) - low) / mass)),
    pdf: (alpha) => normalDensity((alpha - mean) / std) / (std * mass),
    describe: () => ({ kind: "training-law", lambda, mean, std }),
  });
}

/**
 * The defensive mixture λ·logistic + (1 − λ)·part on the sampling's interval, its quantile found
 * by bisection on the mixture's CDF, to 1e-12 of the interval: the fitted and the training-law
 * proposals.
 */
function defensiveMixture(
  sampling: LogSnrSampling,
  lambda: number,
  part: {
    cdf(logSnr: number): number;
    pdf(logSnr: number): number;
    describe(): Record<string, unknown>;
  },
): LogSnrProposal {
  if (!(lambda > 0 && lambda <= 1)) {
    throw new InvalidArgumentError(`the defensive share λ must be in (0, 1], got ${lambda}`);
  }
  const { min, max } = logSnrInterval(sampling);
  const cdf = (a: number) => lambda * logSnrCdf(a, sampling) + (1 - lambda) * part.cdf(a);
  const pdf = (a: number) => lambda / logSnrWeight(a, sampling) + (1 - lambda) * part.pdf(a);
  return {
    at(p: number) {
      let low = min, high = max;
      for (let i = 0; i < 60 && high - low > 1e-12 * (max - min); i++) {
        const mid = (low + high) / 2;
        if (cdf(mid) < p) low = mid;
        else high = mid;
      }
      const logSnr = (low + high) / 2;
      return { logSnr, weight: 1 / pdf(logSnr) };
    },
    describe: part.describe,
  };
}

/**
 * The logistic's share λ of the defensive mixture (the fitted part has 1 − λ). Measured on
 * shapes-tiny's banks (`bench/design-bank.ts`): with per-word, smoothed profiles λ = 0.1 gave the
 * lowest median variance and a worst contrast at half the logistic's; λ = 0.5 kept only about a
 * third of the gain, and without the smoothing λ = 0.1 was worse than the logistic on one word.
 */
export const DEFENSIVE_SHARE = 0.1;

/**
 * The logistic's share λ beside a flow model's training law (the "training-law" prior). Measured
 * 2026-12-06 over the scheduler's whole grid, the flow models' trained range then
 * (bench/self-calibration.ts `families`, 60 seeds × 100 draws of a perToken query;
 * median variance over the 12 contrasts relative to i.i.d.): on the exact SD 3 fixture λ = 0.1,
 * 0.25, 0.5, 0.75 gave 0.017, 0.0053, 0.0019, 0.0014 (the logistic alone 0.0012), on the exact
 * FLUX.1 fixture 0.00014, 0.000050, 0.000032, 0.000043 (the logistic 0.00015); on a flow oracle
 * whose law sits away from its data's information (shift 3 on an unscaled mixture, `about("red")`
 * at 100 draws, 400 seeds) the intervals covered 74.5, 86.3, 89.8 and 89.0 % (the logistic's
 * 89.7 %): a law's thin Gaussian tails with a small logistic share leave rare draws of large
 * weight, and an interval from 100 draws cannot see them.
 */
export const TRAINING_LAW_SHARE = 0.5;

/**
 * The logistic's share λ for a profile fitted on the fly — a query's pilot round, or a study's
 * first rows — rather than by a calibration run: such a fit comes from fewer draws and misses
 * more. Measured on shapes-tiny's banks (bench/self-calibration.ts): a study's rows after 12
 * calibration rows drew at a median 0.24 of i.i.d.'s variance with λ = 0.25 against 0.22 with
 * λ = 0.1, but their worst contrast at 0.79 against 0.93; a query's adaptive rounds gave the same
 * median and a worst of 0.66–0.86 against 0.68–1.42.
 */
export const SELF_FIT_SHARE = 0.25;

/**
 * The logistic's share λ for the profile an adaptive estimate refits on its pilot when the pilot
 * drew from a fitted profile (a self-calibrating study's rows, `adapt: true` on a calibrated
 * model) rather than from a prior: such a pilot already put most of its draws where the
 * information lies, so its refit misses less and needs less of the logistic's cover. Measured at
 * 100 draws (bench/self-calibration.ts; docs/performance.md, "A row's refit keeps less of the
 * logistic"): on the exact oracle over two sets of 40 held-out images a study's rows drew at
 * 0.24–0.26 of i.i.d.'s variance with λ = 0.15 against 0.26–0.28 with λ = {@link SELF_FIT_SHARE},
 * their worst contrast at 0.30–0.37 against 0.37–0.41; on shapes-tiny's banks at 0.23 against
 * 0.24, the worst 0.60 against 0.61; λ = 0.1 and 0.2 did not do better. A pilot from a prior keeps
 * {@link SELF_FIT_SHARE}: there λ = 0.15 moved a query's worst contrast on the banks from 0.77 to
 * 0.82.
 */
export const PROFILE_REFIT_SHARE = 0.15;

/**
 * The truncated logistic as a proposal.
 *
 * @example
 * ```ts
 * import { logisticProposal } from "./proposal.ts";
 * import { REFERENCE_LOG_SNR } from "./log-snr.ts";
 * console.assert(Math.abs(logisticProposal(REFERENCE_LOG_SNR).at(0.5).logSnr - 1) < 1e-12);
 * ```
 */
export function logisticProposal(sampling: LogSnrSampling): LogSnrProposal {
  return {
    at: (p) => logSnrAtQuantile(p, sampling),
    describe: () => ({ kind: "logistic" }),
  };
}

/**
 * The defensive mixture λ·logistic + (1 − λ)·profile on the sampling's interval. The profile's
 * bins are clipped to the interval (and renormalised); its quantile is found by bisection on the
 * mixture's CDF, to 1e-12 of the interval.
 *
 * @throws {InvalidArgumentError} for a malformed profile or λ outside (0, 1]
 *
 * @example
 * ```ts
 * import { fittedProposal } from "./proposal.ts";
 * const sampling = { loc: 1, scale: 2, clip: 3 };
 * const profile = { kind: "infodiff.logSnrProfile", version: 1, model: { name: "m", shape: [1, 1, 1] },
 *   edges: [-5, 1, 7], mass: [0.9, 0.1], calibration: {} } as const;
 * const q = fittedProposal(sampling, profile);
 * console.assert(q.at(0.25).logSnr < 1 && q.at(0.999).logSnr <= 7);
 * ```
 */
export function fittedProposal(
  sampling: LogSnrSampling,
  profile: LogSnrProfile,
  lambda = DEFENSIVE_SHARE,
): LogSnrProposal {
  checkProfile(profile);
  const { min, max } = logSnrInterval(sampling);
  const bins = clipBins(profile, min, max);
  // the masses below each bin, summed in bin order (as a loop over the bins would), and a binary
  // search for the bin of α: a schedule's profile has one bin per trained timestep (1,000)
  const below = [0];
  for (const b of bins) below.push(below[below.length - 1] + b.mass);
  const binOf = (a: number) => {
    let lo = 0, hi = bins.length; // the first bin whose high end is above α
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (bins[mid].high <= a) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  return defensiveMixture(sampling, lambda, {
    cdf(a: number) {
      const i = binOf(a);
      if (i === bins.length) return below[i];
      const b = bins[i];
      return a > b.low ? below[i] + (b.mass * (a - b.low)) / (b.high - b.low) : below[i];
    },
    pdf(a: number) {
      const i = binOf(a);
      const b = i < bins.length && a >= bins[i].low ? bins[i] : a === max ? bins.at(-1) : undefined;
      return b ? b.mass / (b.high - b.low) : 0;
    },
    describe: () => ({
      kind: "fitted",
      lambda,
      model: profile.model.name,
      bins: profile.mass.length,
      calibration: profile.calibration,
    }),
  });
}

/**
 * Throws unless a value is a well-formed profile: increasing edges, one non-negative mass per
 * bin, summing to 1.
 *
 * @example
 * ```ts
 * import { checkProfile } from "./proposal.ts";
 * checkProfile({ kind: "infodiff.logSnrProfile", version: 1, model: { name: "m", shape: [1] },
 *   edges: [0, 1], mass: [1], calibration: {} });
 * ```
 */
export function checkProfile(profile: LogSnrProfile): LogSnrProfile {
  const bad = (what: string) =>
    new InvalidArgumentError(`not an infodiff log-SNR profile: ${what}`);
  if (profile?.kind !== "infodiff.logSnrProfile" || profile.version !== 1) {
    throw bad(`expected kind "infodiff.logSnrProfile" and version 1`);
  }
  const { edges, mass } = profile;
  if (!Array.isArray(edges) || !Array.isArray(mass) || edges.length !== mass.length + 1) {
    throw bad(`expected bins + 1 edges and one mass per bin`);
  }
  if (edges.some((e, i) => !Number.isFinite(e) || (i > 0 && e <= edges[i - 1]))) {
    throw bad(`edges must be finite and increasing`);
  }
  checkMasses(mass, edges.length - 1, "the masses", bad);
  const share = profile.defensiveShare;
  if (share !== undefined && !(typeof share === "number" && share > 0 && share <= 1)) {
    throw bad(`defensiveShare must be a number in (0, 1], got ${share}`);
  }
  const named = [
    ...Object.entries(profile.words ?? {}).map(([word, p]) => [`word "${word}"`, p] as const),
    ...(profile.wholePrompt ? [["the whole prompt", profile.wholePrompt] as const] : []),
  ];
  for (const [what, contrast] of named) {
    checkMasses(contrast?.mass, mass.length, `the masses of ${what}`, bad);
    if (!Number.isInteger(contrast.contrasts) || contrast.contrasts < 1) {
      throw bad(`${what} needs a positive whole number of contrasts, got ${contrast.contrasts}`);
    }
  }
  return profile;
}

function checkMasses(
  mass: readonly number[] | undefined,
  bins: number,
  what: string,
  bad: (what: string) => Error,
): void {
  if (!Array.isArray(mass) || mass.length !== bins) {
    throw bad(`${what}: expected ${bins}, one per bin, got ${mass?.length}`);
  }
  const total = mass.reduce((s, m) => s + m, 0);
  if (mass.some((m) => !(m >= 0)) || Math.abs(total - 1) > 1e-6) {
    throw bad(`${what} must be non-negative and sum to 1, got a sum of ${total}`);
  }
}

/** The profile's bins restricted to [min, max], their masses renormalised. */
function clipBins(
  profile: LogSnrProfile,
  min: number,
  max: number,
): { low: number; high: number; mass: number }[] {
  const bins = profile.mass.flatMap((mass, i) => {
    const low = Math.max(min, profile.edges[i]), high = Math.min(max, profile.edges[i + 1]);
    if (high <= low) return [];
    const kept = (high - low) / (profile.edges[i + 1] - profile.edges[i]);
    return [{ low, high, mass: mass * kept }];
  });
  const total = bins.reduce((s, b) => s + b.mass, 0);
  if (!(total > 0)) {
    throw new InvalidArgumentError(
      `the profile of ${profile.model.name} puts no mass in the sampled interval [${min}, ${max}]`,
    );
  }
  return bins.map((b) => ({ ...b, mass: b.mass / total }));
}
