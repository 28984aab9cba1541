/**
 * Options shared by every estimator, and their validation.
 *
 * @module
 */
import { InvalidArgumentError } from "../errors.ts";
import type { LogSnrSampling } from "../numerics/log-snr.ts";
import {
  checkLogSnrSampling,
  defaultLogSnrSampling,
  logSnrInterval,
  REFERENCE_UNCLIPPED_LOG_SNR,
} from "../numerics/log-snr.ts";
import { checkSeed } from "../numerics/random.ts";
import { warn } from "../warnings.ts";
import type { Denoiser } from "../models/denoiser.ts";
import { trainingLawLogSnr } from "../models/flow.ts";
import { DEFAULT_DRAW_DESIGN, DRAW_DESIGNS, type DrawDesign } from "./draws.ts";
import { scheduleProfile } from "./family-prior.ts";
import type { ContrastDraws } from "./profile-fit.ts";
import {
  checkProfile,
  DEFENSIVE_SHARE,
  LEGACY_DEFENSIVE_SHARE,
  type LogSnrProfile,
  PROFILE_REFIT_SHARE,
  type ResolvedProposal,
  SELF_FIT_SHARE,
  TRAINING_LAW_SHARE,
} from "../numerics/proposal.ts";

/**
 * The two forms of the pointwise information estimator (REFERENCE §2), in one frozen table.
 *
 * @example
 * ```ts
 * import { ESTIMATORS } from "./options.ts";
 * console.assert(ESTIMATORS[0] === "orthogonal");
 * ```
 */
export const ESTIMATORS: readonly ["orthogonal", "standard"] = Object.freeze(
  ["orthogonal", "standard"] as const,
);

/** One of {@link ESTIMATORS}. */
export type EstimatorName = typeof ESTIMATORS[number];

/** Progress of a running estimate. */
export interface Progress {
  /** noise draws finished */
  readonly done: number;
  /** noise draws in all */
  readonly total: number;
}

