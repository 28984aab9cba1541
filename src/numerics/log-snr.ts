/**
 * Importance sampling of the log-SNR α from a truncated logistic (REFERENCE §3). Every information
 * estimate is ½·E_q[w(α)·f(α)] with w = 1/q(α); the truncation keeps α inside the range a model
 * was trained on instead of silently clamping draws that fall outside it.
 *
 * @module
 */
import { InvalidArgumentError } from "../errors.ts";
import type { Random } from "./random.ts";

/** The closed interval of log-SNR values a model was trained on. */
export interface LogSnrRange {
  /** lowest trained log-SNR (most noise) */
  readonly min: number;
  /** highest trained log-SNR (least noise) */
  readonly max: number;
}

/** Parameters of the truncated logistic: α = loc + scale·logit(u), u ~ U(σ(−clip), σ(clip)). */
export interface LogSnrSampling {
  /** centre of the logistic */
  readonly loc: number;
  /** scale of the logistic */
  readonly scale: number;
  /** truncation in units of scale: α ∈ [loc − scale·clip, loc + scale·clip] */
  readonly clip: number;
}

/** The reference constants: loc 1, scale 2, clip 3, i.e. α ∈ [−5, 7]. */
export const REFERENCE_LOG_SNR: LogSnrSampling = Object.freeze({ loc: 1, scale: 2, clip: 3 });

/**
 * The law the reference's localization and ARO runs really draw α from: they call
 * `logistic_integrate(n, loc, scale)` without `clip` (Info-Decomp `utils/itdiffusion.py` 155–160
 * and 352–358), whose default is 4 (`utils/utils.py` 24), with the configs' loc 1 and scale 2:
 * α ∈ [−7, 9], beyond Stable Diffusion's trained range [−5.36, 7.07] on both sides.
 *
 * @example
 * ```ts
 * import { logSnrInterval, REFERENCE_UNCLIPPED_LOG_SNR } from "./log-snr.ts";
 * const { min, max } = logSnrInterval(REFERENCE_UNCLIPPED_LOG_SNR);
 * console.assert(min === -7 && max === 9);
 * ```
 */
export const REFERENCE_UNCLIPPED_LOG_SNR: LogSnrSampling = Object.freeze({
  loc: 1,
  scale: 2,
  clip: 4,
});

/**
 * Default sampling for a model: schedule-aware when the model has a trained range (loc at its
 * midpoint, scale = range / (2·clip)), else the reference constants.
 *
 * @example
 * ```ts
 * import { defaultLogSnrSampling } from "./log-snr.ts";
 * const s = defaultLogSnrSampling({ min: -5.364, max: 7.069 });
 * console.assert(Math.abs(s.loc - 0.8525) < 1e-9 && s.clip === 3);
 * ```
 */
export function defaultLogSnrSampling(range?: LogSnrRange, clip = 3): LogSnrSampling {
  if (!range) return REFERENCE_LOG_SNR;
  return checkLogSnrSampling({
    loc: (range.min + range.max) / 2,
    scale: (range.max - range.min) / (2 * clip),
    clip,
  });
}

/**
 * Validates sampling parameters (scale > 0, clip > 0, all finite) and returns them.
 *
 * @example
 * ```ts
 * import { checkLogSnrSampling } from "./log-snr.ts";
 * checkLogSnrSampling({ loc: 0, scale: 1, clip: 4 });
 * ```
 */
export function checkLogSnrSampling(sampling: LogSnrSampling): LogSnrSampling {
  const { loc, scale, clip } = sampling;
  if (![loc, scale, clip].every(Number.isFinite) || scale <= 0 || clip <= 0) {
    throw new InvalidArgumentError(
      `log-SNR sampling needs finite loc, scale > 0 and clip > 0, got loc=${loc}, scale=${scale}, clip=${clip}`,
    );
  }
  return sampling;
}

