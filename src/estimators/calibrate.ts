/**
 * Calibration of a model's log-SNR profile (issue 15): where along α its information integrands
 * live, measured once from a short run, so later estimates can draw α there.
 *
 * For each calibration row (an image and its prompt) the contrasts are the prompt against the
 * null prompt and against the prompt without each word. The draws are stratified over a half
 * uniform, half logistic density of α, so every bin gets draws (the logistic alone left the low-α
 * bins, where a small model's information lives, with a few draws each, and their heavy-tailed
 * means made a profile that missed whole words). Every draw's unweighted integrand
 * f = value / weight is squared and averaged per α bin (bins of equal width over the sampled
 * interval, the trained range by default). Contrasts whose information is not at least twice its
 * standard error are left out: a word the model ignores says nothing about where information
 * lies, and it used to count as much as any other. Each remaining contrast's bin means are
 * normalised to sum to 1 (so every contrast counts the same), averaged over contrasts and rows,
 * and the fitted bin masses are ∝ √(mean f²)·width — the variance-optimal importance density for
 * a piecewise-constant integrand scale. Bins no draw reached get the smallest mass of the bins
 * that were reached; the defensive mixture with the logistic covers whatever the profile misses.
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
 * Fits a profile from calibration rows (`samples` stratified draws per row, default 200).
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
  const logistic = resolveOptions(model, { ...options, proposal: "logistic" });
  const { min, max } = logSnrInterval(logistic.logSnr);
  const width = (max - min) / bins;
  const edges = Array.from({ length: bins + 1 }, (_, b) => b === bins ? max : min + b * width);
  const resolved = {
    ...logistic,
    samples: options.samples ?? 200,
    design: "stratified" as const,
    proposal: {
      kind: "fitted" as const,
      lambda: 0.5,
      profile: profileOf(model, edges, new Array(bins).fill(1 / bins), {}),
    },
  };
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
      const { nats, se } = result.estimate;
      if (!(nats > 2 * se)) continue; // no information to locate
      const sums = new Float64Array(bins), counts = new Float64Array(bins);
      result.perDraw.forEach((value, i) => {
        const b = Math.min(bins - 1, Math.max(0, Math.floor((logSnr[i] - min) / width)));
        sums[b] += (value / weight[i]) ** 2;
        counts[b]++;
      });
      const means = sums.map((s, b) => counts[b] > 0 ? s / counts[b] : 0);
      const total = means.reduce((s, v) => s + v, 0);
      if (!(total > 0)) continue;
      means.forEach((m, b) => profile[b] += m / total);
      contrasts++;
    }
  }
  if (contrasts === 0) {
    throw new InvalidArgumentError(
      `no calibration contrast carried information beyond twice its standard error; expected ` +
        `rows whose prompts the model responds to (or more samples)`,
    );
  }
  return profileOf(model, edges, profileMasses(profile.map((v) => v / contrasts)), {
    rows: rows.length,
    contrasts,
    samples: resolved.samples,
    seed: resolved.seed,
    estimator: resolved.estimator,
    design: "stratified, half uniform and half logistic",
    logSnr: { ...resolved.logSnr },
    created: new Date().toISOString(),
  });
}

/**
 * A profile's bin masses from each bin's mean squared integrand (bins of equal width): ∝ its
 * square root, the variance-optimal importance density for a piecewise-constant integrand scale;
 * bins no draw reached (0) get the smallest mass of those that were reached.
 *
 * @example
 * ```ts
 * import { profileMasses } from "./calibrate.ts";
 * // √ of 4, 1, 0 → 2, 1 and the unreached bin at the smallest, 1: masses 2/4, 1/4, 1/4
 * console.assert(profileMasses([4, 1, 0]).join() === "0.5,0.25,0.25");
 * ```
 */
export function profileMasses(meanSquares: ArrayLike<number>): number[] {
  const root = Array.from(meanSquares, (v) => Math.sqrt(v));
  const floor = Math.min(...root.filter((v) => v > 0));
  const filled = root.map((v) => v > 0 ? v : floor);
  const sum = filled.reduce((s, v) => s + v, 0);
  return filled.map((v) => v / sum);
}

function profileOf(
  model: Denoiser,
  edges: number[],
  mass: number[],
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
    edges,
    mass,
    calibration,
  };
}