/** Options every estimator takes. */
export interface EstimatorOptions {
  /** number of (α, ε) draws (default 100, as in the paper) */
  readonly samples?: number;
  /** seed of the draws (default 0); the same seed gives identical numbers */
  readonly seed?: number;
  /** "orthogonal" (default; ≥ 0, lower variance) or "standard" (unbiased for log p(x|y) − log p(x)) */
  readonly estimator?: EstimatorName;
  /** log-SNR sampling; missing fields come from the model's trained range */
  readonly logSnr?: Partial<LogSnrSampling>;
  /**
   * the layout of the draws (default "stratified-antithetic": stratified α, antithetic ε pairs;
   * "iid" with the logistic proposal is the earlier scheme, "reference" the reference's: i.i.d.
   * α from the logistic with loc 1, scale 2, clip 4, α ∈ [−7, 9], its localization's and ARO's
   * law). Every design estimates the same number.
   */
  readonly design?: DrawDesign;
  /**
   * where α is drawn from: "logistic" (the truncated logistic of `logSnr`), "fitted" (the
   * defensive mixture with the model's calibrated profile, `model.logSnrProfile`), "schedule" (a
   * discrete-time model's training law: uniform over its trained timesteps, in the same defensive
   * mixture with the logistic), "training-law" (a flow model's training law of t: a Gaussian in α
   * on the interval of `logSnr`, half and half with the logistic: `TRAINING_LAW_SHARE`), or a
   * profile given here. Default: "fitted" when the model carries a profile, else "schedule" on a
   * discrete-time model (`model.schedule`), else "logistic" — on a flow model too, over its
   * trained range ({@link defaultProposal} says why).
   */
  readonly proposal?: ProposalChoice;
  /**
   * adapt α to this estimate's own draws when it draws from the model's default prior (no profile
   * and no `proposal` given; default true, but false on a flow model, where adapting was measured
   * to double the variance), or from any proposal when `true` (a self-calibrating study's rows
   * adapt from its profile so, issue 26): a first round from the prior or proposal, then later
   * rounds from a profile fitted on the rounds so far (the fit of calibration, `fitProfile`). With
   * a precision target every later round refits; without one, `samples` of at least
   * {@link ADAPT_MIN_SAMPLES} are split into a pilot of half of them (at most
   * {@link ADAPT_MAX_PILOT}) and the rest; a pilot from a prior of 48 draws or more and 40 % of the
   * budget or more (94–125 draws, the default 100 among them) is itself split, its second part
   * drawn from a refit on its first ({@link ADAPT_SPLIT_MIN_SHARE}), the rest from a refit on the
   * whole pilot. The fitted profile is mixed with the logistic at
   * `SELF_FIT_SHARE` (0.25) after a pilot from a prior, at `PROFILE_REFIT_SHARE` (0.15) after one
   * from a fitted profile. The pilot (each part of a split one) weighs
   * {@link ADAPT_PILOT_DISCOUNT} of its share of the draws and the adapted round the rest (a
   * precision target's rounds weigh by their draws): weights fixed before any draw, each round
   * unbiased given the ones before, so the estimate is unbiased (issue 26). `false` keeps every
   * draw on the prior.
   */
  readonly adapt?: boolean;
  /**
   * adaptive precision: after the first `samples` draws, draw further rounds (independent
   * replicates with seeds derived from `seed`) until every number's standard error is at most
   * `se` nats or `maxSamples` draws are spent (default 20 × samples); a target not reached is
   * warned about, and each estimate's `samples` says how many draws it used
   */
  readonly precision?: PrecisionTarget;
  /** items per model call (default: the model's batch size); never changes the numbers */
  readonly batchSize?: number;
  /**
   * how many consecutive draws share one α. Default: 1 on models with per-item α; on models with
   * a scalar timestep (`sharedLogSnr`), where one call evaluates one noise level,
   * ⌊model.batchSize / conditions⌋ (at least 1). Fixed by the model and the plan, not by
   * `batchSize`, so the numbers do not depend on how calls are cut. Given explicitly it applies to
   * every model (the reference's interventions: 20 α × 120 ε = `samples: 2400, drawsPerLogSnr:
   * 120`); standard errors then treat each α group as one unit.
   */
  readonly drawsPerLogSnr?: number;
  /**
   * let the log-SNR sampling reach outside the model's trained range (default false: refused).
   * Draws there are evaluated at the nearest end timestep, so the integral is not what it says;
   * allowed only on purpose (the reference's clip 4 does this), with a warning.
   */
  readonly allowOutsideTrainedRange?: boolean;
  /**
   * estimate a contrast whose two prompts a text encoder's context cuts differently (default
   * false: refused, since the difference would also measure the cut-off words). Recorded in the
   * settings; the cut prompts are warned about and recorded either way.
   */
  readonly allowTruncation?: boolean;
  /** called after each block of draws */
  readonly onProgress?: (progress: Progress) => void;
  /**
   * called once per estimate with its contrasts' draws (α, weight and value of every draw, and
   * the words each contrast removes): what a profile is fitted from. A study's calibration rows
   * collect them; it changes no number.
   */
  readonly onDraws?: (draws: readonly ContrastDraws[]) => void;
}

/**
 * The most draws one estimate takes: per-draw values of every contrast are kept (8 bytes each) for
 * the standard errors, so a larger number is a memory error, not a precision gain.
 */
export const MAX_SAMPLES = 10_000_000;

/** The most bytes of noisy data one block of draws may hold (items × c·h·w × 4 bytes). */
export const MAX_BLOCK_BYTES = 2 ** 31;

/** What `proposal` may name: a kind of proposal, or a calibrated profile. */
export type ProposalChoice = "logistic" | "fitted" | "schedule" | "training-law" | LogSnrProfile;

/**
 * The fewest draws split into a pilot round and an adapted round when no precision target is set.
 * Measured on shapes-tiny's banks (bench/self-calibration.ts, 8 held-out scenes × 3 contrasts on
 * shared draws, from SD's schedule): below 30–40 draws a pilot is too short to place the profile
 * and the split does no better than the prior alone; at 40 it gains a little (median 0.34 of
 * i.i.d.'s variance against 0.39), at 100 a quarter (0.30 against 0.38).
 */