/**
 * The α interval a sampling covers.
 *
 * @example
 * ```ts
 * import { logSnrInterval, REFERENCE_LOG_SNR } from "./log-snr.ts";
 * console.assert(logSnrInterval(REFERENCE_LOG_SNR).max === 7);
 * ```
 */
export function logSnrInterval(sampling: LogSnrSampling): LogSnrRange {
  return {
    min: sampling.loc - sampling.scale * sampling.clip,
    max: sampling.loc + sampling.scale * sampling.clip,
  };
}

/**
 * The logistic function σ(t) = 1/(1 + e^(−t)): at a log-SNR α, the signal's share of the variance.
 *
 * @example
 * ```ts
 * import { sigmoid } from "./log-snr.ts";
 * console.assert(sigmoid(0) === 0.5);
 * ```
 */
export function sigmoid(t: number): number {
  return 1 / (1 + Math.exp(-t));
}

/**
 * The truncated logistic's cumulative distribution at α (0 at the low end, 1 at the high end).
 *
 * @example
 * ```ts
 * import { logSnrCdf, REFERENCE_LOG_SNR } from "./log-snr.ts";
 * console.assert(Math.abs(logSnrCdf(1, REFERENCE_LOG_SNR) - 0.5) < 1e-12);
 * ```
 */
export function logSnrCdf(logSnr: number, sampling: LogSnrSampling): number {
  const low = sigmoid(-sampling.clip), high = sigmoid(sampling.clip);
  return (sigmoid((logSnr - sampling.loc) / sampling.scale) - low) / (high - low);
}

/**
 * Importance weight w(α) = 1/q(α) = scale·tanh(clip/2) / (σ(t)·σ(−t)), t = (α − loc)/scale.
 *
 * @example
 * ```ts
 * import { logSnrWeight } from "./log-snr.ts";
 * // at the centre: 2·tanh(1.5)/0.25
 * console.assert(Math.abs(logSnrWeight(1, { loc: 1, scale: 2, clip: 3 }) - 8 * Math.tanh(1.5)) < 1e-12);
 * ```
 */
export function logSnrWeight(logSnr: number, sampling: LogSnrSampling): number {
  const t = (logSnr - sampling.loc) / sampling.scale;
  return (sampling.scale * Math.tanh(sampling.clip / 2)) / (sigmoid(t) * sigmoid(-t));
}

/**
 * One draw of α from the truncated logistic, with its importance weight.
 *
 * @example
 * ```ts
 * import { Random } from "./random.ts";
 * import { sampleLogSnr, REFERENCE_LOG_SNR } from "./log-snr.ts";
 * const { logSnr, weight } = sampleLogSnr(new Random(1), REFERENCE_LOG_SNR);
 * console.assert(logSnr >= -5 && logSnr <= 7 && weight > 0);
 * ```
 */
export function sampleLogSnr(
  random: Random,
  sampling: LogSnrSampling,
): { logSnr: number; weight: number } {
  return logSnrAtQuantile(random.uniform(), sampling);
}

/**
 * The α at quantile p ∈ [0, 1) of the truncated logistic, with its importance weight: stratified
 * designs put one draw in each quantile stratum [k/G, (k+1)/G).
 *
 * @example
 * ```ts
 * import { logSnrAtQuantile, REFERENCE_LOG_SNR } from "./log-snr.ts";
 * console.assert(Math.abs(logSnrAtQuantile(0.5, REFERENCE_LOG_SNR).logSnr - 1) < 1e-12);
 * console.assert(Math.abs(logSnrAtQuantile(0, REFERENCE_LOG_SNR).logSnr + 5) < 1e-12);
 * ```
 */
export function logSnrAtQuantile(
  p: number,
  sampling: LogSnrSampling,
): { logSnr: number; weight: number } {
  const low = sigmoid(-sampling.clip), high = sigmoid(sampling.clip);
  const u = low + (high - low) * p;
  const logSnr = sampling.loc + sampling.scale * Math.log(u / (1 - u));
  return { logSnr, weight: logSnrWeight(logSnr, sampling) };
}
