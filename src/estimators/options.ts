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
import {
  checkProfile,
  DEFENSIVE_SHARE,
  LEGACY_DEFENSIVE_SHARE,
  type LogSnrProfile,
  type ResolvedProposal,
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
   * defensive mixture with the model's calibrated profile, `model.logSnrProfile`), "training-law"
   * (a flow model's training law of t: a Gaussian in α on the interval of `logSnr`, in the same
   * defensive mixture with the logistic), or a profile given here. Default: "fitted" when the model carries a profile, else "training-law"
   * on a flow model (`model.flow`), else "logistic".
   */
  readonly proposal?: "logistic" | "fitted" | "training-law" | LogSnrProfile;
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
}

/**
 * The most draws one estimate takes: per-draw values of every contrast are kept (8 bytes each) for
 * the standard errors, so a larger number is a memory error, not a precision gain.
 */
export const MAX_SAMPLES = 10_000_000;

/** The most bytes of noisy data one block of draws may hold (items × c·h·w × 4 bytes). */
export const MAX_BLOCK_BYTES = 2 ** 31;

/** A target standard error for adaptive precision ({@link EstimatorOptions.precision}). */
export interface PrecisionTarget {
  /** the standard error every number must reach, in nats */
  readonly se: number;
  /** the most draws to spend in all (default 20 × samples) */
  readonly maxSamples?: number;
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
  readonly precision?: { readonly se: number; readonly maxSamples: number };
  /** items per model call */
  readonly batchSize: number;
  /** draws sharing one α on scalar-timestep models (undefined: the model's default) */
  readonly drawsPerLogSnr?: number;
  /** present (true) only when contrasts of prompts cut differently are allowed */
  readonly allowTruncation?: true;
  /** progress callback */
  readonly onProgress?: (progress: Progress) => void;
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
  if (options.onProgress !== undefined && typeof options.onProgress !== "function") {
    throw new InvalidArgumentError(
      `onProgress must be a function, got ${typeof options.onProgress}`,
    );
  }
  // the reference's scheme draws from the logistic, whatever profile the model carries
  const proposal = resolveProposal(
    model,
    options.proposal ?? (options.design === "reference" ? "logistic" : undefined),
  );
  return {
    samples,
    seed: checkSeed(options.seed ?? 0),
    estimator: checkEstimator(options.estimator ?? "orthogonal"),
    logSnr: options.design === "reference"
      ? resolveLogSnr(model, { ...REFERENCE_UNCLIPPED_LOG_SNR, ...options.logSnr }, true)
      : resolveLogSnr(model, options.logSnr, options.allowOutsideTrainedRange ?? false),
    design: checkDesign(options.design ?? DEFAULT_DRAW_DESIGN),
    proposal,
    ...(options.precision === undefined
      ? {}
      : { precision: checkPrecision(options.precision, samples) }),
    batchSize,
    drawsPerLogSnr: options.drawsPerLogSnr,
    ...(options.allowTruncation ? { allowTruncation: true as const } : {}),
    onProgress: options.onProgress,
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
  given: "logistic" | "fitted" | "training-law" | LogSnrProfile | undefined,
): ResolvedProposal {
  const choice = given ??
    (model.logSnrProfile ? "fitted" : model.flow ? "training-law" : "logistic");
  if (choice === "logistic") return { kind: "logistic" };
  if (choice === "training-law") return trainingLawProposal(model);
  if (choice === "fitted" && !model.logSnrProfile) {
    throw new InvalidArgumentError(
      `proposal "fitted" needs a calibrated profile, and ${model.name} has none; expected ` +
        `"logistic", a profile, or a model calibrated with \`infodiff calibrate\``,
    );
  }
  const profile = checkProfile(
    choice === "fitted" ? model.logSnrProfile! : choice as LogSnrProfile,
  );
  const same = profile.model.name === model.name &&
    profile.model.shape.join() === model.shape.join() &&
    (profile.model.logSnrRange?.min ?? null) === (model.logSnrRange?.min ?? null) &&
    (profile.model.logSnrRange?.max ?? null) === (model.logSnrRange?.max ?? null);
  if (!same) {
    throw new InvalidArgumentError(
      `the log-SNR profile was fitted on ${profile.model.name} (shape ${
        profile.model.shape.join("×")
      }), not on ${model.name} (shape ${model.shape.join("×")}) with the same trained range; ` +
        `expected the profile of this model (run \`infodiff calibrate\` on it)`,
    );
  }
  return { kind: "fitted", lambda: profile.defensiveShare ?? LEGACY_DEFENSIVE_SHARE, profile };
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
  return { kind: "training-law", lambda: DEFENSIVE_SHARE, ...trainingLawLogSnr(trainingLaw), law };
}

/**
 * Checks a precision target and fills in its draw budget (default 20 × samples).
 *
 * @example
 * ```ts
 * import { checkPrecision } from "./options.ts";
 * console.assert(checkPrecision({ se: 0.01 }, 100).maxSamples === 2000);
 * ```
 */
export function checkPrecision(
  target: PrecisionTarget,
  samples: number,
): { se: number; maxSamples: number } {
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
  return { se: target.se, maxSamples };
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
  if (!allowOutside) {
    throw new InvalidArgumentError(
      `${what}; draws there would be evaluated at the end timesteps. Expected an interval inside ` +
        `the range (leave loc and scale unset for the schedule-aware default), or ` +
        `allowOutsideTrainedRange: true on purpose`,
    );
  }
  if (!warnedOutside.has(what)) {
    warnedOutside.add(what);
    warn(`infodiff: ${what}; draws there are evaluated at the nearest trained timestep`);
  }
  return sampling;
}

/** Samplings already warned about (once per process, not once per study row). */
const warnedOutside = new Set<string>();