export const ADAPT_MIN_SAMPLES = 40;

/** The share of `samples` the pilot round of an adaptive estimate takes, up to {@link ADAPT_MAX_PILOT}. */
export const ADAPT_PILOT_SHARE = 0.5;

/**
 * The most draws a pilot takes: on the banks half of 200 draws placed the profile no better than
 * 50 did, and left 50 fewer draws to use it (median 0.27 against 0.24 of i.i.d.'s variance).
 */
export const ADAPT_MAX_PILOT = 50;

/**
 * The pilot round's weight in an adaptive estimate, as a fraction of its share of the draws (the
 * adapted round takes the rest, so a pilot of 50 of 100 draws weighs 0.4 and the adapted 50 draws
 * 0.6). Fixed before any draw, so the estimate stays unbiased. Measured on shapes-tiny's banks (24
 * contrasts on shared draws) and the exact oracle over 40 images (bench/self-calibration.ts): the
 * adapted round's draws are worth more than the pilot's, and weighing them by their draws left
 * its gain on the table. 0.8 lowered every median (shapes-tiny 0.29 → 0.27 of i.i.d.'s variance at
 * 100 draws; the oracle 0.50 → 0.46 at 100, 0.39 → 0.34 at 40, 0.36 → 0.30 at 200) with the worst
 * contrast at most 0.07 higher (0.92 at 40 draws); 0.6 and 0.4 gained more on the oracle but put
 * shapes-tiny's worst contrast at 40 draws above i.i.d.'s (1.05, 1.25).
 */
export const ADAPT_PILOT_DISCOUNT = 0.8;

/**
 * The fewest pilot draws from a prior that are themselves split in two: the first part from the
 * prior, the second from a refit on it; the adapted round then refits on both. Below this a
 * refit on half the pilot is too noisy: on shapes-tiny's banks at 40 draws (10 + 10 + 20) the
 * median rose from 0.33 to 0.35 of i.i.d.'s variance from SD's schedule, from 0.53 to 0.80 from the
 * logistic (bench/self-calibration.ts).
 */
export const ADAPT_SPLIT_MIN_PILOT = 48;

/**
 * The least share of `samples` a pilot from a prior must be to be split ({@link
 * ADAPT_SPLIT_MIN_PILOT}). A pilot of half the budget (100 draws, the default) weighs 0.4 and
 * leaves the adapted round 50 draws; split 26 + 24, its first part from the prior weighs 0.2 and
 * the adapted round's refit sees 24 draws placed where the information is: the exact oracle's
 * queries over 40 images fell from 0.46 to 0.28 of i.i.d.'s variance (images 300–339: 0.46 to
 * 0.28) at 100 seeds per image, from 0.38 to 0.31 at 400. With a third of the budget (150 draws)
 * it was a wash (0.32 against 0.35, worst contrast 0.65 against 0.47) and at a quarter (200) worse
 * (0.32 against 0.30): the pilot then already weighs little, and the refit sees fewer draws from
 * the prior.
 */
export const ADAPT_SPLIT_MIN_SHARE = 0.4;

/** A target standard error for adaptive precision ({@link EstimatorOptions.precision}). */
export interface PrecisionTarget {
  /** the standard error every number must reach, in nats */
  readonly se: number;
  /** the most draws to spend in all (default 20 × samples) */
  readonly maxSamples?: number;
  /**
   * which numbers must reach it: `"all"` (default) every number the terminal reports; `"words"`
   * a `perToken` query's words only, not the whole prompt's i(x; prompt), whose standard error is
   * several times a word's (only `perToken` takes it)
   */
  readonly of?: PrecisionScope;
}

/** The numbers a precision target covers ({@link PrecisionTarget.of}). */
export type PrecisionScope = "all" | "words";

