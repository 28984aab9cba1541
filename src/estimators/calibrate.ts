/**
 * Calibration of a model's log-SNR profile (issue 15): where along α its information integrands
 * live, measured once from a short run, so later estimates can draw α there.
 *
 * For each calibration row (an image and its prompt) the contrasts are the prompt against the
 * null prompt and against the prompt without each word. Every draw's unweighted integrand
 * f = value / weight is squared and averaged per α bin (bins of equal width over the sampled
 * interval, the trained range by default); each contrast's bin means are normalised to sum to 1
 * (so every contrast counts the same), averaged over contrasts and rows, and the fitted bin masses
 * are ∝ √(mean f²)·width — the variance-optimal importance density for a piecewise-constant
 * integrand scale. Bins no draw reached get the smallest mass of the bins that were reached; the
 * defensive mixture (λ = 0.5 logistic) covers whatever the profile misses.
 *
 * @module
 */
import { InvalidArgumentError } from "../errors.ts";
import type { Denoiser } from "../models/denoiser.ts";
import { logSnrInterval } from "../numerics/log-snr.ts";
import type { LogSnrProfile } from "../numerics/proposal.ts";
import { estimateContrasts } from "./contrasts.ts";
import { perTokenPlan } from "./per-token.ts";
import { type EstimatorOptions, resolveOptions } from "./options.ts";

/** One calibration row: model data and the prompt it shows. */
export interface CalibrationRow {
  /** the image as model data (`model.prepare` it first) */
  readonly data: Float32Array;
  /** its prompt */
  readonly prompt: string;
}

/** Options of {@link calibrateProfile}. */
export interface CalibrationOptions
  extends Omit<EstimatorOptions, "proposal" | "design" | "precision"> {
  /** α bins over the sampled interval (default 24) */
  readonly bins?: number;
}

/**
 * Fits a profile from calibration rows (i.i.d. logistic draws, `samples` per row, default 200).
 *
 * @example
 * ```ts
 * import { calibrateProfile } from "./calibrate.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * import { EXAMPLE_PROMPT } from "../models/example.ts";
 * const model = exampleOracle();
 * const rows = [1, 2].map((seed) => ({ data: model.sample(EXAMPLE_PROMPT, { seed }), prompt: EXAMPLE_PROMPT }));
 * const profile = await calibrateProfile(model, rows, { samples: 50, bins: 12 });
 * console.assert(profile.mass.length === 12 && Math.abs(profile.mass.reduce((a, b) => a + b) - 1) < 1e-9);
 * ```
 */
export async function calibrateProfile(
  model: Denoiser,
  rows: readonly CalibrationRow[],
  options: CalibrationOptions = {},
): Promise<LogSnrProfile> {
  if (rows.length === 0) {
    throw new InvalidArgumentError(`calibration needs at least one row (image and prompt)`);
  }
  const bins = options.bins ?? 24;
  if (!Number.isInteger(bins) || bins < 2) {
    throw new InvalidArgumentError(`bins must be an integer ≥ 2, got ${bins}`);
  }
  const resolved = resolveOptions(model, {
    ...options,
    samples: options.samples ?? 200,
    design: "iid",
    proposal: "logistic",
  });
  const { min, max } = logSnrInterval(resolved.logSnr);
  const width = (max - min) / bins;
  const profile = new Float64Array(bins);
  let contrasts = 0;
  for (const [index, row] of rows.entries()) {
    const truncated = new Set(model.truncatedWords?.(row.prompt) ?? []);
    const { plan } = perTokenPlan(row.prompt, undefined, truncated);
    const outcome = await estimateContrasts(model, row.data, plan, {
      ...resolved,
      seed: resolved.seed + index,
    });
    const { logSnr, weight } = outcome.draws;
    for (const result of outcome.contrasts) {
      const sums = new Float64Array(bins), counts = new Float64Array(bins);
      result.perDraw.forEach((value, i) => {
        const b = Math.min(bins - 1, Math.max(0, Math.floor((logSnr[i] - min) / width)));
        sums[b] += (value / weight[i]) ** 2;
        counts[b]++;
      });
      const means = sums.map((s, b) => counts[b] > 0 ? s / counts[b] : 0);
      const total = means.reduce((s, v) => s + v, 0);
      if (!(total > 0)) continue; // a word the model ignores: no shape to learn from
      means.forEach((m, b) => profile[b] += m / total);
      contrasts++;
    }
  }
  if (contrasts === 0) {
    throw new InvalidArgumentError(
      `no calibration contrast carried any information (every integrand was 0); expected rows ` +
        `whose prompts the model responds to`,
    );
  }
  const root = Array.from(profile, (v) => Math.sqrt(v / contrasts));
  const floor = Math.min(...root.filter((v) => v > 0));
  const filled = root.map((v) => v > 0 ? v : floor);
  const sum = filled.reduce((s, v) => s + v, 0);
  return {
    kind: "infodiff.logSnrProfile",
    version: 1,
    model: {
      name: model.name,
      shape: [...model.shape],
      ...(model.logSnrRange ? { logSnrRange: { ...model.logSnrRange } } : {}),
    },
    edges: Array.from({ length: bins + 1 }, (_, b) => b === bins ? max : min + b * width),
    mass: filled.map((v) => v / sum),
    calibration: {
      rows: rows.length,
      contrasts,
      samples: resolved.samples,
      seed: resolved.seed,
      estimator: resolved.estimator,
      logSnr: { ...resolved.logSnr },
      created: new Date().toISOString(),
    },
  };
}
