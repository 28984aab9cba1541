/**
 * Calibration of a model's log-SNR profile (issue 15): where along α its information integrands
 * live, measured once from a short run, so later estimates can draw α there.
 *
 * For each calibration row (an image and its prompt) the contrasts are the prompt against the
 * null prompt and against the prompt without each word. The draws are stratified over a half
 * uniform, half logistic density of α, so every bin gets draws (the logistic alone left the low-α
 * bins, where a small model's information lives, with a few draws each, and their heavy-tailed
 * means made a profile that missed whole words). The fit is `fitProfile` (profile-fit.ts). Every
 * draw's unweighted integrand
 * f = value / weight is squared and averaged per α bin (bins of equal width over the sampled
 * interval, the trained range by default). Contrasts whose information is not at least twice its
 * standard error are left out: a word the model ignores says nothing about where information
 * lies, and it used to count as much as any other. Each remaining contrast's bin means are
 * normalised to sum to 1 (so every contrast counts the same) and averaged:
 *
 * - over every contrast, for the model's profile (`mass`, used for words calibration never saw);
 * - over the contrasts that removed one word, for that word's profile (`words`), shrunk towards
 *   the model's by counting the model's profile as one more contrast: a word's information lies
 *   at its own α (on shapes-tiny colours peak near α ≈ −3, shapes near −2), and a profile shared by
 *   every word fits none of them well;
 * - over the whole-prompt contrasts, for `wholePrompt`.
 *
 * Each average is smoothed across bins (a Gaussian of one bin's width) before the masses are
 * fitted ∝ √(mean f²)·width, the variance-optimal importance density for a piecewise-constant
 * integrand scale: the same word's information moves by a bin or two from image to image, and an
 * unsmoothed profile starves the bins next to its peak (a held-out "circle" then needed 1.5× the
 * draws of the logistic alone). Bins no draw reached get the smallest mass of the bins that were
 * reached; the defensive mixture with the logistic covers whatever the profile misses.
 *
 * @module
 */
import { InvalidArgumentError } from "../errors.ts";
import type { Denoiser } from "../models/denoiser.ts";
import type { LogSnrProfile } from "../numerics/proposal.ts";
import { estimateContrasts } from "./contrasts.ts";
import { perTokenPlan } from "./per-token.ts";
import { unseenWords } from "./truncation.ts";
import {
  type ContrastDraws,
  fitProfile,
  outcomeDraws,
  PROFILE_BINS,
  profileEdges,
  profileOf,
} from "./profile-fit.ts";
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
  const bins = options.bins ?? PROFILE_BINS;
  if (!Number.isInteger(bins) || bins < 2) {
    throw new InvalidArgumentError(`bins must be an integer ≥ 2, got ${bins}`);
  }
  const logistic = resolveOptions(model, { ...options, proposal: "logistic" });
  const edges = profileEdges(logistic.logSnr, bins);
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
  const observed: ContrastDraws[] = [];
  for (const [index, row] of rows.entries()) {
    const { plan } = perTokenPlan(row.prompt, undefined, unseenWords(model, row.prompt));
    const outcome = await estimateContrasts(model, row.data, plan, {
      ...resolved,
      seed: resolved.seed + index,
    });
    observed.push(...outcomeDraws(plan, outcome));
  }
  const profile = fitProfile(model, edges, observed, {
    rows: rows.length,
    samples: resolved.samples,
    seed: resolved.seed,
    estimator: resolved.estimator,
    design: "stratified, half uniform and half logistic",
    logSnr: { ...resolved.logSnr },
    created: new Date().toISOString(),
  });
  if (!profile) {
    throw new InvalidArgumentError(
      `no calibration contrast carried information beyond twice its standard error; expected ` +
        `rows whose prompts the model responds to (or more samples)`,
    );
  }
  return profile;
}