/** A checked precision target: its budget filled in, its scope present only when not "all". */
export interface ResolvedPrecision {
  /** the target standard error, in nats */
  readonly se: number;
  /** the most draws to spend in all */
  readonly maxSamples: number;
  /** present when the target covers a perToken query's words alone */
  readonly of?: "words";
}

/** Options after validation, with every default filled in. */
export interface ResolvedOptions {
  /** number of draws */
  readonly samples: number;
  /** seed */
  readonly seed: number;
  /** estimator form */
  readonly estimator: EstimatorName;
  /** log-SNR sampling */
  readonly logSnr: LogSnrSampling;
  /** the layout of the draws */
  readonly design: DrawDesign;
  /** where α is drawn from (plain data: the fitted kind carries its profile) */
  readonly proposal: ResolvedProposal;
  /** adaptive precision, if asked for */
  readonly precision?: ResolvedPrecision;
  /**
   * present when α adapts to the estimate's own draws: the first round's draws (the pilot, or
   * with a precision target its first round); later rounds draw from a profile fitted on the
   * rounds before them
   */
  readonly adapt?: {
    readonly pilot: number;
    /**
     * when a fixed budget is split in two, the pilot round's weight in the estimate as a fraction
     * of its share of the draws (the adapted round takes the rest); absent or 1: each round weighs
     * by its draws
     */
    readonly pilotDiscount?: number;
    /**
     * the logistic's share λ of each refitted round's proposal: `SELF_FIT_SHARE` after a pilot
     * from a prior, `PROFILE_REFIT_SHARE` after one from a fitted profile (that pilot misses less)
     */
    readonly refitShare: number;
    /**
     * present (true) when a fixed budget's pilot from a prior is itself split in two: about half
     * from the prior, the rest from a refit on them ({@link ADAPT_SPLIT_MIN_PILOT},
     * {@link ADAPT_SPLIT_MIN_SHARE}); each part weighs `pilotDiscount` of its share of the draws
     */
    readonly splitPilot?: true;
  };
  /** items per model call */
  readonly batchSize: number;
  /** draws sharing one α on scalar-timestep models (undefined: the model's default) */
  readonly drawsPerLogSnr?: number;
  /** present (true) only when contrasts of prompts cut differently are allowed */
  readonly allowTruncation?: true;
  /** progress callback */
  readonly onProgress?: (progress: Progress) => void;
  /** hears each estimate's contrasts' draws ({@link EstimatorOptions.onDraws}) */
  readonly onDraws?: (draws: readonly ContrastDraws[]) => void;
}

/**
 * Validates options and fills in defaults from the model.
 *
 * @example
 * ```ts
 * import { resolveOptions } from "./options.ts";
 * import { mixtureModel } from "../query/oracles.ts";
 * const model = mixtureModel({ shape: [1, 1, 1], components: [{ words: [], mean: [0], variance: 1 }] });
 * console.assert(resolveOptions(model, { samples: 10 }).estimator === "orthogonal");
 * ```
 */
