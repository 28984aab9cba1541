/**
 * Options shared by every estimator, and their validation.
 *
 * @module
 */
import { InvalidArgumentError } from "../errors.ts";
import type { LogSnrSampling } from "../numerics/log-snr.ts";
import { checkLogSnrSampling, defaultLogSnrSampling } from "../numerics/log-snr.ts";
import type { Denoiser } from "../models/denoiser.ts";

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
  /** items per model call (default: the model's batch size) */
  readonly batchSize?: number;
  /** called after each block of draws */
  readonly onProgress?: (progress: Progress) => void;
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
  /** items per model call */
  readonly batchSize: number;
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
  const samples = options.samples ?? 100;
  checkPositiveInteger("samples", samples);
  const batchSize = options.batchSize ?? model.batchSize;
  checkPositiveInteger("batchSize", batchSize);
  const seed = options.seed ?? 0;
  if (!Number.isFinite(seed)) {
    throw new InvalidArgumentError(`seed must be a finite number, got ${seed}`);
  }
  return {
    samples,
    seed,
    estimator: checkEstimator(options.estimator ?? "orthogonal"),
    logSnr: resolveLogSnr(model, options.logSnr),
    batchSize,
    onProgress: options.onProgress,
  };
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
  if (!(ESTIMATORS as readonly string[]).includes(name)) {
    throw new InvalidArgumentError(
      `unknown estimator "${name}"; expected one of ${ESTIMATORS.map((e) => `"${e}"`).join(", ")}`,
    );
  }
  return name as EstimatorName;
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

function resolveLogSnr(model: Denoiser, given: Partial<LogSnrSampling> = {}): LogSnrSampling {
  const clip = given.clip ?? 3;
  const base = defaultLogSnrSampling(model.logSnrRange, clip);
  return checkLogSnrSampling({
    loc: given.loc ?? base.loc,
    scale: given.scale ?? base.scale,
    clip,
  });
}
