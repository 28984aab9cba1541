/**
 * The reference's regeneration ODE (Info-Decomp `utils.generate`/`utils.reverse`, the
 * probability-flow ODE of Karras et al. 2022, Algorithm 1 with s_churn = 0): deterministic Heun
 * (2nd-order) steps over a Karras σ schedule, run forward to generate and backward to invert.
 *
 * In Karras' variables the state is x = x₀ + σ·ε with σ = e^(−α/2); the denoiser sees the
 * variance-preserving z = x/√(1+σ²) at log-SNR α, and dx/dσ = ε̂. One step σ₀ → σ₁:
 * `x' = x + ε̂(x, σ₀)·(σ₁−σ₀)`, then `x ← x + ½(ε̂(x, σ₀) + ε̂(x', σ₁))·(σ₁−σ₀)`.
 *
 * The σ levels ({@link karrasLevels}): `steps` values `(σ_max^(1/ρ) + k/(steps−1)·(σ_min^(1/ρ) −
 * σ_max^(1/ρ)))^ρ`, ρ = 7, with σ_min, σ_max from the ends of the model's trained log-SNR range
 * (or [−5, 7] without one), and without the final σ = 0 (the reference's reversible schedule:
 * the score cannot be evaluated at σ = 0, so generation ends at σ_min and inversion starts there,
 * with the data taken as the state at σ_min). Where the reference feeds its UNet a timestep
 * interpolated from σ, which is not a noise level the model was trained at, infodiff snaps each
 * level to the model's nearest trained timestep (`snapLogSnr`) and steps between the snapped σ,
 * so the ODE's σ is the noise level the model evaluates; levels that snap to the same timestep
 * are merged (a step of length 0 changes nothing).
 *
 * @module
 */
import { InvalidArgumentError } from "../errors.ts";
import type { Denoiser } from "../models/denoiser.ts";
import { checkModelData } from "../models/denoiser.ts";
import { checkSteps, DDIM_REFERENCE_RANGE, type DdimRequest } from "./ddim.ts";
import { guidedConditions, guidedNoise, scaledCopy } from "./guided-noise.ts";

/** The reference's number of σ levels (`image_edit_configs.py`: `num_steps` 100). */
export const KARRAS_HEUN_STEPS = 100;

/** The reference's ρ of the Karras schedule. */
export const KARRAS_RHO = 7;

/** Options of {@link heunBatch}. */
export interface KarrasHeunOptions {
  /** σ levels of the schedule (default 100, the reference's) */
  readonly steps?: number;
  /** classifier-free guidance scale (default 1: none) */
  readonly guidance?: number;
}

/**
 * The σ levels a run visits, noisiest first: the Karras schedule between the model's trained
 * σ_min and σ_max, snapped to trained timesteps where the model has them, repeated levels merged.
 *
 * @example
 * ```ts
 * import { karrasLevels } from "./karras-heun.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * const sigma = karrasLevels(exampleOracle(), 100);
 * console.assert(Math.abs(sigma[0] - Math.exp(2.5)) < 1e-9 && Math.abs(sigma[99] - Math.exp(-3.5)) < 1e-9);
 * ```
 */
export function karrasLevels(model: Denoiser, steps: number): Float64Array {
  checkSteps(steps);
  if (steps < 2) {
    throw new InvalidArgumentError(
      `steps must be at least 2 for the Karras–Heun sampler (one step joins two levels), got ${steps}`,
    );
  }
  const range = model.logSnrRange ?? DDIM_REFERENCE_RANGE;
  const sigmaMin = Math.exp(-range.max / 2), sigmaMax = Math.exp(-range.min / 2);
  const low = sigmaMin ** (1 / KARRAS_RHO), high = sigmaMax ** (1 / KARRAS_RHO);
  const levels: number[] = [];
  for (let k = 0; k < steps; k++) {
    const sigma = (high + (k / (steps - 1)) * (low - high)) ** KARRAS_RHO;
    const snapped = model.snapLogSnr
      ? Math.exp(-model.snapLogSnr(-2 * Math.log(sigma)) / 2)
      : sigma;
    if (levels.length === 0 || levels[levels.length - 1] !== snapped) levels.push(snapped);
  }
  return Float64Array.from(levels);
}

/**
 * Runs several trajectories of the Karras–Heun ODE together, sharing every model call.
 * `"invert"` maps each datum (taken as the state at σ_min) to its state at σ_max; `"generate"`
 * maps such a state back to data at σ_min. Both ends are returned in the denoiser's
 * variance-preserving scale (z = x/√(1+σ²); at σ_max that is ≈ N(0, I), like DDIM's x_T), so the
 * inverted state can be regenerated under another prompt, as the intervention study does.
 *
 * @example
 * ```ts
 * import { heunBatch } from "./karras-heun.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * import { EXAMPLE_PROMPT } from "../models/example.ts";
 * const model = exampleOracle();
 * const x = model.sample(EXAMPLE_PROMPT, { seed: 1 });
 * const [noise] = await heunBatch(model, [{ prompt: EXAMPLE_PROMPT, start: x }], "invert", { steps: 40 });
 * const [back] = await heunBatch(model, [{ prompt: EXAMPLE_PROMPT, start: noise }], "generate", { steps: 40 });
 * const error = back.reduce((s, v, i) => s + (v - x[i]) ** 2, 0) / x.length;
 * console.assert(error < 0.01);
 * ```
 */
export async function heunBatch(
  model: Denoiser,
  requests: readonly DdimRequest[],
  direction: "generate" | "invert",
  options: KarrasHeunOptions = {},
): Promise<Float32Array[]> {
  const sigmas = karrasLevels(model, options.steps ?? KARRAS_HEUN_STEPS);
  const path = direction === "generate" ? sigmas : sigmas.slice().reverse();
  const first = path[0], last = path[path.length - 1];
  const states = requests.map((r, i) => {
    const start = checkModelData(model.shape, r.start, `request ${i} (${direction})`);
    // generation starts from a VP state at σ_max; inversion from data, the state at σ_min
    return scaledCopy(start, direction === "generate" ? Math.sqrt(1 + first * first) : 1);
  });
  const { conditions, nullCondition, guidance } = await guidedConditions(
    model,
    requests.map((r) => r.prompt),
    options.guidance,
  );
  // dx/dσ = ε̂ of the variance-preserving state z = x/√(1+σ²) at α = −2·log σ
  const slope = (xs: readonly Float32Array[], sigma: number) => {
    const vp = 1 / Math.sqrt(1 + sigma * sigma);
    const zs = xs.map((x) => scaledCopy(x, vp));
    return guidedNoise(model, zs, -2 * Math.log(sigma), conditions, nullCondition, guidance);
  };
  for (let k = 0; k + 1 < path.length; k++) {
    const from = path[k], step = path[k + 1] - from;
    const d0 = await slope(states, from);
    const euler = states.map((x, i) => {
      const out = new Float32Array(x.length);
      for (let j = 0; j < x.length; j++) out[j] = x[j] + d0[i][j] * step;
      return out;
    });
    const d1 = await slope(euler, path[k + 1]);
    states.forEach((x, i) => {
      for (let j = 0; j < x.length; j++) x[j] += 0.5 * (d0[i][j] + d1[i][j]) * step;
    });
  }
  // the inverted state is returned variance-preserving, like DDIM's x_T
  return direction === "invert"
    ? states.map((x) => scaledCopy(x, 1 / Math.sqrt(1 + last * last)))
    : states;
}