export function resolveOptions(model: Denoiser, options: EstimatorOptions = {}): ResolvedOptions {
  const samples = checkSamples(options.samples ?? 100);
  const batchSize = checkPositiveInteger("batchSize", options.batchSize ?? model.batchSize);
  const d = model.shape[0] * model.shape[1] * model.shape[2];
  if (batchSize * d * 4 > MAX_BLOCK_BYTES) {
    throw new InvalidArgumentError(
      `batchSize ${batchSize} of ${d}-value items needs ${
        ((batchSize * d * 4) / 2 ** 30).toFixed(1)
      } ` +
        `GiB per call; expected at most ${Math.floor(MAX_BLOCK_BYTES / (4 * d))} items`,
    );
  }
  if (options.drawsPerLogSnr !== undefined) {
    checkPositiveInteger("drawsPerLogSnr", options.drawsPerLogSnr);
  }
  if (options.allowTruncation !== undefined && typeof options.allowTruncation !== "boolean") {
    throw new InvalidArgumentError(
      `allowTruncation must be true or false, got ${JSON.stringify(options.allowTruncation)}`,
    );
  }
  for (const hook of ["onProgress", "onDraws"] as const) {
    if (options[hook] !== undefined && typeof options[hook] !== "function") {
      throw new InvalidArgumentError(`${hook} must be a function, got ${typeof options[hook]}`);
    }
  }
  // the reference's scheme draws from the logistic, whatever profile the model carries
  const proposal = resolveProposal(
    model,
    options.proposal ?? (options.design === "reference" ? "logistic" : undefined),
  );
  const design = checkDesign(options.design ?? DEFAULT_DRAW_DESIGN);
  const precision = options.precision === undefined
    ? undefined
    : checkPrecision(options.precision, samples);
  const adapt = adaptPlan(options, proposal, design, samples, precision, model.flow !== undefined);
  return {
    samples,
    seed: checkSeed(options.seed ?? 0),
    estimator: checkEstimator(options.estimator ?? "orthogonal"),
    logSnr: options.design === "reference"
      ? resolveLogSnr(model, { ...REFERENCE_UNCLIPPED_LOG_SNR, ...options.logSnr }, true)
      : resolveLogSnr(model, options.logSnr, options.allowOutsideTrainedRange ?? false),
    design,
    proposal,
    ...(precision === undefined ? {} : { precision }),
    ...(adapt === undefined ? {} : { adapt }),
    batchSize,
    drawsPerLogSnr: options.drawsPerLogSnr,
    ...(options.allowTruncation ? { allowTruncation: true as const } : {}),
    onProgress: options.onProgress,
    ...(options.onDraws ? { onDraws: options.onDraws } : {}),
  };
}

/**
 * Checks a number of draws: a positive integer up to {@link MAX_SAMPLES}.
 *
 * @example
 * ```ts
 * import { checkSamples } from "./options.ts";
 * console.assert(checkSamples(100) === 100);
 * ```
 */
export function checkSamples(samples: number): number {
  checkPositiveInteger("samples", samples);
  if (samples > MAX_SAMPLES) {
    throw new InvalidArgumentError(
      `samples must be at most ${MAX_SAMPLES} (every draw's value is kept for the standard ` +
        `error), got ${samples}; split the work into several estimates`,
    );
  }
  return samples;
}

/**
 * Checks an estimator name.
 *
 * @example
 * ```ts
 * import { checkEstimator } from "./options.ts";
 * console.assert(checkEstimator("standard") === "standard");
 * ```
 */
export function checkEstimator(name: string): EstimatorName {
  return checkChoice("estimator", name, ESTIMATORS);
}

/** `name` when it is one of `choices`, else an InvalidArgumentError listing them. */
function checkChoice<T extends string>(what: string, name: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(name)) {
    throw new InvalidArgumentError(
      `unknown ${what} "${name}"; expected one of ${choices.map((c) => `"${c}"`).join(", ")}`,
    );
  }
  return name as T;
}

/**
 * The proposal options ask for, checked: "fitted" needs a model with a profile, and a profile
 * must have been fitted on a model of this name, shape and trained range; "training-law" needs a
 * flow model, and carries its law and trained range (recorded in provenance).
 *
 * @example
 * ```ts
 * import { resolveProposal } from "./options.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * console.assert(resolveProposal(exampleOracle(), undefined).kind === "logistic");
 * ```
 */
export function resolveProposal(
  model: Denoiser,
  given: ProposalChoice | undefined,
): ResolvedProposal {
  const choice = given ?? defaultProposal(model);
  if (choice === "logistic") return { kind: "logistic" };
  if (choice === "training-law") return trainingLawProposal(model);
  if (choice === "schedule") return scheduleProposal(model);
  if (choice === "fitted" && !model.logSnrProfile) {
    throw new InvalidArgumentError(
      `proposal "fitted" needs a calibrated profile, and ${model.name} has none; expected ` +
        `"logistic", a profile, or a model calibrated with \`infodiff calibrate\``,
    );
  }
  const profile = checkProfile(
    choice === "fitted" ? model.logSnrProfile! : choice as LogSnrProfile,
  );
  if (!profileFits(profile, model)) {
    const range = (r?: { min: number; max: number }) =>
      r ? `α ∈ [${r.min.toFixed(3)}, ${r.max.toFixed(3)}]` : "no trained range";
    throw new InvalidArgumentError(
      `the log-SNR profile was fitted on ${profile.model.name} (shape ${
        profile.model.shape.join("×")
      }, ${range(profile.model.logSnrRange)}), not on ${model.name} (shape ${
        model.shape.join("×")
      }, ${range(model.logSnrRange)}); expected the profile of this model over its trained range ` +
        `(run \`infodiff calibrate\` on it)`,
    );
  }
  return { kind: "fitted", lambda: profile.defensiveShare ?? LEGACY_DEFENSIVE_SHARE, profile };
}

/**
 * The proposal a model draws from when none is given: its calibrated profile, else its family's
 * prior (a discrete-time model's schedule), else the logistic over its trained range — a flow
 * model's too. A flow model's training law is drawn from on request (`proposal: "training-law"`):
 * measured 2026-12-06 over the trained range (bench/self-calibration.ts `flow-model`, 40 seeds ×
 * 100 draws of a perToken query on two held-out scenes) on shapes-flow, a trained flow model in
 * FLUX.1's layout, the logistic drew at a median 0.54 of i.i.d.'s variance (worst 0.94 of 19
 * contrasts) and the training law at 0.64 (worst 1.11: worse than i.i.d.); on the exact SD 3
 * fixture 0.00072 against 0.0012, on FLUX.1's 0.000016 against 0.000023 (`families`).
 *
 * @example
 * ```ts
 * import { defaultProposal } from "./options.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * console.assert(defaultProposal(exampleOracle()) === "logistic");
 * ```
 */
export function defaultProposal(
  model: Denoiser,
): "fitted" | "training-law" | "schedule" | "logistic" {
  // a flow model has no trained schedule (Denoiser.schedule), so it gets the logistic
  return model.logSnrProfile ? "fitted" : model.schedule ? "schedule" : "logistic";
}

/**
 * Whether and how an estimate adapts α to its own draws ({@link EstimatorOptions.adapt}): unasked
 * only from the model's default prior (no profile, no proposal given), and on a flow model or from
 * a proposal only when asked; never with the reference's design. The pilot is the first round of a
 * precision target, else a share of `samples` of at least {@link ADAPT_MIN_SAMPLES} (even, so
 * antithetic pairs stay whole). On every flow model measured adapting did worse than the logistic
 * alone (shapes-flow: median 0.64 of i.i.d.'s variance against 0.54; the exact SD 3 and FLUX.1
 * fixtures 2× and 4.5×): a piecewise-constant fitted profile breaks the stratification of their
 * smooth integrands.
 */
function adaptPlan(
  options: EstimatorOptions,
  proposal: ResolvedProposal,
  design: DrawDesign,
  samples: number,
  precision: { se: number; maxSamples: number } | undefined,
  flow: boolean,
): ResolvedOptions["adapt"] {
  if (options.adapt !== undefined && typeof options.adapt !== "boolean") {
    throw new InvalidArgumentError(
      `adapt must be true or false, got ${JSON.stringify(options.adapt)}`,
    );
  }
  if (options.adapt === false || design === "reference") return undefined;
  // unasked, only from the model's default prior, and not on a flow model
  if (
    options.adapt === undefined &&
    (options.proposal !== undefined || proposal.kind === "fitted" || flow)
  ) return undefined;
  // a pilot from a fitted profile already drew where the information lies: its refit misses less
  const refitShare = proposal.kind === "fitted" ? PROFILE_REFIT_SHARE : SELF_FIT_SHARE;
  if (precision) return { pilot: samples, refitShare };
  if (samples < ADAPT_MIN_SAMPLES) return undefined;
  const pilot = pilotDraws(samples);
  // a pilot from a prior that is a large share of the budget adapts within itself
  const split = proposal.kind !== "fitted" && pilot >= ADAPT_SPLIT_MIN_PILOT &&
    pilot >= ADAPT_SPLIT_MIN_SHARE * samples;
  return {
    pilot,
    pilotDiscount: ADAPT_PILOT_DISCOUNT,
    refitShare,
    ...(split ? { splitPilot: true as const } : {}),
  };
}

/**
 * The draws a fixed budget's pilot takes: {@link ADAPT_PILOT_SHARE} of `samples`, even (antithetic
 * pairs stay whole), at most {@link ADAPT_MAX_PILOT}.
 *
 * @example
 * ```ts
 * import { pilotDraws } from "./options.ts";
 * console.assert(pilotDraws(100) === 50 && pilotDraws(60) === 30 && pilotDraws(400) === 50);
 * ```
 */
export function pilotDraws(samples: number): number {
  return Math.min(ADAPT_MAX_PILOT, 2 * Math.round((ADAPT_PILOT_SHARE * samples) / 2));
}

/** A discrete-time model's schedule as a proposal: uniform over its trained timesteps. */
function scheduleProposal(model: Denoiser): ResolvedProposal {
  if (!model.schedule) {
    throw new InvalidArgumentError(
      `proposal "schedule" draws α uniformly over a model's trained timesteps, and ${model.name} ` +
        `has no trained schedule; expected "logistic", "fitted" or a profile`,
    );
  }
  return {
    kind: "schedule",
    lambda: DEFENSIVE_SHARE,
    profile: scheduleProfile(model, model.schedule),
  };
}

/**
 * A schedule proposal as settings: its share and the number of trained timesteps it is uniform
 * over, not its thousand bins.
 *
 * @example
 * ```ts
 * import { scheduleSettings } from "./options.ts";
 * const profile = { mass: [0.5, 0.5] } as never;
 * console.assert(scheduleSettings({ kind: "schedule", lambda: 0.1, profile }).timesteps === 2);
 * ```
 */
export function scheduleSettings(
  proposal: Extract<ResolvedProposal, { kind: "schedule" }>,
): { kind: "schedule"; lambda: number; timesteps: number } {
  return { kind: "schedule", lambda: proposal.lambda, timesteps: proposal.profile.mass.length };
}

/**
 * Whether a profile was fitted on this model as it is read now: the same name, shape and trained
 * log-SNR range (a profile's masses are over its range's bins; another range's are another law).
 *
 * @example
 * ```ts
 * import { profileFits } from "./options.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * const model = exampleOracle();
 * const profile = { model: { name: model.name, shape: [...model.shape] } };
 * console.assert(profileFits(profile, model));
 * console.assert(!profileFits({ model: { ...profile.model, logSnrRange: { min: -6, max: 6 } } }, model));
 * ```
 */
export function profileFits(
  profile: Pick<LogSnrProfile, "model">,
  model: Pick<Denoiser, "name" | "shape" | "logSnrRange">,
): boolean {
  return profile.model.name === model.name &&
    profile.model.shape.join() === model.shape.join() &&
    (profile.model.logSnrRange?.min ?? null) === (model.logSnrRange?.min ?? null) &&
    (profile.model.logSnrRange?.max ?? null) === (model.logSnrRange?.max ?? null);
}

/** A flow model's training law as a proposal, with the law and trained range it comes from. */
function trainingLawProposal(model: Denoiser): ResolvedProposal {
  if (!model.flow) {
    throw new InvalidArgumentError(
      `proposal "training-law" draws α from a flow model's training law of t, and ${model.name} ` +
        `is not a flow model; expected "logistic", "fitted" or a profile`,
    );
  }
  const { trainingLaw, tRange } = model.flow;
  const law = { ...trainingLaw, tRange: [...tRange] };
  return {
    kind: "training-law",
    lambda: TRAINING_LAW_SHARE,
    ...trainingLawLogSnr(trainingLaw),
    law,
  };
}

/**
 * Checks a precision target and fills in its draw budget (default 20 × samples). Its scope is
 * kept only when it is `"words"`, so a results header written before scopes existed still
 * matches.
 *
 * @example
 * ```ts
 * import { checkPrecision } from "./options.ts";
 * console.assert(checkPrecision({ se: 0.01 }, 100).maxSamples === 2000);
 * ```
 */
export function checkPrecision(target: PrecisionTarget, samples: number): ResolvedPrecision {
  if (
    typeof target !== "object" || target === null || !(target.se > 0) || !Number.isFinite(target.se)
  ) {
    throw new InvalidArgumentError(
      `precision needs a target standard error se > 0 in nats, got ${JSON.stringify(target)}`,
    );
  }
  const maxSamples = checkSamples(target.maxSamples ?? Math.min(MAX_SAMPLES, 20 * samples));
  if (maxSamples < samples) {
    throw new InvalidArgumentError(
      `precision.maxSamples (${maxSamples}) is below the first round's ${samples} draws; expected ` +
        `at least ${samples}`,
    );
  }
  const of = target.of ?? "all";
  if (of !== "all" && of !== "words") {
    throw new InvalidArgumentError(
      `precision.of is ${JSON.stringify(target.of)}; expected "all" (every number) or "words" ` +
        `(a perToken query's words, not its whole prompt)`,
    );
  }
  return { se: target.se, maxSamples, ...(of === "words" ? { of } : {}) };
}

/**
 * Checks a draw design name.
 *
 * @example
 * ```ts
 * import { checkDesign } from "./options.ts";
 * console.assert(checkDesign("iid") === "iid");
 * ```
 */
export function checkDesign(name: string): DrawDesign {
  return checkChoice("draw design", name, DRAW_DESIGNS);
}

/**
 * Throws unless the value is a positive integer.
 *
 * @example
 * ```ts
 * import { checkPositiveInteger } from "./options.ts";
 * checkPositiveInteger("samples", 5);
 * ```
 */
export function checkPositiveInteger(what: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0) {
    throw new InvalidArgumentError(`${what} must be a positive integer, got ${value}`);
  }
  return value;
}

function resolveLogSnr(
  model: Denoiser,
  given: Partial<LogSnrSampling> = {},
  allowOutside: boolean,
): LogSnrSampling {
  const clip = given.clip ?? 3;
  const base = defaultLogSnrSampling(model.logSnrRange, clip);
  const sampling = checkLogSnrSampling({
    loc: given.loc ?? base.loc,
    scale: given.scale ?? base.scale,
    clip,
  });
  const range = model.logSnrRange;
  if (!range) return sampling;
  const { min, max } = logSnrInterval(sampling);
  const slack = 1e-9 * (range.max - range.min);
  if (min >= range.min - slack && max <= range.max + slack) return sampling;
  const what = `log-SNR sampling loc ${sampling.loc}, scale ${sampling.scale}, clip ${clip} ` +
    `reaches [${min.toFixed(3)}, ${max.toFixed(3)}], outside ${model.name}'s trained range ` +
    `[${range.min.toFixed(3)}, ${range.max.toFixed(3)}]`;
  // a schedule model evaluates α past its ends at its end timesteps; a flow model at its own t,
  // where its training law rarely drew
  const there = model.flow
    ? "evaluated where its training law put under 0.1 % of its draws"
    : "evaluated at the nearest trained timestep";
  if (!allowOutside) {
    throw new InvalidArgumentError(
      `${what}; draws there would be ${there}. Expected an interval inside the range (leave loc ` +
        `and scale unset for the schedule-aware default), or allowOutsideTrainedRange: true on ` +
        `purpose`,
    );
  }
  if (!warnedOutside.has(what)) {
    warnedOutside.add(what);
    warn(`infodiff: ${what}; draws there are ${there}`);
  }
  return sampling;
}

/** Samplings already warned about (once per process, not once per study row). */
const warnedOutside = new Set<string>();
